"""A Celery round trip through a real `celery worker` process: on the configured broker (Redis in
CI) and on the embedded file-system broker. The task reads the test database, so the worker is
pointed at it and the data is committed first."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.conf import settings

from core.actors import Actor
from core.audit import audit_append
from tests.factories import make_user, make_workspace
from tests.workers import client_app, embedded_broker, start_worker, stop_worker


def _brokers(tmp_path: Path) -> dict[str, dict[str, str]]:
    return {
        "embedded": embedded_broker(tmp_path / "broker"),
        "configured": {
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        },
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["configured", "embedded"])
def test_task_round_trip_through_a_real_worker(broker, tmp_path, monkeypatch):
    env_for_broker = _brokers(tmp_path)[broker]
    if broker == "configured" and env_for_broker["CELERY_BROKER_URL"].startswith("filesystem://"):
        pytest.skip("no server broker configured (set CELERY_BROKER_URL, as CI does with Redis)")
    # Celery reads CELERY_BROKER_URL / CELERY_RESULT_BACKEND from the environment before any
    # configuration, so the client must see the same values as the worker.
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.setenv(name, env_for_broker[name])

    user = make_user("worker-owner")
    workspace = make_workspace("jobs", admin=user)
    for i in range(3):
        audit_append(workspace=workspace, actor=Actor(user=user), action="test.event", payload={"i": i})

    queue = f"roundtrip-{uuid.uuid4().hex[:8]}"
    worker = start_worker(env_for_broker, [queue])
    try:
        client = client_app(env_for_broker)
        result = client.send_task("core.audit_verify", args=[str(workspace.pk)], queue=queue)
        outcome = result.get(timeout=60)
    finally:
        log = stop_worker(worker)
    assert outcome["intact"] is True, log
    assert outcome["events"] == 5, log  # workspace.create, membership.create and three appends
    assert outcome["workspace"] == "jobs"
    assert "celery@" in log
    assert "succeeded" in log


def test_only_tasks_whose_result_is_read_store_one():
    """Sending a task that stores a result waits on the result backend (about 19 s per request when a
    Redis result store is down); the service's tasks keep their state in the database instead."""
    from config.celery import app

    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert {"explain.run_job", "explain.run_chunk", "lineage.project_outbox"} <= set(ours)
    storing = {name for name, task in ours.items() if not task.ignore_result}
    assert storing == {"core.audit_verify"}  # read by callers of the audit check
