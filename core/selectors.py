"""Reads of the core app. Every selector takes the workspace: nothing crosses a tenant boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from core.audit import event_document
from core.models import ApiToken, Artifact, AuditCheckpoint, AuditEvent, Workspace
from core.roles import Role


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


def audit_event_list(
    *,
    workspace: Workspace,
    actor: str = "",
    action: str = "",
    target: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
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


def api_token_list(*, workspace: Workspace, user, role: str) -> QuerySet[ApiToken]:
    """A workspace admin sees every token of the workspace; anyone else only their own."""
    queryset = ApiToken.objects.filter(workspace=workspace).select_related("user", "workspace")
    if role != Role.ADMIN:
        queryset = queryset.filter(user=user)
    return queryset.order_by("-created_at")


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
