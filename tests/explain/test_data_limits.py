"""A job on a dataset past the data limits fails at once, naming the limit, without loading it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from sklearn.tree import DecisionTreeClassifier

from core.models import AuditEvent
from tests.conftest import bearer
from tests.core.test_tables import huge_parquet
from tests.explain.conftest import planted_bias, register, store_bytes
from tests.factories import make_token
from tests.lineage.helpers import record

pytestmark = pytest.mark.django_db


def test_a_fairness_job_on_a_545_kb_file_of_60_million_rows_fails_naming_the_limit(
    acme, alice, eager_celery, django_capture_on_commit_callbacks
):
    frame = planted_bias(500)
    model = DecisionTreeClassifier(max_depth=3).fit(frame[["score", "sex"]], frame["label"])
    register(acme, alice, model, frame)
    huge = store_bytes(acme, alice, huge_parquet(60_000_000), "huge.parquet")
    record(
        acme, alice, {"type": "node", "kind": "DatasetVersion", "key": "huge@v1", "artifact": str(huge.pk)}
    )
    client = bearer(make_token(acme, alice, ["explain:run", "model:read"]))
    url = reverse("model-fairness-assessments", kwargs={"name": "income", "version": "1"})
    body = {"dataset_version": "huge@v1", "features": ["score", "sex"], "target": "label"}
    body["sensitive_features"] = ["sex"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, body, format="json")
    assert response.status_code == 202, response.content
    job = client.get(response["Location"]).json()
    assert job["state"] == "failed"
    assert "60,000,000 rows; the limit is 20,000,000 (DATA_MAX_ROWS)" in job["error"]
    assert AuditEvent.objects.filter(action="fairness.fail", target=f"job:{job['id']}").count() == 1


def test_a_job_that_runs_out_of_memory_fails_naming_the_limit(
    acme, alice, eager_celery, django_capture_on_commit_callbacks, monkeypatch, settings
):
    """What a worker at its address-space limit meets is a MemoryError: the job fails saying so (it
    stayed `running` before), with one failure event."""
    from explain import fairness

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(fairness, "assess", exhausted)
    settings.WORKER_MAX_ADDRESS_SPACE_MB = 6000
    frame = planted_bias(500)
    register(
        acme, alice, DecisionTreeClassifier(max_depth=3).fit(frame[["score", "sex"]], frame["label"]), frame
    )
    client = bearer(make_token(acme, alice, ["explain:run", "model:read"]))
    url = reverse("model-fairness-assessments", kwargs={"name": "income", "version": "1"})
    body = {"dataset_version": "adult@v1", "features": ["score", "sex"], "target": "label"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {**body, "sensitive_features": ["sex"]}, format="json")
    job = client.get(response["Location"]).json()
    assert job["state"] == "failed"
    assert "ran out of memory: its processes may use 6,000 MB (WORKER_MAX_ADDRESS_SPACE_MB)" in job["error"]
    assert AuditEvent.objects.filter(action="fairness.fail", target=f"job:{job['id']}").count() == 1


@pytest.mark.slow
def test_a_real_worker_process_runs_with_its_address_space_capped(tmp_path):
    import time
    from pathlib import Path

    from tests.workers import embedded_broker, start_worker, stop_worker

    env = {**embedded_broker(tmp_path / "broker"), "WORKER_MAX_ADDRESS_SPACE_MB": "6000"}
    worker = start_worker(env, ["limits-test"])
    try:
        wanted = str(6000 * 1024 * 1024)
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and wanted not in line:
            limits = Path(f"/proc/{worker.pid}/limits").read_text().splitlines()
            line = next(row for row in limits if row.startswith("Max address space"))
            time.sleep(0.2)
        assert wanted in line, line
    finally:
        stop_worker(worker)
