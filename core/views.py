"""Dashboard pages of the core app (the full dashboard arrives with its own issue)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.http import require_POST
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error

from core import selectors
from core.api.errors import api_csrf_failure, api_not_found, api_server_error
from core.api.serializers import AuditFilterInput
from core.audit import audit_verify
from core.errors import ApplicationError
from core.web import page_context, workspace_page
from core.workspaces import invitation_answer


@login_required
def home(request):
    memberships = selectors.membership_list_of_user(user=request.user)
    invitations = selectors.invitation_list_pending(user=request.user)
    return render(request, "core/home.html", {"memberships": memberships, "invitations": invitations})


@require_POST
@login_required
def invitation_answer_page(request, invitation_id, accept: bool):
    try:
        invitation = invitation_answer(invitation_id=invitation_id, user=request.user, accept=accept)
    except ApplicationError as error:
        messages.error(request, error.detail)
    else:
        verb = "joined" if accept else "declined the invitation to"
        messages.success(request, f"You {verb} {invitation.workspace.name}.")
    return redirect("home")


@workspace_page
def audit_log(request, workspace):
    """The audit log, filtered as the API filters it (actor, action and target: exact, or a prefix
    ending in `*`; since and until: ISO times), each event with its payload and hashes, and the
    chain's status. A filter that does not parse is shown as an error, with no events."""
    if "audit:read" not in request.scopes:
        return render(request, "core/forbidden.html", page_context(request), status=403)
    filters = {
        name: request.GET.get(name, "").strip() for name in ("actor", "action", "target", "since", "until")
    }
    given = AuditFilterInput(data={name: value for name, value in filters.items() if value})
    page, problems = None, []
    if given.is_valid():
        events = selectors.audit_event_list(workspace=workspace, **given.validated_data)
        page = Paginator(events, 50).get_page(request.GET.get("page"))
    else:
        problems = [f"{name}: {' '.join(str(m) for m in errors)}" for name, errors in given.errors.items()]
    chain = audit_verify(workspace=workspace)
    return render(
        request,
        "core/audit.html",
        page_context(request, page=page, filters=filters, problems=problems, chain=chain),
    )


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return api_not_found(request, exception)
    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return api_server_error(request)
    return html_server_error(request)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a problem document under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return api_csrf_failure(request, reason)
    return html_csrf_failure(request, reason)
