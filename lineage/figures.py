"""Lineage subgraphs shaped for the dashboard: a plotly figure for the request page's provenance (the
root in the middle, upstream nodes in columns to the left by distance, downstream ones to the right),
and for the lineage explorer the plain nodes and edges that static/js/explorer.js draws with
Cytoscape.js, plus a node's properties as rows of text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lineage.kinds import SOURCE_IS_UPSTREAM
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


def explorer_graph(root_id: int, upstream: Subgraph, downstream: Subgraph) -> dict[str, Any]:
    """The root's upstream and downstream walks as one graph for the explorer: nodes without their
    properties (the side panel reads those one node at a time), edges as recorded, and the edge kinds
    whose source is the upstream end (so the page can draw every arrow from upstream to downstream)."""
    nodes: dict[int, dict[str, Any]] = {}
    edges: dict[int, dict[str, Any]] = {}
    for graph in (upstream, downstream):
        for node in graph.nodes:
            nodes.setdefault(node.id, {"id": node.id, "kind": node.kind, "key": node.key, "name": node.name})
        for edge in graph.edges:
            edges.setdefault(edge.id, {"id": edge.id, "kind": edge.kind, "src": edge.src, "dst": edge.dst})
    return {
        "root": root_id,
        "nodes": list(nodes.values()),
        "edges": list(edges.values()),
        "truncated": upstream.truncated or downstream.truncated,
        "source_is_upstream": sorted(SOURCE_IS_UPSTREAM),
    }


@dataclass(frozen=True)
class PropertyRow:
    name: str
    text: str
    is_json: bool  # shown as JSON (numbers, booleans, null, lists, objects); strings as they are


def node_property_rows(properties: dict[str, Any]) -> list[PropertyRow]:
    """A node's properties, sorted by name, each value as text: strings verbatim, anything else as
    indented JSON (never a Python repr)."""
    return [
        PropertyRow(name, value, False)
        if isinstance(value, str)
        else PropertyRow(name, json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True), True)
        for name, value in sorted(properties.items())
    ]
