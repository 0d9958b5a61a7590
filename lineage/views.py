"""The lineage explorer page: find a node (search as you type reads the lineage API), draw its
upstream and downstream graph, and show the selected node in a side panel: its properties, its file,
and for members who read the audit log its audit trail. static/js/explorer.js draws the graph with
Cytoscape.js and expands nodes with their neighbours, read from the lineage API with the same session;
it fetches the side panel of each node it selects from this view (`?part=panel`)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import BadRequest
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse

from core.models import Workspace
from core.web import page_context, workspace_page
from lineage import selectors
from lineage.figures import explorer_graph, node_property_rows
from lineage.kinds import NodeKind
from lineage.models import Node
from lineage.stores import get_graph_store


def _depth(request) -> int:
    try:
        return max(1, min(int(request.GET.get("depth") or 3), 10))
    except ValueError:
        raise BadRequest("depth must be a whole number") from None


def _panel(request, workspace: Workspace, node: Node) -> dict[str, Any]:
    """What the side panel shows of a node: its file's download link only to members who may read
    artifacts, and its audit trail (the audit log's) only to members who may read the log."""
    return {
        "panel_node": node,
        "properties": node_property_rows(node.properties),
        "artifact": node.artifact if node.artifact_id else None,
        "can_download": "artifact:read" in request.scopes,
        "trail": (
            selectors.node_audit_trail(workspace=workspace, node=node)
            if "audit:read" in request.scopes
            else None
        ),
    }


@workspace_page
def explorer(request, workspace, node_id: int | None = None):
    if "lineage:read" not in request.scopes:
        raise Http404("no lineage access")
    if node_id is not None and request.GET.get("part") == "panel":
        # The side panel alone, for the node the page's graph has just selected.
        node = selectors.node_get(workspace=workspace, node_id=node_id, with_artifact=True)  # NotFound: 404
        panel = page_context(request, **_panel(request, workspace, node), show_open_link=True)
        return render(request, "lineage/_node_panel.html", panel)
    query = request.GET.get("q", "").strip()
    kind = request.GET.get("kind", "").strip()
    found = list(selectors.node_list(workspace=workspace, kind=kind, q=query)[:50]) if (query or kind) else []
    config: dict[str, Any] = {
        "api": reverse("lineage-node-list"),
        "workspace": workspace.slug,
        "page": reverse("dashboard-lineage", kwargs={"slug": workspace.slug}),
        "graph": None,
    }
    context: dict[str, Any] = {"q": query, "kind": kind, "kinds": NodeKind.values, "found": found}
    if node_id is not None:
        node = selectors.node_get(workspace=workspace, node_id=node_id, with_artifact=True)  # NotFound: 404
        depth = _depth(request)
        store = get_graph_store(workspace)
        config["graph"] = explorer_graph(
            node.pk, store.upstream(node.pk, depth=depth), store.downstream(node.pk, depth=depth)
        )
        context.update(
            node=node, depth=depth, truncated=config["graph"]["truncated"], **_panel(request, workspace, node)
        )
    context["config"] = config
    return render(request, "lineage/explorer.html", page_context(request, **context))
