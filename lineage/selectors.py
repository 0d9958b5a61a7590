"""Reads of the lineage record: nodes by kind, key or name, one node by id or by its version key, and
the audit events that name a node. The graph itself (upstream, downstream, impact, paths) is read
through the graph store (lineage/stores/)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from core.errors import NotFound
from core.models import AuditEvent, Workspace
from lineage.models import Node

# The audit targets that name a lineage node by its key (the registry's, datasheets', privacy's).
NODE_TARGET_PREFIXES = ("model", "model_card", "annex_iv", "datasheet", "dataset")


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
    node = Node.objects.filter(workspace=workspace, kind=kind, key=f"{name}@{version}").first()
    if node is None:
        label = "model" if kind == "ModelVersion" else "dataset"
        raise NotFound(f"no {label} version {name}@{version} in this workspace")
    return node


def node_get(*, workspace: Workspace, node_id: int, with_artifact: bool = False) -> Node:
    """One node of the workspace by its id (with its file's row read in the same query when asked);
    404 when the workspace has none by that id."""
    nodes = Node.objects.filter(workspace=workspace, pk=node_id)
    if with_artifact:
        nodes = nodes.select_related("artifact")
    node = nodes.first()
    if node is None:
        raise NotFound("no such node in this workspace")
    return node


def node_audit_trail(*, workspace: Workspace, node: Node, limit: int = 50) -> QuerySet[AuditEvent]:
    """The newest audit events (at most `limit`) whose target names the node by its key."""
    targets = [f"{prefix}:{node.key}" for prefix in NODE_TARGET_PREFIXES]
    return AuditEvent.objects.filter(workspace=workspace, target__in=targets).order_by("-seq")[:limit]
