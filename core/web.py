"""Shared pieces of the dashboard pages: the workspace in the URL (/w/<slug>/), checked against
the signed-in user's memberships (404 when not a member, like the API), a selector's NotFound as the
404 page, and the page context."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404

from core.errors import NotFound
from core.roles import scopes_for_role
from core.selectors import workspace_membership


def workspace_page(view):
    @login_required
    @wraps(view)
    def wrapper(request, slug: str, *args, **kwargs):
        membership = workspace_membership(user=request.user, slug=slug)
        if membership is None:
            raise Http404("workspace not found")
        request.membership = membership
        request.scopes = scopes_for_role(membership.role)
        try:
            return view(request, membership.workspace, *args, **kwargs)
        except NotFound as error:  # what a page asked a selector for is not in this workspace
            raise Http404(error.detail) from None

    return wrapper


def page_context(request, **extra: Any) -> dict[str, Any]:
    membership = request.membership
    return {"membership": membership, "workspace": membership.workspace, "scopes": request.scopes, **extra}
