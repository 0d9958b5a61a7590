"""Native lineage ingestion through the API: validation, idempotency, merging and limits."""

from __future__ import annotations

import pytest
from django.urls import reverse

from lineage.models import Edge, Node
from tests.conftest import bearer
from tests.factories import make_token
from tests.lineage.helpers import ref

RUN = {
    "type": "run",
    "run": {"key": "run-42", "properties": {"params": {"C": 1.0}}},
    "job": {"key": "train-income"},
    "inputs": [{"kind": "DatasetVersion", "key": "adult@v2"}],
    "outputs": [{"kind": "ModelVersion", "key": "income@3"}],
    "commit": {"key": "3f2a9c1", "properties": {"repo": "git@example.org:ml/income.git"}},
    "environment": {"key": "py311-sklearn17", "properties": {"python": "3.11"}},
}


@pytest.fixture
def writer(acme, alice):
    return bearer(make_token(acme, alice, ["lineage:read", "lineage:write", "artifact:write"]))


def post(client, *events):
    return client.post(reverse("lineage-events"), {"events": list(events)}, format="json")


def test_run_event_records_the_whole_story(writer, acme):
    response = post(writer, RUN)
    assert response.status_code == 200, response.content
    assert response.json() == {"nodes_created": 6, "nodes_updated": 0, "edges_created": 6, "edges_updated": 0}
    edges = {
        (e.src.key, e.kind, e.dst.key)
        for e in Edge.objects.filter(workspace=acme).select_related("src", "dst")
    }
    assert edges == {
        ("run-42", "INSTANCE_OF", "train-income"),
        ("run-42", "USED", "adult@v2"),
        ("run-42", "PRODUCED", "income@3"),
        ("run-42", "BUILT_FROM", "3f2a9c1"),
        ("run-42", "RAN_IN", "py311-sklearn17"),
        ("income@3", "TRAINED_ON", "adult@v2"),
    }


def test_the_same_batch_twice_changes_nothing(writer, acme):
    post(writer, RUN)
    acme.refresh_from_db()
    nodes, edges = Node.objects.count(), Edge.objects.count()
    again = post(writer, RUN)
    assert again.json() == {"nodes_created": 0, "nodes_updated": 0, "edges_created": 0, "edges_updated": 0}
    assert (Node.objects.count(), Edge.objects.count()) == (nodes, edges)


def test_properties_merge_shallowly_and_null_removes(writer, acme):
    post(writer, {"type": "node", "kind": "Dataset", "key": "adult", "properties": {"a": 1, "b": 2}})
    response = post(
        writer, {"type": "node", "kind": "Dataset", "key": "adult", "properties": {"b": 3, "a": None, "c": 4}}
    )
    assert response.json()["nodes_updated"] == 1
    assert Node.objects.get(workspace=acme, key="adult").properties == {"b": 3, "c": 4}


def test_a_bad_event_rejects_the_batch_naming_item_and_field(writer, acme):
    response = post(
        writer,
        {"type": "node", "kind": "Dataset", "key": "fine"},
        {"type": "run", "run": {"key": "r"}, "inputs": [{"kind": "DatasetVersion"}]},
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "events[1].inputs[0].key", "message": "is required"}]
    assert not Node.objects.filter(workspace=acme).exists()


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "node", "kind": "Spaceship", "key": "x"}, "events[0].kind"),
        (
            {"type": "edge", "kind": "OWNS", "src": ref("Dataset", "a"), "dst": ref("Dataset", "b")},
            "events[0].kind",
        ),
        ({"type": "teleport"}, "events[0].type"),
        ({"type": "node", "kind": "Dataset", "key": "x", "properties": [1]}, "events[0].properties"),
        ({"type": "node", "kind": "Dataset", "key": "k" * 501}, "events[0].key"),
        ("not an object", "events[0]"),
    ],
)
def test_unknown_kinds_and_bad_fields_are_400(writer, event, field):
    response = post(writer, event)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_artifact_must_belong_to_the_workspace(writer, acme):
    upload = writer.post(reverse("artifact-list") + "?filename=a.csv", b"a,b\n1,2\n", content_type="text/csv")
    artifact_id = upload.json()["id"]
    ok = post(writer, {"type": "node", "kind": "DatasetVersion", "key": "adult@v9", "artifact": artifact_id})
    assert ok.status_code == 200
    assert str(Node.objects.get(workspace=acme, key="adult@v9").artifact_id) == artifact_id
    missing = post(writer, {"type": "node", "kind": "DatasetVersion", "key": "x", "artifact": "0" * 32})
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "artifact"


def test_batch_over_the_limit_is_413_naming_the_limit(writer, settings):
    settings.LINEAGE_MAX_BATCH_EVENTS = 3
    events = [{"type": "node", "kind": "Dataset", "key": f"d{i}"} for i in range(4)]
    response = post(writer, *events)
    assert response.status_code == 413
    assert "LINEAGE_MAX_BATCH_EVENTS" in response.json()["detail"]


def test_event_over_the_limit_is_400_naming_the_limit(writer, settings):
    settings.LINEAGE_MAX_EVENT_BYTES = 200
    response = post(writer, {"type": "node", "kind": "Dataset", "key": "d", "properties": {"x": "y" * 500}})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "events[0]"
    assert "LINEAGE_MAX_EVENT_BYTES" in error["message"]


def test_ingestion_writes_one_audit_event(writer, acme):
    acme.refresh_from_db()
    before = acme.audit_head_seq
    post(writer, RUN)
    acme.refresh_from_db()
    assert acme.audit_head_seq == before + 1
    event = acme.audit_events.get(seq=before + 1)
    assert event.action == "lineage.record"
    assert event.payload["nodes_created"] == 6


def test_auditor_can_read_but_not_write(acme, carol, writer):
    post(writer, RUN)
    client = bearer(make_token(acme, carol, ["lineage:read"]))
    assert post(client, RUN).status_code == 403
    node = Node.objects.get(workspace=acme, key="income@3")
    body = client.get(reverse("lineage-upstream", kwargs={"node_id": node.pk}), {"depth": 2}).json()
    assert body["store"] == "sql"
    assert {n["key"] for n in body["nodes"]} >= {"income@3", "run-42", "adult@v2"}
    assert body["root"] == node.pk


def test_query_parameters_are_validated(writer, acme, settings):
    post(writer, RUN)
    node = Node.objects.get(workspace=acme, key="income@3")
    url = reverse("lineage-upstream", kwargs={"node_id": node.pk})
    too_deep = writer.get(url, {"depth": settings.LINEAGE_MAX_DEPTH + 1})
    assert too_deep.status_code == 400
    assert too_deep.json()["errors"][0]["field"] == "depth"
    bad_kind = writer.get(url, {"kinds": "DatasetVersion,Unicorn"})
    assert bad_kind.json()["errors"][0] == {"field": "kinds", "message": "unknown kind(s): Unicorn"}


def test_node_lookup_by_kind_and_key(writer, acme):
    post(writer, RUN)
    found = writer.get(reverse("lineage-node-list"), {"kind": "ModelVersion", "key": "income@3"}).json()
    assert found["count"] == 1
    assert found["results"][0]["key"] == "income@3"
    assert writer.get(reverse("lineage-node-list"), {"q": "adult"}).json()["count"] == 1
    # Properties are served as the JSON object they are, in the list and on the node.
    post(
        writer, {"type": "node", "kind": "Dataset", "key": "census", "properties": {"rows": 3, "tags": ["a"]}}
    )
    listed = writer.get(reverse("lineage-node-list"), {"key": "census"}).json()["results"][0]
    assert listed["properties"] == {"rows": 3, "tags": ["a"]}
    detail = writer.get(reverse("lineage-node-detail", kwargs={"node_id": listed["id"]})).json()
    assert detail["properties"] == {"rows": 3, "tags": ["a"]}


def test_path_endpoint(writer, acme):
    post(writer, RUN)
    commit = Node.objects.get(workspace=acme, key="3f2a9c1").pk
    model = Node.objects.get(workspace=acme, key="income@3").pk
    body = writer.get(reverse("lineage-path"), {"source": commit, "target": model}).json()
    assert [n["key"] for n in body["nodes"]] == ["3f2a9c1", "run-42", "income@3"]
    lonely = post(writer, {"type": "node", "kind": "Dataset", "key": "island"})
    assert lonely.status_code == 200
    island = Node.objects.get(workspace=acme, key="island").pk
    assert writer.get(reverse("lineage-path"), {"source": commit, "target": island}).status_code == 404
