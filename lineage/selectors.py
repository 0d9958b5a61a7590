"""Reads of the lineage record."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from core.models import Workspace
from lineage.models import Node


def node_list(*, workspace: Workspace, kind: str = "", key: str = "", q: str = "") -> QuerySet[Node]:
    nodes = Node.objects.filter(workspace=workspace)
    if kind:
        nodes = nodes.filter(kind=kind)
    if key:
        nodes = nodes.filter(key=key)
    if q:
        nodes = nodes.filter(Q(key__icontains=q) | Q(name__icontains=q))
    return nodes.order_by("kind", "key", "id")
