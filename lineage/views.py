"""The lineage explorer page: find a node, draw its upstream and downstream graph, show its
properties and audit trail. Clicking a node in the graph (static/js/explorer.js) expands it with
its neighbours, read from the lineage API with the same session."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import BadRequest
from django.http import Http404
from django.shortcuts import render

from core.web import page_context, workspace_page
from lineage import selectors
from lineage.figures import network_figure
from lineage.stores import get_graph_store


def _depth(request) -> int:
    try:
        return max(1, min(int(request.GET.get("depth") or 3), 10))
    except ValueError:
        raise BadRequest("depth must be a whole number") from None


@workspace_page
def explorer(request, workspace, node_id: int | None = None):
    if "lineage:read" not in request.scopes:
        raise Http404("no lineage access")
    query = request.GET.get("q", "").strip()
    kind = request.GET.get("kind", "").strip()
    found = list(selectors.node_list(workspace=workspace, kind=kind, q=query)[:50]) if (query or kind) else []
    context: dict[str, Any] = {"q": query, "kind": kind, "found": found}
    if node_id is not None:
        node = selectors.node_get(workspace=workspace, node_id=node_id)  # NotFound: a 404 page
        depth = _depth(request)
        store = get_graph_store(workspace)
        context.update(
            node=node,
            depth=depth,
            figure=network_figure(
                node.pk,
                store.upstream(node.pk, depth=depth),
                store.downstream(node.pk, depth=depth),
                title="Upstream (left) and downstream (right)",
                height=460,
            ),
            # The audit trail is the audit log's: shown to members who may read it.
            trail=(
                selectors.node_audit_trail(workspace=workspace, node=node)
                if "audit:read" in request.scopes
                else None
            ),
        )
    return render(request, "lineage/explorer.html", page_context(request, **context))
