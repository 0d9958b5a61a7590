"""The one permission layer every API view uses.

It resolves the workspace a request acts in (a token's own workspace; for a session, the
`X-Workspace` header or `?workspace=` parameter, or the user's only workspace), the member's role,
and the scopes in force, then checks the scope the view asks for. A workspace the user is not a
member of answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404
from rest_framework import exceptions, permissions

from core.actors import Actor, actor_from_request
from core.models import ApiToken, Membership, Workspace
from core.roles import scopes_for_role

WORKSPACE_HEADER = "HTTP_X_WORKSPACE"


@dataclass(frozen=True)
class WorkspaceAccess:
    workspace: Workspace
    membership: Membership
    scopes: frozenset[str]
    actor: Actor

    @property
    def role(self) -> str:
        return self.membership.role


def resolve_access(request) -> WorkspaceAccess:
    user = request.user
    token = request.auth if isinstance(request.auth, ApiToken) else None
    memberships = Membership.objects.select_related("workspace").filter(user=user)
    if token is not None:
        membership = _token_membership(token, memberships)
        if membership is None:
            raise exceptions.AuthenticationFailed("the token's owner is no longer a member of its workspace")
        scopes = frozenset(token.scopes) & scopes_for_role(membership.role)
        requested = _requested_slug(request)
        if requested and requested != membership.workspace.slug:
            raise Http404("workspace not found")
    else:
        requested = _requested_slug(request)
        if requested:
            membership = memberships.filter(workspace__slug=requested).first()
            if membership is None:
                raise Http404("workspace not found")
        else:
            candidates = list(memberships[:2])
            if len(candidates) != 1:
                raise exceptions.ValidationError(
                    {"workspace": ["choose a workspace with the X-Workspace header or ?workspace="]}
                )
            membership = candidates[0]
        scopes = scopes_for_role(membership.role)
    return WorkspaceAccess(
        workspace=membership.workspace,
        membership=membership,
        scopes=scopes,
        actor=actor_from_request(request),
    )


def _token_membership(token: ApiToken, memberships) -> Membership | None:
    """The owner's membership of the token's workspace, as api_token_authenticate read it with the
    token (no second query), or read now for a token that came another way."""
    if hasattr(token, "member_role"):
        role = token.member_role
        if role is None:
            return None
        return Membership(pk=token.member_id, user=token.user, workspace=token.workspace, role=role)
    return memberships.filter(workspace_id=token.workspace_id).first()


def _requested_slug(request) -> str:
    return (request.META.get(WORKSPACE_HEADER) or request.query_params.get("workspace") or "").strip()


class HasWorkspaceScope(permissions.BasePermission):
    """Grants a request when its workspace access holds the scope the view requires for the method.

    Views declare `required_scopes = {"GET": "audit:read", "POST": ...}`; a method not listed is refused.
    """

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        access = resolve_access(request)
        request.access = access
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        required = view.required_scopes.get(method)
        if required is None:
            raise exceptions.MethodNotAllowed(request.method)
        if required not in access.scopes:
            raise exceptions.PermissionDenied(f"this requires the scope {required!r}")
        return True
