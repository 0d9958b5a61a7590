"""Background work (core/work.py), for every kind: explanations, fairness assessments, DP releases
and reports. An exception of any type ends the work failed with one failure event; work whose
message was lost is sent again and work whose worker died is run again by the sweep, with no
operator step; work that keeps losing its worker fails after its attempts.

The tasks run in this process (eager Celery) through the same task class a worker uses; real worker
processes, one of them killed mid-job, are in tests/explain/test_workers.py."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
import skops.io as sio
from celery.exceptions import SoftTimeLimitExceeded
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone
from sklearn.tree import DecisionTreeClassifier

from core.actors import Actor
from core.models import AuditEvent
from core.work import WorkState, work_start, work_sweep
from explain.models import Job
from governance import services as governance_services
from governance.models import Report
from privacy.models import PrivacyBudget, PrivacyRelease
from tests.conftest import bearer, mlgov, session
from tests.explain.conftest import store_bytes
from tests.factories import make_token
from tests.governance.conftest import training_frame
from tests.lineage.helpers import record

pytestmark = pytest.mark.django_db


class Surprise(Exception):
    """Nothing in the service expects this type."""


@pytest.fixture
def world(acme, ada, alice, carol):
    """income@1 registered on adult@v1, whose data carries privacy metadata, with a budget of 5."""
    frame = training_frame()
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame[["score", "sex"]], frame["label"])
    data = store_bytes(acme, alice, frame.to_csv(index=False).encode(), "adult.csv")
    privacy = {"unit": 1, "bounds": {"score": [0, 1]}, "public_rows": len(frame)}
    record(
        acme,
        alice,
        {
            "type": "node",
            "kind": "DatasetVersion",
            "key": "adult@v1",
            "artifact": str(data.pk),
            "properties": {"privacy": privacy},
        },
    )
    governance_services.version_register(
        workspace=acme,
        actor=Actor(user=alice),
        name="income",
        version="1",
        artifact=str(store_bytes(acme, alice, sio.dumps(model), "income.skops").pk),
        datasets=["adult@v1"],
    )
    budget = session(ada, acme).put(
        reverse("privacy-budget", kwargs={"name": "adult", "version": "v1"}), {"epsilon": 5.0}, format="json"
    )
    assert budget.status_code == 200, budget.content
    return {
        "scientist": bearer(make_token(acme, alice, ["explain:run", "model:read", "privacy:release"])),
        "auditor": bearer(make_token(acme, carol, ["report:export", "model:read"])),
    }


def _explanation(world):
    url = reverse("model-explanations", kwargs={"name": "income", "version": "1"})
    return world["scientist"].post(
        url, {"dataset_version": "adult@v1", "features": ["score", "sex"]}, format="json"
    )


def _fairness(world):
    url = reverse("model-fairness-assessments", kwargs={"name": "income", "version": "1"})
    body = {"dataset_version": "adult@v1", "features": ["score", "sex"], "target": "label"}
    return world["scientist"].post(url, {**body, "sensitive_features": ["sex"]}, format="json")


def _release(world):
    url = reverse("dp-releases", kwargs={"name": "adult", "version": "v1"})
    return world["scientist"].post(
        url, {"statistic": "sum", "column": "score", "epsilon": 1.0}, format="json"
    )


def _report(world):
    return world["auditor"].post(reverse("model-reports", kwargs={"name": "income", "version": "1"}))


# kind -> (how it is asked for, its model, what to break inside the worker, its failure action)
KINDS = {
    "explanation": (_explanation, Job, "explain.explainers.shap_block", "explanation.fail"),
    "fairness": (_fairness, Job, "explain.fairness.assess", "fairness.fail"),
    "privacy.release": (_release, PrivacyRelease, "privacy.services.compute", "privacy.release.fail"),
    "report": (_report, Report, "governance.reports.to_pdf", "report.fail"),
}


@pytest.fixture
def on_a_worker(settings):
    """DP releases too go to a worker (not computed in the request)."""
    settings.PRIVACY_INLINE_MAX_ROWS = 10


def _ask(kind: str, world) -> tuple[type, str]:
    ask, model, _, _ = KINDS[kind]
    response = ask(world)
    assert response.status_code in (201, 202), response.content
    return model, response.json()["id"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_exception_of_an_unexpected_type_fails_the_work_with_one_event(
    kind, world, acme, on_a_worker, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    _, model, target, action = KINDS[kind]

    def broken(*args, **kwargs):
        raise Surprise("the unexpected happened")

    monkeypatch.setattr(target, broken)
    with django_capture_on_commit_callbacks(execute=True):
        model, work_id = _ask(kind, world)
    work = model.objects.get(pk=work_id)
    assert work.state == WorkState.FAILED
    assert "Surprise: the unexpected happened" in work.error
    assert work.finished_at is not None
    assert AuditEvent.objects.filter(workspace=acme, action=action).count() == 1
    if model is PrivacyRelease:  # nothing was released: the reserved budget is given back
        assert PrivacyBudget.objects.get(dataset_node=work.dataset_node).epsilon_spent == 0
        event = AuditEvent.objects.get(workspace=acme, action=action)
        assert event.payload["refunded"] == {"epsilon": 1.0, "delta": 0.0}


@pytest.mark.parametrize("kind", list(KINDS))
def test_work_whose_message_never_reached_the_broker_is_sent_by_the_sweep(
    kind, world, on_a_worker, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # committed, never sent
        model, work_id = _ask(kind, world)
    assert model.objects.get(pk=work_id).dispatched_at is None
    assert work_sweep()["sent"] == 0  # just asked for: its message may be on its way
    model.objects.filter(pk=work_id).update(created_at=timezone.now() - timedelta(minutes=1))
    assert work_sweep()["sent"] == 1
    work = model.objects.get(pk=work_id)
    assert work.state == WorkState.SUCCEEDED, work.error
    assert work.dispatched_at is not None
    assert work_sweep() == {"sent": 0, "rerun": 0, "failed": 0}  # nothing is sent twice


def test_work_whose_message_the_broker_lost_is_sent_again(
    world, eager_celery, settings, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []

    def taken(name, args=(), **options):  # the broker took it, and then lost it
        sent.append(name)
        return True

    with monkeypatch.context() as lossy:
        lossy.setattr("core.work.task_send", taken)
        with django_capture_on_commit_callbacks(execute=True):
            response = _fairness(world)
    job_id = response.json()["id"]
    assert sent == ["explain.run_job"]
    assert Job.objects.get(pk=job_id).dispatched_at is not None
    assert work_sweep()["sent"] == 0  # a queue can be long
    Job.objects.filter(pk=job_id).update(
        dispatched_at=timezone.now() - timedelta(seconds=settings.WORK_REDISPATCH_AFTER + 1)
    )
    assert work_sweep()["sent"] == 1
    assert Job.objects.get(pk=job_id).state == WorkState.SUCCEEDED


def _running_on_a_dead_worker(model, work_id, silent_for: float) -> None:
    """As a worker killed mid-task leaves it: running, one task held, no heartbeat since."""
    work_start(model, work_id)
    model.objects.filter(pk=work_id).update(
        tasks_running=1, heartbeat_at=timezone.now() - timedelta(seconds=silent_for)
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_work_whose_worker_died_is_run_again_and_finishes_once(
    kind, world, acme, on_a_worker, eager_celery, django_capture_on_commit_callbacks, settings
):
    with django_capture_on_commit_callbacks(execute=False):
        model, work_id = _ask(kind, world)
    _running_on_a_dead_worker(model, work_id, silent_for=settings.WORK_HEARTBEAT_TIMEOUT / 2)
    assert work_sweep()["rerun"] == 0  # a heartbeat is merely late: left alone
    _running_on_a_dead_worker(model, work_id, silent_for=settings.WORK_HEARTBEAT_TIMEOUT + 1)
    assert work_sweep()["rerun"] == 1
    work = model.objects.get(pk=work_id)
    assert work.state == WorkState.SUCCEEDED, work.error
    assert work.attempts >= 2
    assert work.tasks_running == 0
    complete = {"explanation": "explanation.complete", "fairness": "fairness.complete"}.get(kind)
    if complete:
        assert AuditEvent.objects.filter(workspace=acme, action=complete).count() == 1


def test_work_that_keeps_losing_its_worker_fails_after_its_attempts(
    world, acme, eager_celery, django_capture_on_commit_callbacks, settings
):
    with django_capture_on_commit_callbacks(execute=False):
        _, job_id = _ask("fairness", world)
    for _ in range(settings.WORK_MAX_ATTEMPTS):
        _running_on_a_dead_worker(Job, job_id, silent_for=settings.WORK_HEARTBEAT_TIMEOUT + 1)
    assert Job.objects.get(pk=job_id).attempts == settings.WORK_MAX_ATTEMPTS
    assert work_sweep()["failed"] == 1
    job = Job.objects.get(pk=job_id)
    assert job.state == WorkState.FAILED
    assert job.error.startswith(f"its worker stopped {settings.WORK_MAX_ATTEMPTS} times while running it")
    assert AuditEvent.objects.filter(workspace=acme, action="fairness.fail").count() == 1


def test_work_past_its_time_limit_fails_saying_so(
    world, eager_celery, django_capture_on_commit_callbacks, monkeypatch, settings
):
    def too_long(*args, **kwargs):
        raise SoftTimeLimitExceeded

    monkeypatch.setattr("explain.fairness.assess", too_long)
    with django_capture_on_commit_callbacks(execute=True):
        _, job_id = _ask("fairness", world)
    job = Job.objects.get(pk=job_id)
    assert job.state == WorkState.FAILED
    limit = settings.WORK_TIME_LIMITS["fairness"]
    assert job.error == f"it ran past its time limit of {limit} s (WORK_TIME_LIMITS)"


def test_a_database_blip_is_retried_not_failed(
    world, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    from explain import fairness

    real, calls = fairness.assess, []

    def blinks_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(fairness, "assess", blinks_once)
    # Retried as a worker retries: in this process, the retry runs at once (with propagation off,
    # eager Celery hands a Retry back to apply(), which runs the task again).
    eager_celery.conf.task_eager_propagates = False
    monkeypatch.setattr("core.work.WorkTask.retry_backoff", False)
    with django_capture_on_commit_callbacks(execute=True):
        _, job_id = _ask("fairness", world)
    job = Job.objects.get(pk=job_id)
    assert job.state == WorkState.SUCCEEDED, job.error
    assert len(calls) == 2


def test_a_group_of_two_rows_in_one_confusion_cell_succeeds(
    acme, alice, eager_celery, django_capture_on_commit_callbacks
):
    """It raised TypeError('Object of type ndarray is not JSON serializable') and stayed running."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"score": rng.random(400), "sex": rng.integers(0, 2, 400)})
    frame["group"] = ["a"] * 200 + ["b"] * 198 + ["c"] * 2
    frame["label"] = (frame["score"] > 0.5).astype(int)
    frame.loc[398:, ["score", "label"]] = [0.9, 1]  # both rows of c: predicted 1, labelled 1
    from tests.explain.conftest import register

    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame[["score", "sex"]], frame["label"])
    register(acme, alice, model, frame)
    client = bearer(make_token(acme, alice, ["explain:run", "model:read"]))
    url = reverse("model-fairness-assessments", kwargs={"name": "income", "version": "1"})
    body = {"dataset_version": "adult@v1", "features": ["score", "sex"], "target": "label"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {**body, "sensitive_features": ["group"]}, format="json")
    job = client.get(response["Location"]).json()
    assert job["state"] == "succeeded", job["error"]
    groups = {g["group"]: g for g in job["result"]["groups"]}
    assert groups["group=c"]["size"] == 2


def test_cancelled_work_is_not_sent_again(world, eager_celery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        _, job_id = _ask("fairness", world)
    cancel = world["scientist"].post(reverse("job-cancel", kwargs={"job_id": job_id}))
    assert cancel.status_code == 200
    Job.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(hours=1))
    assert work_sweep() == {"sent": 0, "rerun": 0, "failed": 0}
    assert Job.objects.get(pk=job_id).state == WorkState.CANCELLED


def test_an_operator_can_still_send_jobs_by_hand(
    world, acme, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        _, queued = _ask("explanation", world)
    out = io.StringIO()
    call_command("jobs_redispatch", queued, stdout=out)
    assert f"sent {queued} (explanation, queued, workspace {acme.slug})" in out.getvalue()
    assert Job.objects.get(pk=queued).state == WorkState.SUCCEEDED
    call_command("jobs_redispatch", queued, stdout=out)
    assert f"skipped {queued}: already succeeded" in out.getvalue()
    with pytest.raises(CommandError, match="'nope' is not a job id"):
        call_command("jobs_redispatch", "nope")


@pytest.mark.slow
def test_mlgov_exits_1_as_soon_as_the_work_fails(
    live_server, world, acme, alice, eager_celery, monkeypatch, tmp_path
):
    def broken(*args, **kwargs):
        raise Surprise("the unexpected happened")

    monkeypatch.setattr("explain.fairness.assess", broken)
    token = make_token(acme, alice, ["explain:run", "model:read"])
    started = time.monotonic()
    result = mlgov(
        "fairness",
        "--model",
        "income",
        "--version",
        "1",
        "--dataset",
        "adult@v1",
        "--target",
        "label",
        "--sensitive",
        "sex",
        "--features",
        "score,sex",
        url=live_server.url,
        token=token,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Surprise: the unexpected happened" in result.stdout + result.stderr
    assert time.monotonic() - started < 60  # not the 600 s it waited for a job left running


def test_a_broker_that_cannot_be_reached_leaves_the_work_queued_until_the_sweep_sends_it(
    world, eager_celery, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    from kombu.exceptions import OperationalError as BrokerError

    def broker_down(*args, **kwargs):
        raise BrokerError("[Errno 111] Connection refused")

    with monkeypatch.context() as broken:
        broken.setattr("explain.tasks.run_job.apply_async", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            _, job_id = _ask("fairness", world)
        job = Job.objects.get(pk=job_id)
        assert (job.state, job.dispatched_at) == (WorkState.QUEUED, None)
        assert f"could not send explain.run_job('{job_id}',)" in caplog.text
        Job.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(minutes=1))
        assert work_sweep()["sent"] == 0  # still down: the next sweep tries again
    assert work_sweep()["sent"] == 1  # the broker is back
    assert Job.objects.get(pk=job_id).state == WorkState.SUCCEEDED
