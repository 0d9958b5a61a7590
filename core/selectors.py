"""Reads of the core app. Every selector takes the workspace: nothing crosses a tenant boundary."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from core.models import ApiToken, Artifact, AuditEvent, Workspace
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
