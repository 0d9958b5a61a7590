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


def version_node(*, workspace: Workspace, kind: str, name: str, version: str) -> Node:
    """A ModelVersion or DatasetVersion node by the `<name>@<version>` key the API's URLs use."""
    from core.errors import NotFound

    node = Node.objects.filter(workspace=workspace, kind=kind, key=f"{name}@{version}").first()
    if node is None:
        label = "model" if kind == "ModelVersion" else "dataset"
        raise NotFound(f"no {label} version {name}@{version} in this workspace")
    return node
