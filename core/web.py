"""Shared pieces of the dashboard pages: the workspace in the URL (/w/<slug>/), checked against
the signed-in user's memberships (404 when not a member, like the API), and the page context."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404

from core.models import Membership
from core.roles import scopes_for_role


def workspace_page(view):
    @login_required
    @wraps(view)
    def wrapper(request, slug: str, *args, **kwargs):
        membership = (
            Membership.objects.select_related("workspace")
            .filter(user=request.user, workspace__slug=slug)
            .first()
        )
        if membership is None:
            raise Http404("workspace not found")
        request.membership = membership
        request.scopes = scopes_for_role(membership.role)
        return view(request, membership.workspace, *args, **kwargs)

    return wrapper


def page_context(request, **extra: Any) -> dict[str, Any]:
    membership = request.membership
    return {"membership": membership, "workspace": membership.workspace, "scopes": request.scopes, **extra}
