"""Lineage graph benchmark: ingestion throughput through the service layer, and upstream / impact
query latency at depth 10 on a large synthetic graph, for each graph store.

    python benchmarks/lineage_graph.py --quick                     # SQLite, ~20k nodes, < 1 minute
    python benchmarks/lineage_graph.py --database postgres://postgres@127.0.0.1:5432/mlgov_bench
    python benchmarks/lineage_graph.py --nodes 1000000 --neo4j falkordb

The graph: pipelines of runs, each reading 1-3 dataset versions made by recent runs (so provenance
chains are deep), writing a dataset version or (one run in four) a model version trained on its
inputs, from a commit and in an environment; model versions are deployed. About 3 edges per node.

Ingestion is measured with native "run" events through native_batch + lineage_record (validation,
upserts, outbox, audit) in batches of 500. The rest of the graph is bulk-loaded (not measured) so the
query figures run on the full size. Baselines are the issue's targets (no peer runs here):
3,000 events/s ingestion on PostgreSQL; upstream depth-10 p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INGEST_TARGET = 3000.0  # events/s
LATENCY_TARGET_MS = 50.0


def setup_django(database_url: str, neo4j_uri: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ["DEBUG"] = "0"
    if neo4j_uri:
        os.environ["NEO4J_URI"] = neo4j_uri
        os.environ["NEO4J_FLAVOR"] = "falkordb"
    import django

    django.setup()
    from django.core.management import call_command

    if database_url.startswith("postgres"):
        import psycopg

        base, _, name = database_url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)


def run_event(i: int, inputs: list[str], output: tuple[str, str]) -> dict:
    return {
        "type": "run",
        "run": {"key": f"run-{i}", "properties": {"n": i}},
        "job": {"key": f"job-{i % 100}"},
        "inputs": [{"kind": "DatasetVersion", "key": k} for k in inputs],
        "outputs": [{"kind": output[0], "key": output[1]}],
        "commit": {"key": f"commit-{i // 10}"},
        "environment": {"key": f"env-{i % 50}"},
    }


def pipeline(runs: int, seed: int = 7):
    """Yield run events whose inputs are recent outputs, giving long provenance chains."""
    rng = random.Random(seed)
    recent: list[str] = [f"raw-{k}@v1" for k in range(50)]
    for i in range(runs):
        fan_in = rng.choice((1, 1, 1, 2, 3))
        inputs = rng.sample(recent[-200:], min(fan_in, len(recent)))
        if i % 4 == 3:
            output = ("ModelVersion", f"model-{i % 500}@{i}")
        else:
            output = ("DatasetVersion", f"ds-{i}@v1")
            recent.append(output[1])
        yield run_event(i, inputs, output)


def measure_ingestion(workspace, actor, events: list[dict]) -> float:
    from lineage.native import native_batch
    from lineage.services import lineage_record

    start = time.perf_counter()
    for offset in range(0, len(events), 500):
        body = {"events": events[offset : offset + 500]}
        lineage_record(workspace=workspace, actor=actor, batch=native_batch(body), source="bench", body=body)
    return len(events) / (time.perf_counter() - start)


def bulk_load(workspace, events: list[dict]) -> None:
    """Load many run events quickly (same graph shape as the service builds, without its checks)."""
    from django.db import transaction

    from lineage.kinds import dependency_ends
    from lineage.models import Edge, Node
    from lineage.native import native_batch

    next_id = (Node.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    next_edge = (Edge.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    ids = {(n.kind, n.key): n.pk for n in Node.objects.filter(workspace=workspace).only("id", "kind", "key")}
    for offset in range(0, len(events), 5000):
        batch = native_batch({"events": events[offset : offset + 5000]})
        nodes, edges = [], []
        for ref, spec in batch.nodes.items():
            if ref not in ids:
                ids[ref] = next_id
                nodes.append(
                    Node(
                        id=next_id,
                        workspace=workspace,
                        kind=spec.kind,
                        key=spec.key,
                        properties=spec.properties,
                    )
                )
                next_id += 1
        for src, dst, kind in batch.edges:
            up, down = dependency_ends(kind, ids[src], ids[dst])
            edges.append(
                Edge(
                    id=next_edge,
                    workspace=workspace,
                    kind=kind,
                    src_id=ids[src],
                    dst_id=ids[dst],
                    up_id=up,
                    down_id=down,
                )
            )
            next_edge += 1
        with transaction.atomic():
            Node.objects.bulk_create(nodes, batch_size=5000)
            Edge.objects.bulk_create(edges, batch_size=5000, ignore_conflicts=True)


def falkordb_bulk_load(workspace, server, graph, chunk: int = 20_000) -> None:
    """Load the relational graph into FalkorDB through its native Redis protocol, in large UNWIND
    statements. Benchmark only: the service projects through Bolt (outbox / lineage_resync), where
    FalkorDB's endpoint takes about 1.5 KB of parameters per statement, too slow for a million nodes.
    The result is the same graph the projection builds (same labels, properties, encoding), so
    Neo4jGraphStore queries it over Bolt as usual."""
    import redis

    from lineage.models import Edge, Node

    graph.ensure_schema()  # the rid and ws indexes, through Bolt
    client = redis.Redis(host="127.0.0.1", port=server.port)

    def text(value: str) -> str:
        encoded = graph.enc(value)
        if "'" in encoded or "\\" in encoded:
            raise ValueError(f"unexpected character after encoding: {encoded!r}")
        return f"'{encoded}'"

    ws = text(str(workspace.pk))
    kinds = Node.objects.filter(workspace=workspace).values_list("kind", flat=True).distinct()
    for kind in kinds:
        rows = (
            Node.objects.filter(workspace=workspace, kind=kind)
            .values_list("id", "key", "name")
            .order_by("id")
        )
        items = (
            f"{{rid:{rid},ws:{ws},kind:'{kind}',key:{text(key)},name:{text(label)},props:''}}"
            for rid, key, label in rows.iterator(chunk_size=chunk)
        )
        _unwind(client, items, f"CREATE (n:LineageNode:{kind}) SET n = r", chunk)
    edge_kinds = Edge.objects.filter(workspace=workspace).values_list("kind", flat=True).distinct()
    for kind in edge_kinds:
        rows = (
            Edge.objects.filter(workspace=workspace, kind=kind)
            .values_list("id", "src_id", "dst_id", "up_id", "down_id")
            .order_by("id")
        )
        items = (
            f"{{rid:{rid},src:{src},dst:{dst},up:{up},down:{down}}}"
            for rid, src, dst, up, down in rows.iterator(chunk_size=chunk)
        )
        statement = (
            "MATCH (a:LineageNode {rid: r.down}) MATCH (b:LineageNode {rid: r.up}) "
            f"CREATE (a)-[:{kind} {{rid: r.rid, src: r.src, dst: r.dst}}]->(b)"
        )
        _unwind(client, items, statement, chunk)
    client.close()


def _unwind(client, items: Iterable[str], statement: str, chunk: int) -> None:
    """Run `statement` once per row of `items` (Cypher map literals, bound to `r`), `chunk` rows to a
    query, on the graph FalkorDB's Bolt endpoint serves."""
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == chunk:
            _graph_query(client, batch, statement)
            batch = []
    if batch:
        _graph_query(client, batch, statement)


def _graph_query(client, rows: list[str], statement: str) -> None:
    client.execute_command(
        "GRAPH.QUERY", "falkordb", f"CYPHER rows=[{','.join(rows)}] UNWIND $rows AS r {statement}"
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_queries(store, roots: list[int], impact_roots: list[int]) -> dict[str, float]:
    up, impact, sizes = [], [], []
    for node in roots:
        start = time.perf_counter()
        result = store.upstream(node, depth=10)
        up.append((time.perf_counter() - start) * 1000)
        sizes.append(len(result.nodes))
    for node in impact_roots:
        start = time.perf_counter()
        store.impact(node, depth=10)
        impact.append((time.perf_counter() - start) * 1000)
    return {
        "upstream_p50": statistics.median(up),
        "upstream_p95": percentile(up, 0.95),
        "impact_p50": statistics.median(impact),
        "impact_p95": percentile(impact, 0.95),
        "upstream_nodes_mean": statistics.mean(sizes),
    }


def result(name: str, value: float, unit: str, baseline: str, ratio: float) -> None:
    print(f"RESULT {name} {value:.2f} {unit} baseline={baseline} ratio={ratio:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="about 20,000 nodes and 2,000 measured events")
    parser.add_argument("--nodes", type=int, default=1_000_000, help="approximate size of the graph")
    parser.add_argument(
        "--ingest-events", type=int, default=30_000, help="events measured through the service"
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--database", default="", help="DATABASE_URL (default: a fresh SQLite file)")
    parser.add_argument(
        "--bulk-graph-load",
        action="store_true",
        help="with --neo4j falkordb: load the graph through FalkorDB's native protocol instead of "
        "projecting it over Bolt (the projection of a million nodes takes too long on FalkorDB)",
    )
    parser.add_argument(
        "--neo4j",
        choices=["", "falkordb"],
        default="",
        help="also project into a FalkorDB Bolt server started here and query it",
    )
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.ingest_events, args.queries = 20_000, 2_000, 50
    tmp = Path(tempfile.mkdtemp(prefix="mlgov-bench-"))
    database = args.database or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["MLGOV_VAR_DIR"] = str(tmp)
    server = None
    if args.neo4j:
        from tests.lineage.graph_server import FalkorServer

        server = FalkorServer(tmp / "falkordb")
        server.start()
    setup_django(database, server.uri if server else "")
    from django.db import connection

    from core.actors import SYSTEM
    from core.workspaces import workspace_create
    from lineage.models import Edge, Node
    from lineage.stores.sql import SqlGraphStore

    backend = connection.vendor
    workspace = workspace_create(slug="bench", name="Bench", actor=SYSTEM)
    runs = int(args.nodes / 2.4)
    events = list(pipeline(runs))
    measured = events[: args.ingest_events]
    print(f"# {backend}: {runs} runs, measuring ingestion of {len(measured)} events", flush=True)
    rate = measure_ingestion(workspace, SYSTEM, measured)
    result(f"lineage_ingest_{backend}", rate, "events/s", "target-3000-events/s", rate / INGEST_TARGET)

    start = time.perf_counter()
    bulk_load(workspace, events[len(measured) :])
    n_nodes, n_edges = Node.objects.count(), Edge.objects.count()
    print(f"# loaded {n_nodes} nodes and {n_edges} edges in {time.perf_counter() - start:.0f} s", flush=True)
    if backend == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    rng = random.Random(11)
    models = list(Node.objects.filter(workspace=workspace, kind="ModelVersion").values_list("id", flat=True))
    datasets = list(
        Node.objects.filter(workspace=workspace, kind="DatasetVersion").values_list("id", flat=True)
    )
    roots = rng.sample(models, min(args.queries, len(models)))
    impact_roots = rng.sample(datasets[-len(datasets) // 2 :], min(args.queries, len(datasets) // 2))
    stores = [("sql_" + backend, SqlGraphStore(workspace))]
    if server is not None:
        from lineage.projection import lineage_resync
        from lineage.stores.neo4j import GraphConnection, Neo4jGraphStore

        graph = GraphConnection(server.uri, "", "", "falkordb")
        start = time.perf_counter()
        if args.bulk_graph_load:
            falkordb_bulk_load(workspace, server, graph)
            how = "bulk-loaded into FalkorDB (native protocol)"
        else:
            lineage_resync(graph=graph, batch_size=5000)
            how = "projected into FalkorDB (lineage_resync over Bolt)"
        print(f"# {how} in {time.perf_counter() - start:.0f} s", flush=True)
        stores.append(("neo4j_falkordb", Neo4jGraphStore(workspace, graph)))
    if len(stores) > 1:
        # Both stores must give the same answers before their speeds are compared.
        sample = roots[:20]
        same = sum(
            {n.id for n in stores[0][1].upstream(r, depth=10).nodes}
            == {n.id for n in stores[1][1].upstream(r, depth=10).nodes}
            for r in sample
        )
        print(f"# stores agree on {same} of {len(sample)} upstream walks", flush=True)
    for name, store in stores:
        figures = measure_queries(store, roots, impact_roots)
        print(
            f"# {name}: upstream depth 10 returns {figures['upstream_nodes_mean']:.0f} nodes on average",
            flush=True,
        )
        for metric in ("upstream_p50", "upstream_p95", "impact_p50", "impact_p95"):
            value = figures[metric]
            result(
                f"lineage_{metric}_{name}", value, "ms", "target-50ms", LATENCY_TARGET_MS / max(value, 1e-6)
            )
    if server is not None:
        graph.close()
        server.stop()


if __name__ == "__main__":
    main()
