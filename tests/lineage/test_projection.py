"""The outbox keeps every lineage change while the graph database is down, and the projection
catches up once it is back; `lineage_resync` rebuilds the graph from the relational record."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command
from django.urls import reverse

from lineage import services
from lineage.models import Edge, Node, OutboxEntry
from lineage.projection import GraphUnavailable, lineage_resync, outbox_drain, outbox_pending
from lineage.stores.neo4j import GraphConnection
from lineage.tasks import project_outbox, project_outbox_scheduled
from tests.conftest import bearer
from tests.factories import make_token, make_user, make_workspace
from tests.lineage.graph_server import FalkorServer
from tests.lineage.helpers import ref
from tests.workers import embedded_broker, start_worker, stop_worker


@pytest.fixture
def own_graph(tmp_path, settings):
    """A graph server of this test's own, so stopping it disturbs no other test."""
    server = FalkorServer(tmp_path / "graph")
    server.start()
    settings.NEO4J_URI, settings.NEO4J_USER, settings.NEO4J_PASSWORD = server.uri, "", ""
    settings.NEO4J_FLAVOR = "falkordb"
    connection = GraphConnection(server.uri, "", "", "falkordb")
    yield server, connection
    connection.close()
    server.stop()


def sql_snapshot(workspace, with_properties: bool):
    nodes = {
        (n.pk, n.kind, n.key, n.name, json.dumps(n.properties, sort_keys=True) if with_properties else "")
        for n in Node.objects.filter(workspace=workspace)
    }
    edges = {(e.pk, e.kind, e.src_id, e.dst_id) for e in Edge.objects.filter(workspace=workspace)}
    return nodes, edges


def graph_snapshot(connection: GraphConnection, workspace):
    ws = connection.enc(str(workspace.pk))
    rows = connection.run(
        lambda tx: [
            r.data()
            for r in tx.run(
                "MATCH (n:LineageNode {ws: $ws}) "
                "RETURN n.rid AS rid, n.kind AS kind, n.key AS key, n.name AS name, n.props AS props",
                ws=ws,
            )
        ]
    )
    # On FalkorDB the properties stay in the relational record (Capabilities.properties_in_graph).
    props = connection.caps.properties_in_graph
    nodes = {
        (
            r["rid"],
            r["kind"],
            connection.dec(r["key"]),
            connection.dec(r["name"]),
            json.dumps(json.loads(connection.dec(r["props"])), sort_keys=True) if props else "",
        )
        for r in rows
    }
    rels = connection.run(
        lambda tx: [
            r.data()
            for r in tx.run(
                "MATCH (a:LineageNode {ws: $ws})-[e]->(b:LineageNode) RETURN e.rid AS rid, type(e) AS kind, "
                "e.src AS src, e.dst AS dst",
                ws=ws,
            )
        ]
    )
    return nodes, {(r["rid"], r["kind"], r["src"], r["dst"]) for r in rels}


def batch(n: int) -> dict:
    return {
        "events": [
            {
                "type": "run",
                "run": {"key": f"run-{n}"},
                "job": {"key": "train"},
                "inputs": [ref("DatasetVersion", f"adult@v{n}")],
                "outputs": [ref("ModelVersion", f"income@{n}")],
            },
            {
                "type": "node",
                "kind": "Dataset",
                "key": f"quote'{n}\x00nul",
                "properties": {"note": "x'}) DETACH DELETE n //"},
            },
        ]
    }


@pytest.mark.slow
def test_graph_down_mid_ingestion_loses_nothing(own_graph, acme, alice):
    server, connection = own_graph
    client = bearer(make_token(acme, alice, ["lineage:read", "lineage:write"]))
    assert client.post(reverse("lineage-events"), batch(1), format="json").status_code == 200
    assert outbox_drain(graph=connection) > 0

    server.stop(save=True)
    for n in (2, 3):
        response = client.post(reverse("lineage-events"), batch(n), format="json")
        assert response.status_code == 200, "ingestion does not depend on the graph database"
    pending = outbox_pending()
    assert pending > 0
    with pytest.raises(GraphUnavailable):
        outbox_drain(graph=connection)
    assert outbox_pending() == pending
    stuck = OutboxEntry.objects.filter(processed_at__isnull=True).first()
    assert stuck.attempts == 1
    assert "unavailable" in stuck.last_error
    # Graph queries say plainly that the graph database is down.
    node = Node.objects.get(workspace=acme, key="income@2")
    down = client.get(reverse("lineage-upstream", kwargs={"node_id": node.pk}))
    assert down.status_code == 503
    assert down.json()["title"] == "Graph database unavailable"

    server.start()
    assert outbox_drain(graph=connection) == pending
    assert outbox_pending() == 0
    assert graph_snapshot(connection, acme) == sql_snapshot(acme, connection.caps.properties_in_graph)
    up = client.get(reverse("lineage-upstream", kwargs={"node_id": node.pk})).json()
    assert up["store"] == "neo4j"
    assert {n["key"] for n in up["nodes"]} == {"income@2", "run-2", "train", "adult@v2"}


@pytest.mark.slow
def test_projection_task_retries_while_the_graph_is_down(own_graph, acme, alice, monkeypatch):
    server, _ = own_graph
    client = bearer(make_token(acme, alice, ["lineage:write"]))
    client.post(reverse("lineage-events"), batch(1), format="json")
    server.stop()
    # The task retries forever in production; bounded here so the eager run ends.
    monkeypatch.setattr(project_outbox, "max_retries", 2)
    result = project_outbox.apply()
    assert result.state == "FAILURE"
    assert isinstance(result.result, GraphUnavailable)
    entry = OutboxEntry.objects.filter(processed_at__isnull=True).first()
    assert entry.attempts == 3  # the first try and two retries, each recorded on the entries


def test_resync_rebuilds_the_graph_from_the_record(own_graph, acme, alice, capsys):
    _, connection = own_graph
    client = bearer(make_token(acme, alice, ["lineage:write"]))
    for n in (1, 2):
        client.post(reverse("lineage-events"), batch(n), format="json")
    outbox_drain(graph=connection)
    connection.run(lambda tx: tx.run("MATCH (n) DETACH DELETE n").consume(), write=True)
    assert graph_snapshot(connection, acme) == (set(), set())
    counts = lineage_resync(graph=connection)
    assert counts["nodes"] == Node.objects.filter(workspace=acme).count()
    assert graph_snapshot(connection, acme) == sql_snapshot(acme, connection.caps.properties_in_graph)
    call_command("lineage_resync", "--workspace", "acme")
    assert "resynced" in capsys.readouterr().out
    assert graph_snapshot(connection, acme) == sql_snapshot(acme, connection.caps.properties_in_graph)


@pytest.mark.slow  # stops its own graph server and waits out the outage
def test_scheduled_drain_waits_out_an_outage_without_raising(own_graph, acme, alice):
    server, connection = own_graph
    client = bearer(make_token(acme, alice, ["lineage:write"]))
    client.post(reverse("lineage-events"), batch(1), format="json")
    pending = outbox_pending()
    server.stop()
    assert project_outbox_scheduled.apply().get() == -1  # no retry storm: the next tick tries again
    assert outbox_pending() == pending
    server.start()
    assert project_outbox_scheduled.apply().get() == pending
    assert graph_snapshot(connection, acme) == sql_snapshot(acme, connection.caps.properties_in_graph)


def test_scheduled_drain_is_a_no_op_without_a_graph_database(settings, acme, alice):
    settings.NEO4J_URI = ""
    assert project_outbox_scheduled.apply().get() == 0
    assert project_outbox.apply().get() == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_beat_drains_entries_whose_queued_drain_was_lost(own_graph, tmp_path, monkeypatch):
    """A real worker with its embedded beat, ticking every second, projects the outbox on its own."""
    server, connection = own_graph
    monkeypatch.setattr(services, "task_send_after_commit", lambda *a, **k: None)  # the queued drain is lost
    user = make_user("beat-owner")
    workspace = make_workspace("beat", admin=user)
    client = bearer(make_token(workspace, user, ["lineage:write"]))
    for n in (1, 2):
        assert client.post(reverse("lineage-events"), batch(n), format="json").status_code == 200
    assert outbox_pending() > 0

    env = {
        **embedded_broker(tmp_path / "broker"),
        "NEO4J_URI": server.uri,
        "NEO4J_USER": "",
        "NEO4J_PASSWORD": "",
        "NEO4J_FLAVOR": "falkordb",
        "LINEAGE_PROJECTION_INTERVAL": "1",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
    }
    worker = start_worker(env, ["default"], beat=True)
    try:
        deadline = time.monotonic() + 60
        while outbox_pending() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.5)
    finally:
        log = stop_worker(worker)
    assert outbox_pending() == 0, log
    assert "lineage.project_outbox_scheduled" in log
    assert graph_snapshot(connection, workspace) == sql_snapshot(
        workspace, connection.caps.properties_in_graph
    )
