"""OpenLineage events sent by the official openlineage-python client's HTTP transport to the live
test server, at the path Marquez uses."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import (
    dataset_version_dataset,
    processing_engine_run,
    source_code_location_job,
)
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from lineage.models import Edge, Node
from tests.conftest import bearer
from tests.factories import make_token, make_user, make_workspace

PRODUCER = "https://example.org/tests"


def _client(url: str, token: str) -> OpenLineageClient:
    config = HttpConfig(url=url, auth=ApiKeyTokenProvider({"apiKey": token}), timeout=10)
    return OpenLineageClient(transport=HttpTransport(config))


def _events(run_id: str) -> list[RunEvent]:
    job = Job(
        namespace="ml",
        name="train_income",
        facets={
            "sourceCodeLocation": source_code_location_job.SourceCodeLocationJobFacet(
                type="git",
                url="https://git.example.org/ml/income",
                repoUrl="https://git.example.org/ml/income",
                version="3f2a9c1d",
                branch="main",
            )
        },
    )
    run_facets = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(version="1.7.2", name="sklearn")
    }
    inputs = [
        InputDataset(
            namespace="s3://lake",
            name="adult.parquet",
            facets={"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="v2")},
        )
    ]
    outputs = [OutputDataset(namespace="registry", name="income")]
    return [
        RunEvent(
            eventType=state,
            eventTime=f"2026-11-25T10:0{i}:00Z",
            producer=PRODUCER,
            run=Run(runId=run_id, facets=run_facets),
            job=job,
            inputs=inputs,
            outputs=outputs,
        )
        for i, state in enumerate((RunState.START, RunState.COMPLETE))
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_official_client_events_become_lineage(live_server):
    user = make_user("ol-user")
    workspace = make_workspace("ol", admin=user)
    client = _client(live_server.url, make_token(workspace, user, ["lineage:write"]))
    run_id = str(uuid.uuid4())
    for event in _events(run_id):
        client.emit(event)
    # The same event again leaves one run.
    client.emit(_events(run_id)[1])

    runs = Node.objects.filter(workspace=workspace, kind="Run")
    assert [r.key for r in runs] == [run_id]
    run = runs.get()
    assert run.properties["state"] == "COMPLETE"
    assert run.properties["event:START"] == "2026-11-25T10:00:00Z"
    assert run.properties["facet:processing_engine"]["name"] == "sklearn"
    edges = {
        (e.kind, e.dst.kind, e.dst.key)
        for e in Edge.objects.filter(workspace=workspace, src=run).select_related("dst")
    }
    environment = Node.objects.get(workspace=workspace, kind="Environment")
    assert edges == {
        ("INSTANCE_OF", "Job", "ml/train_income"),
        ("USED", "DatasetVersion", "s3://lake/adult.parquet@v2"),
        ("PRODUCED", "Dataset", "registry/income"),
        ("BUILT_FROM", "Commit", "3f2a9c1d"),
        ("RAN_IN", "Environment", environment.key),
    }
    version = Node.objects.get(workspace=workspace, kind="DatasetVersion")
    assert Edge.objects.filter(src=version, kind="VERSION_OF", dst__key="s3://lake/adult.parquet").exists()


def test_bad_openlineage_event_names_the_field(acme, alice):
    client = bearer(make_token(acme, alice, ["lineage:write"]))
    response = client.post(
        reverse("openlineage"),
        {"eventType": "FINISHED", "run": {}, "job": {"namespace": "n", "name": "j"}},
        format="json",
    )
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"eventType", "run.runId"}
    assert not Node.objects.filter(workspace=acme).exists()


def test_dataset_and_job_events(acme, alice):
    client = bearer(make_token(acme, alice, ["lineage:write"]))
    dataset_event = {
        "eventTime": "2026-11-25T10:00:00Z",
        "producer": PRODUCER,
        "dataset": {"namespace": "s3://lake", "name": "census", "facets": {"owner": {"name": "team"}}},
    }
    assert client.post(reverse("openlineage"), dataset_event, format="json").status_code == 201
    job_event = {
        "eventTime": "2026-11-25T10:00:00Z",
        "producer": PRODUCER,
        "job": {"namespace": "ml", "name": "prep"},
        "inputs": [{"namespace": "s3://lake", "name": "census"}],
        "outputs": [{"namespace": "s3://lake", "name": "census_clean"}],
    }
    assert client.post(reverse("openlineage"), job_event, format="json").status_code == 201
    dataset = Node.objects.get(workspace=acme, kind="Dataset", key="s3://lake/census")
    assert dataset.properties["facet:owner"] == {"name": "team"}
    assert Edge.objects.filter(workspace=acme, kind="PRODUCED", dst__key="s3://lake/census_clean").exists()


def test_event_over_the_size_limit(acme, alice, settings):
    settings.LINEAGE_MAX_EVENT_BYTES = 300
    client = bearer(make_token(acme, alice, ["lineage:write"]))
    event = {
        "run": {"runId": "r", "facets": {"big": {"x": "y" * 400}}},
        "job": {"namespace": "n", "name": "j"},
    }
    response = client.post(reverse("openlineage"), event, format="json")
    assert response.status_code == 413
    assert "LINEAGE_MAX_EVENT_BYTES" in response.json()["detail"]


def _run_event(event_type: str, time: str, run_id: str = "r-1") -> dict:
    return {
        "eventType": event_type,
        "eventTime": time,
        "producer": PRODUCER,
        "run": {"runId": run_id},
        "job": {"namespace": "ml", "name": "train"},
    }


def test_a_late_or_repeated_start_does_not_reopen_a_finished_run(acme, alice):
    from core.models import AuditEvent

    client = bearer(make_token(acme, alice, ["lineage:write"]))
    start = _run_event("START", "2026-11-25T10:00:00Z")
    complete = _run_event("COMPLETE", "2026-11-25T10:05:00+00:00")
    for event in (start, complete):
        assert client.post(reverse("openlineage"), event, format="json").status_code == 201
    events = AuditEvent.objects.filter(workspace=acme, action="lineage.record").count()
    # The client retries START: nothing changes, and no audit event is written for nothing.
    again = client.post(reverse("openlineage"), start, format="json")
    assert again.status_code == 201
    assert again.json()["nodes_updated"] == 0
    run = Node.objects.get(workspace=acme, kind="Run", key="r-1")
    assert run.properties["state"] == "COMPLETE"
    assert run.properties["event:START"] == "2026-11-25T10:00:00Z"
    assert AuditEvent.objects.filter(workspace=acme, action="lineage.record").count() == events

    # Out of order: RUNNING arrives after FAIL; the run stays failed.
    for event in (
        _run_event("FAIL", "2026-11-25T11:00:00Z", "r-2"),
        _run_event("RUNNING", "2026-11-25T10:30:00Z", "r-2"),
    ):
        assert client.post(reverse("openlineage"), event, format="json").status_code == 201
    assert Node.objects.get(workspace=acme, kind="Run", key="r-2").properties["state"] == "FAIL"


def test_keys_made_of_several_fields_are_bounded(acme, alice):
    client = bearer(make_token(acme, alice, ["lineage:write"]))
    event = _run_event("START", "2026-11-25T10:00:00Z")
    event["job"] = {"namespace": "n" * 400, "name": "j" * 400}
    response = client.post(reverse("openlineage"), event, format="json")
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"job.name"}
    event = _run_event("START", "2026-11-25T10:00:00Z")
    event["inputs"] = [
        {"namespace": "s3://lake", "name": "d", "facets": {"version": {"datasetVersion": "v" * 5000}}}
    ]
    response = client.post(reverse("openlineage"), event, format="json")
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"inputs[0].facets.version.datasetVersion"}
    assert not Node.objects.filter(workspace=acme).exists()
