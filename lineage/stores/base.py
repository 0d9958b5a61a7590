"""The graph-store interface, with the algorithms both stores share."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from django.conf import settings

from core.models import Workspace
from lineage.kinds import IMPACT_KINDS

Direction = Literal["up", "down"]


@dataclass
class GraphNode:
    id: int
    kind: str
    key: str
    name: str
    properties: dict[str, Any]
    depth: int | None = None


@dataclass
class GraphEdge:
    id: int
    kind: str
    src: int
    dst: int


@dataclass
class Subgraph:
    """The one JSON shape every graph query answers with (and the dashboard draws)."""

    root: int | None
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "nodes": [asdict(n) for n in self.nodes],
            "edges": [asdict(e) for e in self.edges],
            "truncated": self.truncated,
        }


class GraphStore(ABC):
    """Graph queries within one workspace. Node ids are the relational record's ids."""

    name = "abstract"

    def __init__(self, workspace: Workspace):
        self.workspace = workspace

    # --- what each store implements -----------------------------------------------------------------
    @abstractmethod
    def walk(self, node_id: int, direction: Direction, depth: int, limit: int) -> dict[int, int]:
        """{node id: shortest distance} for nodes within `depth` along `direction`, root included."""

    @abstractmethod
    def nodes(self, ids: Iterable[int]) -> list[GraphNode]:
        """The nodes with these ids (in this workspace)."""

    @abstractmethod
    def edges_among(self, ids: Iterable[int]) -> list[GraphEdge]:
        """Every edge whose two ends are both in `ids`."""

    @abstractmethod
    def neighbours(self, frontier: set[int]) -> list[tuple[int, int]]:
        """(from, to) pairs for every edge touching `frontier`, in either direction."""

    # --- the queries ----------------------------------------------------------------------------------
    def upstream(self, node_id: int, depth: int = 10, kinds: Iterable[str] | None = None) -> Subgraph:
        """What the node was built from: its provenance, `depth` steps back."""
        return self._neighbourhood(node_id, "up", depth, kinds)

    def downstream(self, node_id: int, depth: int = 10, kinds: Iterable[str] | None = None) -> Subgraph:
        """What was built from the node, `depth` steps forward."""
        return self._neighbourhood(node_id, "down", depth, kinds)

    def impact(self, node_id: int, depth: int | None = None) -> Subgraph:
        """The model versions and deployments that depend on the node, `depth` steps downstream
        (by default as far as LINEAGE_MAX_DEPTH)."""
        return self._neighbourhood(node_id, "down", depth or settings.LINEAGE_MAX_DEPTH, IMPACT_KINDS)

    def provenance(self, node_id: int) -> Subgraph:
        """The node's full upstream subgraph (bounded by LINEAGE_MAX_DEPTH)."""
        return self._neighbourhood(node_id, "up", settings.LINEAGE_MAX_DEPTH, None)

    def path(self, a: int, b: int, max_depth: int = 20) -> Subgraph | None:
        """A shortest path between two nodes, ignoring edge direction; None when there is none."""
        if a == b:
            return Subgraph(root=a, nodes=self.nodes([a]))
        parents: dict[int, int | None] = {a: None}
        frontier = {a}
        for _ in range(max_depth):
            following: set[int] = set()
            for src, dst in self.neighbours(frontier):
                for here, there in ((src, dst), (dst, src)):
                    if here in frontier and there not in parents:
                        parents[there] = here
                        following.add(there)
            if b in parents:
                chain = [b]
                while parents[chain[-1]] is not None:
                    chain.append(parents[chain[-1]])  # type: ignore[arg-type]
                chain.reverse()
                by_id = {n.id: n for n in self.nodes(chain)}
                nodes = [by_id[i] for i in chain]
                for depth, node in enumerate(nodes):
                    node.depth = depth
                pairs = {frozenset(p) for p in itertools.pairwise(chain)}
                edges = [e for e in self.edges_among(chain) if frozenset((e.src, e.dst)) in pairs]
                return Subgraph(root=a, nodes=nodes, edges=edges)
            if not following:
                return None
            frontier = following
        return None

    def _neighbourhood(
        self, node_id: int, direction: Direction, depth: int, kinds: Iterable[str] | None
    ) -> Subgraph:
        limit = settings.LINEAGE_MAX_RESULT_NODES
        depths = self.walk(node_id, direction, depth, limit + 1)
        truncated = len(depths) > limit
        if truncated:
            depths = dict(sorted(depths.items(), key=lambda item: (item[1], item[0]))[:limit])
        nodes = self.nodes(depths)
        wanted = set(kinds) if kinds else None
        nodes = [n for n in nodes if n.id == node_id or wanted is None or n.kind in wanted]
        for node in nodes:
            node.depth = depths[node.id]
        nodes.sort(key=lambda n: (n.depth or 0, n.kind, n.key))
        kept = {n.id for n in nodes}
        edges = list(self.edges_among(kept))
        edges.sort(key=lambda e: e.id)
        return Subgraph(root=node_id, nodes=nodes, edges=edges, truncated=truncated)
