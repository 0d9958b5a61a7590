"""DP release latency through the service against OpenDP called directly, and ledger throughput
under concurrent load.

    python benchmarks/privacy_release.py --quick      # 100,000 rows, SQLite, < 1 minute
    python benchmarks/privacy_release.py --database postgres://postgres@127.0.0.1:5432/mlgov_bench

Latency: a count, a bounded mean and a 20-bin histogram on a 1,000,000-row dataset version, each
asked `--repeats` times (different epsilons, so no answer comes from the ledger) through the API
(in-process test client: authentication, validation, budget lock, release, lineage node, audit event),
the first request included (it loads the dataset version); p50 against the same releases made by
calling OpenDP directly (calibration by binary search plus the release, on a prepared list).
Throughput: threads asking distinct small releases at once; releases/s (PostgreSQL: row lock).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET = 1.5  # service p50 <= 1.5 x direct


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ.setdefault("ARTIFACT_ROOT", tempfile.mkdtemp(prefix="bench-artifacts-"))
    import django

    if database_url.startswith("postgres"):
        import psycopg

        base, _, name = database_url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build(rows: int):
    import pandas as pd

    rng = np.random.default_rng(0)
    hours = rng.uniform(0, 100, rows).round(2)
    bands = [f"band-{i:02d}" for i in range(20)]
    return pd.DataFrame({"hours": hours, "band": rng.choice(bands, rows)}), bands


def direct(frame, bands, kind: str, epsilon: float):
    """The same release with OpenDP alone."""
    import opendp.prelude as dp

    dp.enable_features("contrib", "floating-point")
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()
    if kind == "count":
        data = direct.count_data

        def make(s):
            return space >> dp.t.then_count() >> dp.m.then_laplace(scale=s)
    elif kind == "mean":
        data = direct.hours

        def make(s):
            return (
                space
                >> dp.t.then_clamp((0.0, 100.0))
                >> dp.t.then_resize(size=len(frame), constant=50.0)
                >> dp.t.then_mean()
                >> dp.m.then_laplace(scale=s)
            )
    else:
        data = direct.bands
        str_space = dp.vector_domain(dp.atom_domain(T=str)), dp.symmetric_distance()

        def make(s):
            return str_space >> dp.t.then_count_by_categories(categories=bands) >> dp.m.then_laplace(scale=s)

    scale = dp.binary_search_param(make, d_in=1, d_out=epsilon)
    return make(scale)(data)


QUERIES = {
    "count": lambda eps: {"statistic": "count", "epsilon": eps},
    "mean": lambda eps: {"statistic": "mean", "column": "hours", "epsilon": eps},
    "histogram": lambda eps: {"statistic": "histogram", "column": "band", "epsilon": eps},
}


def result(name: str, value: float, unit: str, baseline: str, ratio: float) -> None:
    print(f"RESULT {name} {value:.6g} {unit} baseline={baseline} ratio={ratio:.4g}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows
    database = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    setup_django(database)

    from django.db import connection, connections
    from django.urls import reverse
    from rest_framework.test import APIClient

    from core.actors import Actor
    from core.artifacts import Spool, artifact_store
    from core.roles import Role
    from lineage.models import Node
    from lineage.native import native_batch
    from lineage.services import lineage_record
    from privacy import services
    from tests.factories import make_member, make_token, make_user, make_workspace

    admin = make_user("bench-admin")
    workspace = make_workspace("bench", admin=admin)
    analyst = make_member(workspace, Role.DATA_SCIENTIST, "bench-analyst")
    frame, bands = build(rows)
    spool = Spool()
    spool.write(frame.to_csv(index=False).encode())
    artifact, _ = artifact_store(
        workspace=workspace, actor=Actor(user=analyst), spool=spool.finish(), filename="d.csv"
    )
    meta = {"unit": 1, "public_rows": rows, "bounds": {"hours": [0, 100]}, "categories": {"band": bands}}
    body = {
        "events": [
            {
                "type": "node",
                "kind": "DatasetVersion",
                "key": "bench@v1",
                "artifact": str(artifact.pk),
                "properties": {"privacy": meta},
            }
        ]
    }
    lineage_record(
        workspace=workspace, actor=Actor(user=analyst), batch=native_batch(body), source="b", body=body
    )
    node = Node.objects.get(workspace=workspace, key="bench@v1")
    services.budget_set(workspace=workspace, actor=Actor(user=admin), node=node, epsilon=1e6, delta=0.0)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(workspace, analyst, ['privacy:release'])}")
    url = reverse("dp-releases", kwargs={"name": "bench", "version": "v1"})
    print(
        f"# {connection.vendor}: {rows} rows; {args.repeats} releases of each kind; first request included",
        flush=True,
    )

    direct.count_data = [0.0] * rows
    direct.hours = frame["hours"].astype(float).tolist()
    direct.bands = frame["band"].astype(str).tolist()
    k = 0
    for kind, make_query in QUERIES.items():
        service_times, direct_times = [], []
        for _ in range(args.repeats):
            k += 1
            epsilon = 0.5 + k * 1e-3
            start = time.perf_counter()
            response = client.post(url, make_query(epsilon), format="json")
            service_times.append(time.perf_counter() - start)
            if response.status_code != 201:
                raise SystemExit(f"release failed: {response.status_code} {response.content[:300]!r}")
            start = time.perf_counter()
            direct(frame, bands, kind, epsilon)
            direct_times.append(time.perf_counter() - start)
        s50, d50 = statistics.median(service_times), statistics.median(direct_times)
        print(
            f"# {kind}: service p50 {s50 * 1000:.1f} ms (first {service_times[0] * 1000:.1f} ms, "
            f"max {max(service_times) * 1000:.1f} ms); direct OpenDP p50 {d50 * 1000:.1f} ms",
            flush=True,
        )
        overhead = s50 / d50
        result(f"dp_release_{kind}_p50_{rows}_rows", s50 * 1000, "ms", "opendp-direct", d50 / s50)
        result(f"dp_release_{kind}_overhead", overhead, "x", "target-1.5x", TARGET / overhead)

    # Ledger throughput: distinct small releases from many threads against one budget row.
    small = Node.objects.get(pk=node.pk)
    frame_small, _ = build(1000)
    spool = Spool()
    spool.write(frame_small.to_csv(index=False).encode())
    small_artifact, _ = artifact_store(
        workspace=workspace, actor=Actor(user=analyst), spool=spool.finish(), filename="s.csv"
    )
    body = {
        "events": [
            {
                "type": "node",
                "kind": "DatasetVersion",
                "key": "small@v1",
                "artifact": str(small_artifact.pk),
                "properties": {"privacy": {"unit": 1, "bounds": {"hours": [0, 100]}}},
            }
        ]
    }
    lineage_record(
        workspace=workspace, actor=Actor(user=analyst), batch=native_batch(body), source="b", body=body
    )
    small = Node.objects.get(workspace=workspace, key="small@v1")
    services.budget_set(workspace=workspace, actor=Actor(user=admin), node=small, epsilon=1e6, delta=0.0)
    per_thread = 10 if args.quick else 25
    errors: list[str] = []
    barrier = threading.Barrier(args.threads)

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                query = {
                    "statistic": "sum",
                    "column": "hours",
                    "bounds": [0, 100 + t * 1000 + i],
                    "mechanism": "laplace",
                    "epsilon": 0.01,
                }
                services.release_request(
                    workspace=workspace, actor=Actor(user=analyst), node=small, request=query
                )
        except Exception as error:  # reported below
            errors.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(args.threads)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    total = args.threads * per_thread
    if errors:
        print(f"# {len(errors)} threads failed, first: {errors[0]}", flush=True)
    budget = services.PrivacyBudget.objects.get(dataset_node=small)
    print(
        f"# ledger: {total} releases from {args.threads} threads in {seconds:.2f} s; "
        f"spent {budget.epsilon_spent:.2f} = {total} x 0.01",
        flush=True,
    )
    result(f"dp_ledger_{connection.vendor}_releases_per_s", total / seconds, "releases/s", "none", 1.0)


if __name__ == "__main__":
    main()
