"""Jobs on real `celery worker` processes: the embedded file-system broker; RabbitMQ, which hands a
killed worker's (SIGKILL) unfinished task to another worker at once; Redis, which would do so only
after its visibility timeout (an hour), so the sweep of core/work.py runs the job again, seeing its
heartbeats stop; and a job that keeps losing its worker, which fails after its attempts."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from sklearn.ensemble import RandomForestClassifier

from core.models import AuditEvent
from explain import selectors, services
from explain.models import Job, JobState
from lineage.models import Node
from tests.explain.conftest import planted_bias, register
from tests.factories import make_user, make_workspace
from tests.workers import client_app, embedded_broker, start_worker, stop_worker

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
# Short periods, so that a dead worker is noticed in seconds: heartbeats every second, silent for two
# means dead, swept every second (each worker embeds the beat).
FAST_SWEEP = {"WORK_HEARTBEAT_INTERVAL": "1", "WORK_HEARTBEAT_TIMEOUT": "2", "WORK_SWEEP_INTERVAL": "1"}
FEATURES = ["score", "sex"]
# Workers that are killed mid-job stall where the test says (tests/paced_worker.py).
PACED = "tests.paced_worker"


def _amqp_reachable() -> bool:
    import kombu

    try:
        with kombu.Connection(AMQP_URL, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def _wait(predicate, timeout: float, worker=None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if worker is not None and worker.poll() is not None:
            return False
        time.sleep(0.2)
    return predicate()


def _until_succeeded(job: Job, worker, start=None, timeout: float = 120) -> str:
    """Run `start` (if any), wait for the job to finish, stop the worker whatever happened, and check
    the job succeeded; returns the worker's log."""
    try:
        if start is not None:
            start()
        done = _wait(lambda: Job.objects.get(pk=job.pk).finished, timeout, worker)
    finally:
        log = stop_worker(worker)
    job.refresh_from_db()
    assert done, log[-3000:]
    assert job.state == JobState.SUCCEEDED, (job.error, log[-3000:])
    return log


def _stalling(env: dict[str, str], marker: Path, *, in_start: bool = False) -> dict[str, str]:
    """The environment of a paced worker that creates `marker` and stalls: in the job's start task
    (`in_start`), else in its second chunk (after the start task and one chunk)."""
    return {**env, "TEST_STALL_AT_LOAD": "0" if in_start else "2", "TEST_STALL_FILE": str(marker)}


def _job(settings, queue: str, rows: int, chunk_rows: int, monkeypatch) -> Job:
    """A committed explanation job on `queue`, not yet sent anywhere."""
    monkeypatch.setattr(services, "work_dispatch", lambda job: None)
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    user = make_user("owner")
    workspace = make_workspace("jobs", admin=user)
    frame = planted_bias(rows)
    model = RandomForestClassifier(60, max_depth=8, random_state=0).fit(frame[FEATURES], frame["label"])
    register(workspace, user, model, frame)
    from core.actors import Actor

    return services.job_create(
        workspace=workspace,
        actor=Actor(user=user),
        kind="explanation",
        model_node=selectors.model_version_node(workspace, "income", "1"),
        dataset_key="adult@v1",
        params={"features": FEATURES, "chunk_rows": chunk_rows, "backend": "auto", "seed": 0},
    )[0]


def _worker_env(broker: dict[str, str], settings, monkeypatch) -> dict[str, str]:
    # Celery prefers these variables to any configuration: the sending side must see them too.
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.setenv(name, broker[name])
    return {**broker, "ARTIFACT_ROOT": settings.ARTIFACT_ROOT}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_job_runs_on_a_real_worker_with_the_embedded_broker(settings, tmp_path, monkeypatch):
    broker = embedded_broker(tmp_path / "broker")
    queue = f"jobs-{uuid.uuid4().hex[:6]}"
    job = _job(settings, queue, rows=600, chunk_rows=250, monkeypatch=monkeypatch)
    worker = start_worker(_worker_env(broker, settings, monkeypatch), [queue])
    _until_succeeded(
        job,
        worker,
        start=lambda: client_app(broker).send_task("explain.run_job", args=[str(job.pk)], queue=queue),
    )
    assert (job.chunks_total, job.chunks_done) == (3, 3)
    assert job.result["rows"] == 600


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_job_is_replaced_and_the_job_ends_with_one_result(
    settings, tmp_path, monkeypatch
):
    if not _amqp_reachable():
        if os.environ.get("TEST_AMQP_REQUIRED"):
            pytest.fail(f"RabbitMQ not reachable at {AMQP_URL} (TEST_AMQP_REQUIRED is set)")
        pytest.skip(f"RabbitMQ not reachable at {AMQP_URL}")
    broker = {"CELERY_BROKER_URL": AMQP_URL, "CELERY_RESULT_BACKEND": "rpc://"}
    queue = f"jobs-{uuid.uuid4().hex[:6]}"
    job = _job(settings, queue, rows=24_000, chunk_rows=3_000, monkeypatch=monkeypatch)
    env = _worker_env(broker, settings, monkeypatch)
    client = client_app(broker)
    first = start_worker(_stalling(env, tmp_path / "stalled"), [queue], name="first@%h", app=PACED)
    try:
        client.send_task("explain.run_job", args=[str(job.pk)], queue=queue)
        _kill_stalled(first, job, tmp_path / "stalled")
        assert Job.objects.get(pk=job.pk).chunks_done == 1
        second = start_worker(env, [queue], name="second@%h")
        try:
            done = _wait(lambda: Job.objects.get(pk=job.pk).finished, 240, second)
        finally:
            log = stop_worker(second)
    finally:
        if first.poll() is None:
            first.kill()
        client.close()
    job.refresh_from_db()
    assert done, log[-3000:]
    assert job.state == JobState.SUCCEEDED, (job.error, log[-3000:])
    workers = dict(job.chunks.values_list("index", "worker"))
    assert len(workers) == 8
    assert all(workers.values())
    assert any(w.startswith("first@") for w in workers.values())
    assert any(w.startswith("second@") for w in workers.values())
    # One result: one Explanation node, one completion event, every row explained once.
    assert Node.objects.filter(workspace=job.workspace, kind="Explanation").count() == 1
    assert AuditEvent.objects.filter(workspace=job.workspace, action="explanation.complete").count() == 1
    assert job.result["rows"] == 24_000
    assert job.result["additivity_residual"] <= 1e-5


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_sweep_sends_a_job_whose_start_message_never_reached_the_broker(settings, tmp_path, monkeypatch):
    """A real worker with its embedded beat, sweeping every second, sends and runs the job itself."""
    from datetime import timedelta

    from django.utils import timezone

    broker = embedded_broker(tmp_path / "broker")
    queue = f"jobs-{uuid.uuid4().hex[:6]}"
    job = _job(settings, queue, rows=400, chunk_rows=200, monkeypatch=monkeypatch)  # never sent
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    env = {
        **_worker_env(broker, settings, monkeypatch),
        **FAST_SWEEP,
        "CELERY_DEFAULT_QUEUE": queue,  # where the beat sends its own tasks
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
    }
    worker = start_worker(env, [queue], beat=True)
    log = _until_succeeded(job, worker)
    assert job.dispatched_at is not None
    assert "core.work_sweep" in log
    assert job.result["rows"] == 400


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping())
    except Exception:
        return False


def _sweeping_worker(env: dict[str, str], queue: str, tmp_path, name: str, app: str = "config"):
    """A worker with its own embedded beat (sweeping every second) on `queue`, and on a queue of the
    sweep's own, so that the sweep does not wait behind the job's chunks."""
    sweeps = f"{queue}-sweep"
    return start_worker(
        {
            **env,
            "CELERY_DEFAULT_QUEUE": queue,
            "WORK_SWEEP_QUEUE": sweeps,
            "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / f"beat-{name}"),
        },
        [sweeps, queue],
        beat=True,
        name=f"{name}@%h",
        app=app,
    )


def _kill_stalled(worker, job: Job, marker: Path, attempt: int = 1, timeout: float = 240) -> None:
    """SIGKILL the paced `worker` once it stalls in a task of the job's `attempt`-th run (it created
    `marker`): the task holds the job, its message is never acknowledged."""
    stalled = _wait(marker.exists, timeout, worker)
    assert stalled, stop_worker(worker)[-3000:]
    worker.kill()  # no warm shutdown
    worker.wait(timeout=30)
    state = Job.objects.values("state", "attempts", "tasks_running", "chunks_done").get(pk=job.pk)
    assert (state["state"], state["attempts"]) == (JobState.RUNNING, attempt), state
    assert state["tasks_running"] > 0, state


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_on_redis_a_job_whose_worker_was_killed_is_run_again_by_the_sweep(settings, tmp_path, monkeypatch):
    if not _redis_reachable():
        if os.environ.get("TEST_REDIS_REQUIRED") or os.environ.get("TEST_AMQP_REQUIRED"):
            pytest.fail(f"Redis not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    broker = {"CELERY_BROKER_URL": REDIS_URL, "CELERY_RESULT_BACKEND": REDIS_URL}
    queue = f"jobs-{uuid.uuid4().hex[:6]}"
    job = _job(settings, queue, rows=48_000, chunk_rows=3_000, monkeypatch=monkeypatch)
    env = {**_worker_env(broker, settings, monkeypatch), **FAST_SWEEP}
    client = client_app(broker)
    first = _sweeping_worker(_stalling(env, tmp_path / "stalled"), queue, tmp_path, "first", app=PACED)
    try:
        client.send_task("explain.run_job", args=[str(job.pk)], queue=queue)
        _kill_stalled(first, job, tmp_path / "stalled")
        killed_at = time.monotonic()
        done_before = job.chunks.filter(done=True).count()
        assert done_before < 16, "the first worker should not have finished the job before it was killed"
        second = _sweeping_worker(env, queue, tmp_path, "second")
        try:
            done = _wait(lambda: Job.objects.get(pk=job.pk).finished, 240, second)
        finally:
            log = stop_worker(second)
    finally:
        if first.poll() is None:
            first.kill()
        client.close()
    took = time.monotonic() - killed_at
    job.refresh_from_db()
    assert done, log[-3000:]
    assert job.state == JobState.SUCCEEDED, (job.error, log[-3000:])
    assert "its worker stopped; sending it again" in log  # the sweep, not the broker, brought it back
    assert job.attempts == 2
    # Noticed within two heartbeat periods of the kill (plus a sweep's second), then the chunks left
    # are computed: bounded by the start of a worker and the rest of the job's run, not by an hour.
    assert took < 120, took
    workers = dict(job.chunks.values_list("index", "worker"))
    assert any(w.startswith("first@") for w in workers.values())
    assert any(w.startswith("second@") for w in workers.values())
    assert Node.objects.filter(workspace=job.workspace, kind="Explanation").count() == 1
    assert AuditEvent.objects.filter(workspace=job.workspace, action="explanation.complete").count() == 1
    assert job.result["rows"] == 48_000
    assert job.result["additivity_residual"] <= 1e-5


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_job_that_keeps_losing_its_worker_fails_after_its_attempts(settings, tmp_path, monkeypatch):
    broker = embedded_broker(tmp_path / "broker")
    queue = f"jobs-{uuid.uuid4().hex[:6]}"
    job = _job(settings, queue, rows=600, chunk_rows=250, monkeypatch=monkeypatch)
    env = {**_worker_env(broker, settings, monkeypatch), **FAST_SWEEP, "WORK_MAX_ATTEMPTS": "2"}
    client = client_app(broker)
    client.send_task("explain.run_job", args=[str(job.pk)], queue=queue)
    # Each run of the job ends with its worker killed in the start task (no chunk was sent: nothing is
    # left in the queue for the next worker); the next worker's sweep runs it again.
    for attempt, name in enumerate(("first", "second"), start=1):
        marker = tmp_path / f"stalled-{name}"
        worker = _sweeping_worker(_stalling(env, marker, in_start=True), queue, tmp_path, name, app=PACED)
        try:
            _kill_stalled(worker, job, marker, attempt=attempt)
        finally:
            if worker.poll() is None:
                worker.kill()
    third = _sweeping_worker(env, queue, tmp_path, "third")
    try:
        failed = _wait(lambda: Job.objects.get(pk=job.pk).finished, 60, third)
    finally:
        log = stop_worker(third)
    job.refresh_from_db()
    assert failed, log[-3000:]
    assert job.state == JobState.FAILED, (job.error, log[-3000:])
    assert job.error.startswith("its worker stopped 2 times while running it"), job.error
    assert AuditEvent.objects.filter(workspace=job.workspace, action="explanation.fail").count() == 1
    assert not Node.objects.filter(workspace=job.workspace, kind="Explanation").exists()
