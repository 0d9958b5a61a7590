"""SqlGraphStore: recursive CTEs over the relational Node/Edge tables (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db import connection

from lineage.models import Edge, Node
from lineage.stores.base import Direction, GraphEdge, GraphNode, GraphStore

CHUNK = 900  # well under SQLite's limit on bound parameters


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    items = sorted(set(ids))
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class SqlGraphStore(GraphStore):
    name = "sql"

    def walk(self, node_id: int, direction: Direction, depth: int, limit: int) -> dict[int, int]:
        if not Node.objects.filter(pk=node_id, workspace=self.workspace).exists():
            return {}
        here, there = ("down_id", "up_id") if direction == "up" else ("up_id", "down_id")
        # UNION (not UNION ALL) drops repeated (node, depth) rows, and the depth bound stops the
        # recursion, so a cycle in the data cannot make this run forever.
        sql = f"""
            WITH RECURSIVE walk(node_id, depth) AS (
                SELECT CAST(%s AS BIGINT), 0
                UNION
                SELECT e.{there}, w.depth + 1
                FROM {Edge._meta.db_table} e JOIN walk w ON e.{here} = w.node_id
                WHERE w.depth < %s AND e.workspace_id = %s
            )
            SELECT node_id, MIN(depth) AS depth FROM walk GROUP BY node_id ORDER BY depth, node_id LIMIT %s
        """  # noqa: S608  (column and table names are constants, values are parameters)
        workspace_id = Node._meta.get_field("workspace").get_db_prep_value(
            self.workspace.pk, connection, prepared=False
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [node_id, depth, workspace_id, limit])
            return {row[0]: row[1] for row in cursor.fetchall()}

    def nodes(self, ids: Iterable[int]) -> list[GraphNode]:
        out = []
        for chunk in _chunks(ids):
            for node in Node.objects.filter(workspace=self.workspace, pk__in=chunk):
                out.append(GraphNode(node.pk, node.kind, node.key, node.name, node.properties))
        return out

    def edges_among(self, ids: Iterable[int]) -> list[GraphEdge]:
        wanted = set(ids)
        out = []
        for chunk in _chunks(wanted):
            rows = Edge.objects.filter(workspace=self.workspace, down_id__in=chunk).values_list(
                "pk", "kind", "src_id", "dst_id", "up_id"
            )
            out += [GraphEdge(pk, kind, src, dst) for pk, kind, src, dst, up in rows if up in wanted]
        return out

    def neighbours(self, frontier: set[int]) -> list[tuple[int, int]]:
        pairs = []
        for chunk in _chunks(frontier):
            # up/down are the same two ends as src/dst, and each has an index of its own.
            for field in ("up_id__in", "down_id__in"):
                rows = Edge.objects.filter(workspace=self.workspace, **{field: chunk}).values_list(
                    "src_id", "dst_id"
                )
                pairs += list(rows)
        return pairs
