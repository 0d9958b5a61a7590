"""Plotly figures of lineage subgraphs, for the dashboard (one layout for every page that draws
a graph): the root in the middle, upstream nodes in columns to the left by distance, downstream ones
to the right."""

from __future__ import annotations

from typing import Any

from lineage.stores.base import Subgraph


def network_figure(
    root_id: int, upstream: Subgraph, downstream: Subgraph | None = None, *, title: str, height: int = 440
) -> dict[str, Any]:
    position: dict[int, tuple[float, float]] = {}
    nodes = {}
    for graph, sign in ((upstream, -1), (downstream, 1)):
        if graph is None:
            continue
        columns: dict[int, list] = {}
        for node in graph.nodes:
            columns.setdefault(node.depth or 0, []).append(node)
            nodes[node.id] = node
        for depth, column in columns.items():
            for index, node in enumerate(sorted(column, key=lambda n: (n.kind, n.key))):
                position.setdefault(node.id, (sign * depth, index - (len(column) - 1) / 2))
    position[root_id] = (0, 0)
    xs: list[float | None] = []
    ys: list[float | None] = []
    edges = [*upstream.edges, *(downstream.edges if downstream is not None else [])]
    for edge in edges:
        if edge.src in position and edge.dst in position:
            (x0, y0), (x1, y1) = position[edge.src], position[edge.dst]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
    ids = [i for i in position if i in nodes]
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
                "text": [nodes[i].key for i in ids],
                "hovertext": [f"{nodes[i].kind}: {nodes[i].key}" for i in ids],
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
            "title": {"text": title},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "height": height,
            "clickmode": "event",
        },
    }
