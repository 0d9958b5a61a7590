"""The dashboard's jobs page with Django's test client: what each role sees, filters, cancelling
(CSRF, role, workspace) and the outcome line of each kind of job."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from sklearn.tree import DecisionTreeClassifier

from core.models import AuditEvent
from explain.models import Job, JobState
from tests.conftest import bearer
from tests.explain.conftest import planted_bias, register
from tests.factories import PASSWORD, make_token

FEATURES = ["score", "sex"]


def browser(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def jobs(acme, alice, eager_celery, django_capture_on_commit_callbacks):
    """A succeeded explanation and fairness assessment, a failed explanation and a queued one."""
    frame = planted_bias(2000)
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(frame[FEATURES], frame["label"])
    register(acme, alice, model, frame)
    api = bearer(make_token(acme, alice, ["explain:run", "model:read"]))
    explain = reverse("model-explanations", kwargs={"name": "income", "version": "1"})
    assess = reverse("model-fairness-assessments", kwargs={"name": "income", "version": "1"})
    base = {"dataset_version": "adult@v1", "features": FEATURES}
    with django_capture_on_commit_callbacks(execute=True):
        made = {
            "explained": api.post(explain, base, format="json"),
            "assessed": api.post(
                assess,
                {**base, "target": "label", "sensitive_features": ["sex"], "resamples": 50},
                format="json",
            ),
            "failed": api.post(explain, {**base, "features": ["score", "nope"]}, format="json"),
        }
    made["queued"] = api.post(explain, base, format="json")  # not dispatched: still queued
    return {name: response.json()["id"] for name, response in made.items()}


def _row(page: str, job_id: str) -> str:
    match = re.search(rf'<tr id="job-{job_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for job {job_id}"
    return match[1]


def test_a_reviewer_sees_every_job_and_what_it_found(acme, bob, jobs):
    url = reverse("dashboard-jobs", kwargs={"slug": acme.slug})
    page = browser(bob).get(url).content.decode()
    assert 'href="/w/acme/jobs/">Jobs</a>' in page  # in the navigation
    explained = _row(page, jobs["explained"])
    assert re.search(r"2,000 rows, residual \d\.\de-\d\d; top: (score, sex|sex, score)", explained)
    assert "succeeded" in explained
    assert "alice" in explained
    assessed = _row(page, jobs["assessed"])
    assert re.search(
        r"2,000 rows by sex: demographic parity difference 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", assessed
    )
    assert "the dataset has no column &#x27;nope&#x27;" in _row(page, jobs["failed"])
    assert "queued" in _row(page, jobs["queued"])
    assert "Cancel</button>" not in page  # a reviewer cannot ask for jobs, so cannot cancel them

    failed_only = browser(bob).get(url + "?state=failed&kind=explanation").content.decode()
    assert re.findall(r'<tr id="job-([0-9a-f-]+)">', failed_only) == [jobs["failed"]]
    by_model = browser(bob).get(url + "?model=ghost").content.decode()
    assert "No job matches." in by_model


def test_a_data_scientist_cancels_a_queued_job_with_the_form(acme, alice, bob, mallory, jobs):
    client = browser(alice)
    url = reverse("dashboard-jobs", kwargs={"slug": acme.slug})
    page = client.get(url).content.decode()
    assert page.count("Cancel</button>") == 1  # only the unfinished job
    assert "Cancel</button>" in _row(page, jobs["queued"])
    cancel = reverse("dashboard-job-cancel", kwargs={"slug": acme.slug, "job_id": jobs["queued"]})
    assert client.post(cancel).status_code == 403  # no CSRF token
    assert Job.objects.get(pk=jobs["queued"]).state == JobState.QUEUED
    token = client.cookies["csrftoken"].value

    # Others may not: a reviewer's post is refused with a message, another workspace's is a 404.
    reviewer = browser(bob)
    reviewer.get(url)
    refused = reviewer.post(cancel, {"csrfmiddlewaretoken": reviewer.cookies["csrftoken"].value}, follow=True)
    assert "your role cannot cancel jobs" in refused.content.decode()
    outsider = browser(mallory)
    outsider.get(reverse("home"))
    assert (
        outsider.post(cancel, {"csrfmiddlewaretoken": outsider.cookies["csrftoken"].value}).status_code == 404
    )
    assert Job.objects.get(pk=jobs["queued"]).state == JobState.QUEUED

    done = client.post(cancel, {"csrfmiddlewaretoken": token}, follow=True).content.decode()
    assert "Cancelled the explanation job of income@1." in done
    assert "cancelled" in _row(done, jobs["queued"])
    assert "Cancel</button>" not in done
    assert "cancelled before it started" in _row(done, jobs["queued"])
    assert Job.objects.get(pk=jobs["queued"]).state == JobState.CANCELLED
    event = AuditEvent.objects.get(workspace=acme, action="explanation.cancel")
    assert event.actor == "user:alice"

    finished = reverse("dashboard-job-cancel", kwargs={"slug": acme.slug, "job_id": jobs["explained"]})
    again = client.post(finished, {"csrfmiddlewaretoken": token}, follow=True).content.decode()
    assert "the job has already succeeded" in again


def test_pages_of_fifty_keep_the_filters(acme, bob, jobs):
    queued = Job.objects.get(pk=jobs["queued"])
    Job.objects.bulk_create(
        [
            Job(
                workspace=acme,
                kind=queued.kind,
                model_node=queued.model_node,
                dataset_node=queued.dataset_node,
                model_artifact_id=queued.model_artifact_id,
                dataset_artifact_id=queued.dataset_artifact_id,
            )
            for _ in range(54)
        ]
    )
    url = reverse("dashboard-jobs", kwargs={"slug": acme.slug})
    client = browser(bob)
    first = client.get(url + "?state=queued").content.decode()
    assert first.count('<tr id="job-') == 50
    assert "Page 1 of 2." in first
    assert 'href="?kind=&amp;state=queued&amp;model=&amp;page=2">older</a>' in first
    second = client.get(url + "?kind=&state=queued&model=&page=2").content.decode()
    assert second.count('<tr id="job-') == 5  # 55 queued jobs in all
