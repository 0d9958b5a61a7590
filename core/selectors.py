"""Reads of the core app. Every selector takes the workspace: nothing crosses a tenant boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import QuerySet

from core.audit import event_document
from core.errors import NotFound
from core.invitation_links import addressed_to
from core.models import (
    ApiToken,
    Artifact,
    AuditCheckpoint,
    AuditEvent,
    Invitation,
    InvitationState,
    Membership,
    Workspace,
)
from core.roles import Role

# --- workspaces, memberships and invitations ---------------------------------------------------------


def workspace_membership(*, user, slug: str) -> Membership | None:
    """The user's membership of the workspace `slug` (with the workspace), None if not a member."""
    return Membership.objects.select_related("workspace").filter(user=user, workspace__slug=slug).first()


def membership_list_of_user(*, user, workspace_id: UUID | None = None) -> QuerySet[Membership]:
    """The user's memberships, by workspace slug; only that of `workspace_id` when given (a token
    sees its own workspace only)."""
    memberships = Membership.objects.select_related("workspace", "user").filter(user=user)
    if workspace_id is not None:
        memberships = memberships.filter(workspace_id=workspace_id)
    return memberships.order_by("workspace__slug")


def membership_list(*, workspace: Workspace) -> QuerySet[Membership]:
    """The workspace's members, by username."""
    return (
        Membership.objects.select_related("user", "workspace")
        .filter(workspace=workspace)
        .order_by("user__username")
    )


def membership_find(*, workspace: Workspace, username: str) -> Membership | None:
    """The membership of `username` in the workspace, None if they are not a member."""
    return membership_list(workspace=workspace).filter(user__username=username).first()


def membership_get(*, workspace: Workspace, username: str) -> Membership:
    """The membership of `username` in the workspace; 404 if they are not a member."""
    membership = membership_find(workspace=workspace, username=username)
    if membership is None:
        raise NotFound(f"{username!r} is not a member of this workspace")
    return membership


def invitation_list_pending(*, workspace: Workspace | None = None, user=None) -> QuerySet[Invitation]:
    """Pending invitations: a workspace's, or those addressed to `user` (by username or by the
    e-mail address on the account)."""
    invitations = Invitation.objects.select_related("workspace", "invited_by").filter(
        state=InvitationState.PENDING
    )
    if workspace is not None:
        invitations = invitations.filter(workspace=workspace)
    if user is not None:
        invitations = invitations.filter(addressed_to(user))
    return invitations


def invitation_pending_get(*, user, invitation_id: UUID | str) -> Invitation:
    """A pending invitation addressed to `user`; 404 for any other (answered, or someone else's)."""
    invitation = invitation_list_pending(user=user).filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFound("no such pending invitation for you")
    return invitation


# --- artifacts ----------------------------------------------------------------------------------------


def artifact_list(
    *, workspace: Workspace, media_type: str = "", sha256: str = "", filename: str = ""
) -> QuerySet[Artifact]:
    queryset = Artifact.objects.filter(workspace=workspace).select_related("created_by")
    if media_type:
        queryset = queryset.filter(media_type=media_type)
    if sha256:
        queryset = queryset.filter(sha256=sha256)
    if filename:
        queryset = queryset.filter(filename__icontains=filename)
    return queryset.order_by("-created_at", "id")


def artifact_get(*, workspace: Workspace, artifact_id: UUID | str) -> Artifact:
    """One artifact of the workspace; 404 when the workspace has none by that id."""
    artifact = Artifact.objects.filter(workspace=workspace, pk=artifact_id).first()
    if artifact is None:
        raise NotFound("no such artifact in this workspace")
    return artifact


# --- the audit log ------------------------------------------------------------------------------------


def audit_event_list(
    *,
    workspace: Workspace,
    actor: str = "",
    action: str = "",
    target: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The audit log as the API and the dashboard filter it, newest first: `actor`, `action` and
    `target` each an exact value or a prefix ending in `*` (`promotion.*`), between `since` and
    `until` (inclusive)."""
    queryset = AuditEvent.objects.filter(workspace=workspace)
    for field, value in (("actor", actor), ("action", action), ("target", target)):
        if value.endswith("*"):
            queryset = queryset.filter(**{f"{field}__startswith": value[:-1]})
        elif value:
            queryset = queryset.filter(**{field: value})
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if until:
        queryset = queryset.filter(created_at__lte=until)
    return queryset.order_by("-seq")


def audit_event_get(*, workspace: Workspace, seq: int) -> AuditEvent:
    """The workspace's audit event `seq`; 404 when there is none."""
    event = AuditEvent.objects.filter(workspace=workspace, seq=seq).first()
    if event is None:
        raise NotFound(f"no audit event {seq} in this workspace")
    return event


# --- API tokens ---------------------------------------------------------------------------------------


def api_token_list(*, workspace: Workspace, user, role: str) -> QuerySet[ApiToken]:
    """A workspace admin sees every token of the workspace; anyone else only their own."""
    queryset = ApiToken.objects.filter(workspace=workspace).select_related("user", "workspace")
    if role != Role.ADMIN:
        queryset = queryset.filter(user=user)
    return queryset.order_by("-created_at")


def api_token_get(*, workspace: Workspace, user, role: str, token_id: UUID | str) -> ApiToken:
    """One of the tokens `api_token_list` shows this user; 404 for any other."""
    token = api_token_list(workspace=workspace, user=user, role=role).filter(pk=token_id).first()
    if token is None:
        raise NotFound("no such token in this workspace")
    return token


# --- the audit chain and its checkpoints --------------------------------------------------------------


def audit_chain_page(*, workspace: Workspace, after: int = 0, limit: int = 500) -> dict[str, Any]:
    """Up to `limit` events after seq `after`, in order and up to the head, each with the document its
    hash covers; `next_after` is where the next page starts (None at the head)."""
    head = Workspace.objects.only("slug", "audit_head_seq", "audit_head_hash").get(pk=workspace.pk)
    events = list(
        AuditEvent.objects.filter(workspace=head, seq__gt=after, seq__lte=head.audit_head_seq).order_by(
            "seq"
        )[:limit]
    )
    last = events[-1].seq if events else None
    return {
        "workspace": head.slug,
        "workspace_id": str(head.pk),
        "head": {"seq": head.audit_head_seq, "hash": head.audit_head_hash},
        "events": [
            {"seq": e.seq, "document": event_document(e), "prev_hash": e.prev_hash, "hash": e.hash}
            for e in events
        ],
        "next_after": last if last is not None and last < head.audit_head_seq else None,
    }


def audit_checkpoint_list(*, workspace: Workspace) -> QuerySet[AuditCheckpoint]:
    return AuditCheckpoint.objects.filter(workspace=workspace).select_related("workspace").order_by("-seq")
