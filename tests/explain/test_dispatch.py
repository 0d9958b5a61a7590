"""Jobs whose messages never reached a worker: sent again by the periodic dispatch (a broker that was
down when the job was asked for) or by an operator (`jobs_redispatch`, after a broker lost them)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError
from sklearn.tree import DecisionTreeClassifier

from core.models import AuditEvent
from explain import services, tasks
from explain.models import Job, JobState
from tests.explain.conftest import planted_bias, register

FEATURES = ["score", "sex"]


@pytest.fixture
def client(acme, alice):
    from tests.conftest import bearer
    from tests.factories import make_token

    return bearer(make_token(acme, alice, ["explain:run", "model:read"]))


@pytest.fixture
def model(acme, alice):
    frame = planted_bias(2000)
    fitted = DecisionTreeClassifier(max_depth=4, random_state=0).fit(frame[FEATURES], frame["label"])
    register(acme, alice, fitted, frame)
    return fitted


def _ask(client, **options) -> str:
    url = reverse("model-explanations", kwargs={"name": "income", "version": "1"})
    body = {"dataset_version": "adult@v1", "features": FEATURES, **options}
    response = client.post(url, body, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _age(job_id: str, minutes: float) -> None:
    Job.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(minutes=minutes))


def test_a_job_the_broker_did_not_take_is_sent_by_the_periodic_dispatch(
    acme, client, model, eager_celery, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    def broker_down(*args, **kwargs):
        raise OperationalError("[Errno 111] Connection refused")

    with monkeypatch.context() as broken:
        broken.setattr(tasks.run_job, "apply_async", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            job_id = _ask(client)
        job = Job.objects.get(pk=job_id)
        assert (job.state, job.dispatched_at) == (JobState.QUEUED, None)
        assert client.get(reverse("job-detail", kwargs={"job_id": job_id})).json()["dispatched_at"] is None
        assert f"could not queue job {job_id}" in caplog.text
        assert services.dispatch_pending() == (0, 0)  # just asked for: its dispatch may be on its way
        _age(job_id, 1)
        assert services.dispatch_pending() == (0, 1)  # the broker is still down: it stays pending

    assert tasks.dispatch_pending.apply().get() == 1  # the beat task, once the broker is back
    job = Job.objects.get(pk=job_id)
    assert job.state == JobState.SUCCEEDED, job.error
    assert client.get(reverse("job-detail", kwargs={"job_id": job_id})).json()["dispatched_at"]
    assert tasks.dispatch_pending.apply().get() == 0  # nothing is sent twice
    assert AuditEvent.objects.filter(workspace=acme, action="explanation.complete").count() == 1


def test_a_job_that_reached_the_broker_is_not_sent_again(
    client, model, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []  # the broker took each message; no worker has run it yet
    monkeypatch.setattr(tasks.run_job, "apply_async", lambda args, queue: sent.append((args, queue)))
    with django_capture_on_commit_callbacks(execute=True):
        job_id = _ask(client)
    assert sent == [((job_id,), Job.objects.get(pk=job_id).queue)]
    _age(job_id, 10)  # a long queue: still waiting for a worker
    assert services.dispatch_pending() == (0, 0)
    assert len(sent) == 1
    assert Job.objects.get(pk=job_id).state == JobState.QUEUED


def test_an_operator_sends_jobs_a_broker_lost_and_they_finish(acme, client, model, eager_celery):
    # A running job whose second chunk message was lost, and a job never sent at all.
    running = _ask(client, chunk_rows=1000)
    assert services.job_start(running) == [0, 1]
    before = Job.objects.get(pk=running).progressed_at  # set when it started
    assert services.chunk_run(running, 0) is False
    assert Job.objects.get(pk=running).progressed_at > before  # and when a chunk is done
    queued = _ask(client)
    done = _ask(client)
    services.jobs_redispatch(Job.objects.filter(pk=done))
    assert Job.objects.get(pk=done).state == JobState.SUCCEEDED

    out = io.StringIO()
    call_command("jobs_redispatch", "--idle-minutes", "5", stdout=out)
    assert out.getvalue().strip() == "0 jobs sent"  # both were asked for just now
    # Started half an hour ago, its last chunk done a minute ago: still working, left alone.
    _age(running, 30)
    Job.objects.filter(pk=running).update(
        started_at=timezone.now() - timedelta(minutes=30), progressed_at=timezone.now() - timedelta(minutes=1)
    )
    call_command("jobs_redispatch", "--idle-minutes", "5", stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == "0 jobs sent"
    Job.objects.filter(pk=running).update(progressed_at=timezone.now() - timedelta(minutes=20))
    call_command("jobs_redispatch", "--idle-minutes", "5", stdout=out)
    assert f"sent {running} (explanation, running, workspace {acme.slug})" in out.getvalue()
    assert Job.objects.get(pk=queued).state == JobState.QUEUED
    call_command("jobs_redispatch", queued, done, stdout=out)
    assert f"skipped {done}: already succeeded" in out.getvalue()
    for job_id in (running, queued):
        job = Job.objects.get(pk=job_id)
        assert job.state == JobState.SUCCEEDED, job.error
    assert Job.objects.get(pk=running).result["rows"] == 2000
    assert AuditEvent.objects.filter(workspace=acme, action="explanation.complete").count() == 3

    with pytest.raises(CommandError, match="'nope' is not a job id"):
        call_command("jobs_redispatch", "nope")
    with pytest.raises(CommandError, match="no such job: 00000000-0000-0000-0000-000000000000"):
        call_command("jobs_redispatch", "00000000-0000-0000-0000-000000000000")
