"""The lineage explorer page: find a node, draw its upstream and downstream graph, show its
properties and audit trail. Clicking a node in the graph (static/js/explorer.js) expands it with
its neighbours, read from the lineage API with the same session."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.shortcuts import render

from core.models import AuditEvent
from core.web import page_context, workspace_page
from lineage import selectors
from lineage.models import Node
from lineage.stores import get_graph_store


def _figure(subgraph_up, subgraph_down, root_id: int) -> dict[str, Any]:
    """Upstream to the left, downstream to the right, the root in the middle."""
    position: dict[int, tuple[float, float]] = {}
    labels: dict[int, str] = {}
    for graph, sign in ((subgraph_up, -1), (subgraph_down, 1)):
        columns: dict[int, list] = {}
        for node in graph.nodes:
            columns.setdefault(node.depth or 0, []).append(node)
            labels[node.id] = f"{node.kind}: {node.key}"
        for depth, nodes in columns.items():
            for index, node in enumerate(sorted(nodes, key=lambda n: (n.kind, n.key))):
                if node.id not in position or depth == 0:
                    position[node.id] = (sign * depth, index - (len(nodes) - 1) / 2)
    position[root_id] = (0, 0)
    xs: list[float | None] = []
    ys: list[float | None] = []
    for edge in [*subgraph_up.edges, *subgraph_down.edges]:
        if edge.src in position and edge.dst in position:
            (x0, y0), (x1, y1) = position[edge.src], position[edge.dst]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
    ids = list(position)
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": xs,
                "y": ys,
                "hoverinfo": "skip",
                "line": {"color": "#9aa5b5", "width": 1},
                "showlegend": False,
            },
            {
                "type": "scatter",
                "mode": "markers+text",
                "x": [position[i][0] for i in ids],
                "y": [position[i][1] for i in ids],
                "text": [labels.get(i, str(i)).split(": ", 1)[-1] for i in ids],
                "hovertext": [labels.get(i, str(i)) for i in ids],
                "hoverinfo": "text",
                "customdata": ids,
                "textposition": "top center",
                "showlegend": False,
                "marker": {
                    "size": [18 if i == root_id else 11 for i in ids],
                    "color": ["#1f5fbf" if i == root_id else "#6b7280" for i in ids],
                },
            },
        ],
        "layout": {
            "title": {"text": "Upstream (left) and downstream (right)"},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "height": 460,
            "clickmode": "event",
        },
    }


@workspace_page
def explorer(request, workspace, node_id: int | None = None):
    if "lineage:read" not in request.scopes:
        raise Http404("no lineage access")
    query = request.GET.get("q", "").strip()
    kind = request.GET.get("kind", "").strip()
    found = list(selectors.node_list(workspace=workspace, kind=kind, q=query)[:50]) if (query or kind) else []
    context: dict[str, Any] = {"q": query, "kind": kind, "found": found}
    if node_id is not None:
        node = Node.objects.filter(workspace=workspace, pk=node_id).first()
        if node is None:
            raise Http404("no such node")
        depth = min(int(request.GET.get("depth", 3) or 3), 10)
        store = get_graph_store(workspace)
        context.update(
            node=node,
            depth=depth,
            figure=_figure(
                store.upstream(node.pk, depth=depth), store.downstream(node.pk, depth=depth), node.pk
            ),
            trail=AuditEvent.objects.filter(workspace=workspace, target__endswith=node.key).order_by("-seq")[
                :50
            ],
        )
    return render(request, "lineage/explorer.html", page_context(request, **context))
