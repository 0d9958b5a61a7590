"""Dashboard pages with Django's test client: content, roles, CSRF, CSP, tenancy. (The browser
tests in tests/e2e drive the same pages in Chromium.)"""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from core.actors import Actor
from governance import services
from governance.models import ModelVersion, Stage
from tests.factories import PASSWORD, make_user, make_workspace
from tests.governance.conftest import POLICY


@pytest.fixture
def pending(acme, ada, alice, registered):
    services.policy_upload(
        workspace=acme,
        actor=Actor(user=ada),
        document={
            "name": "one-review",
            "stages": ["production"],
            "rules": [
                {"id": "reviewers", "type": "approvals", "count": 1, "role": "compliance_reviewer"},
                {"id": "lineage", "type": "lineage_contains", "kinds": ["DatasetVersion", "Run"]},
            ],
        },
    )
    return services.promotion_request(
        workspace=acme,
        actor=Actor(user=alice),
        version=registered,
        stage="production",
        comment="ready for prod",
    )


def browser(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _csrf(client, url) -> str:
    client.get(url)
    return client.cookies["csrftoken"].value


def test_inventory_and_queue_show_the_request(acme, bob, pending):
    client = browser(bob)
    page = client.get(reverse("dashboard-inventory", kwargs={"slug": "acme"})).content.decode()
    assert "income" in page
    assert "to production" in page
    queue = client.get(reverse("dashboard-queue", kwargs={"slug": "acme"})).content.decode()
    assert "income@1" in queue
    assert "Review" in queue


def test_request_page_has_the_evidence_and_charts(acme, bob, pending):
    client = browser(bob)
    url = reverse("dashboard-request", kwargs={"slug": "acme", "request_id": pending.pk})
    response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "0 of 1 required approvals" in page  # the gate, with its reasons
    # Evidence reads as name and value, not a Python dict.
    assert '<span class="muted">needed</span> 1</span>' in page
    assert "{'" not in page
    assert 'id="approve"' in page
    # Charts come as JSON blocks (data, not code) and the plotly bundle is served locally.
    assert '<script id="figure-provenance" type="application/json">' in page
    assert "/static/vendor/plotly/plotly-basic.min.js" in page
    assert "http://" not in page.split("<body>")[1].replace("http://testserver", "")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "'unsafe-eval'" not in csp
    assert client.get("/static/vendor/plotly/plotly-basic.min.js").status_code == 200


def test_reviewer_approves_with_a_comment_and_the_stage_changes(acme, bob, pending):
    client = browser(bob)
    url = reverse("dashboard-request", kwargs={"slug": "acme", "request_id": pending.pk})
    review = reverse("dashboard-review", kwargs={"slug": "acme", "request_id": pending.pk})
    assert client.post(review, {"decision": "approve", "comment": "ok"}).status_code == 403  # no CSRF token
    token = _csrf(client, url)
    response = client.post(
        review, {"decision": "approve", "comment": "", "csrfmiddlewaretoken": token}, follow=True
    )
    assert "a review needs a comment" in response.content.decode()
    response = client.post(
        review, {"decision": "approve", "comment": "evidence read", "csrfmiddlewaretoken": token}, follow=True
    )
    assert "is now production" in response.content.decode()
    assert ModelVersion.objects.get(pk=pending.model_version_id).stage == Stage.PRODUCTION
    # The closed request stays one click away from the queue (an auditor exports from its page).
    queue = client.get(reverse("dashboard-queue", kwargs={"slug": "acme"})).content.decode()
    assert f'<a href="{url}">' in queue.split('id="closed"')[1]


def test_a_reviewer_who_has_reviewed_sees_the_review_and_no_form(acme, ada, bob, reviewers, pending):
    services.policy_upload(  # a new revision of the pending request's policy: two approvals now
        workspace=acme,
        actor=Actor(user=ada),
        document={
            "name": "one-review",
            "stages": ["production"],
            "rules": [{"id": "reviewers", "type": "approvals", "count": 2, "role": "compliance_reviewer"}],
        },
    )
    services.review(
        workspace=acme, actor=Actor(user=bob), request_id=pending.pk, approve=True, comment="read it"
    )
    url = reverse("dashboard-request", kwargs={"slug": "acme", "request_id": pending.pk})
    page = browser(bob).get(url).content.decode()
    assert "<strong>bob</strong> approved: read it" in page
    assert 'id="approve"' not in page
    assert 'id="approve"' in browser(reviewers[0]).get(url).content.decode()  # rita has not reviewed yet


def test_the_author_sees_no_approve_button_and_cannot_post_one(acme, alice, pending):
    client = browser(alice)
    url = reverse("dashboard-request", kwargs={"slug": "acme", "request_id": pending.pk})
    page = client.get(url).content.decode()
    assert 'id="approve"' not in page
    token = _csrf(client, url)
    response = client.post(
        reverse("dashboard-review", kwargs={"slug": "acme", "request_id": pending.pk}),
        {"decision": "approve", "comment": "mine", "csrfmiddlewaretoken": token},
        follow=True,
    )
    assert "cannot review" in response.content.decode()
    assert ModelVersion.objects.get(pk=pending.model_version_id).stage == Stage.NONE


def test_another_workspace_sees_nothing(acme, pending):
    outsider = make_user("eve")
    make_workspace("other", admin=outsider)
    client = browser(outsider)
    for url in (
        reverse("dashboard-inventory", kwargs={"slug": "acme"}),
        reverse("dashboard-queue", kwargs={"slug": "acme"}),
        reverse("dashboard-request", kwargs={"slug": "acme", "request_id": pending.pk}),
        reverse("dashboard-audit", kwargs={"slug": "acme"}),
    ):
        assert client.get(url).status_code == 404
    assert (
        "income" not in client.get(reverse("dashboard-inventory", kwargs={"slug": "other"})).content.decode()
    )


def test_audit_log_filters_and_shows_the_chain_status(acme, carol, alice, pending):
    client = browser(carol)
    url = reverse("dashboard-audit", kwargs={"slug": "acme"})
    page = client.get(url).content.decode()
    assert "Chain intact" in page
    filtered = client.get(url, {"action": "promotion."}).content.decode()
    assert "promotion.request" in filtered
    assert "model.register" not in filtered
    assert browser(alice).get(url).status_code == 403  # a data scientist has no audit:read


def test_pages_need_a_login(acme, pending):
    response = Client().get(reverse("dashboard-queue", kwargs={"slug": "acme"}))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_policy_fixture_is_valid():
    assert json.loads(json.dumps(POLICY))["name"] == "production-readiness"


def test_request_page_lists_work_in_progress_with_a_link_to_its_jobs(acme, bob, pending):
    from explain.models import Job, JobKind
    from lineage.models import Node

    version = pending.model_version
    data = Node.objects.get(workspace=acme, key="adult@v1")
    Job.objects.create(
        workspace=acme,
        kind=JobKind.FAIRNESS,
        model_node=version.node,
        dataset_node=data,
        model_artifact_id=version.node.artifact_id,
        dataset_artifact_id=data.artifact_id,
    )
    client = browser(bob)
    page = client.get(reverse("dashboard-request", kwargs={"slug": "acme", "request_id": pending.pk}))
    text = page.content.decode()
    assert "<li>fairness: queued, 0%</li>" in text
    link = re.search(r'<a href="([^"]+)">All jobs of this version</a>', text)
    assert link, text
    jobs_page = client.get(link[1].replace("&amp;", "&")).content.decode()
    assert jobs_page.count('<tr id="job-') == 1
    assert "income@1" in jobs_page


def test_request_page_shows_each_feature_sets_newest_assessment_and_the_explanation(acme, bob, pending):
    from django.utils import timezone

    from explain.fairness import assess
    from explain.models import Job, JobKind, JobState
    from lineage.models import Node
    from tests.governance.conftest import training_frame

    version = pending.model_version
    data = Node.objects.get(workspace=acme, key="adult@v1")
    frame = training_frame()
    frame["region"] = frame.index % 3

    def succeeded(kind, result, backend=""):
        return Job.objects.create(
            workspace=acme,
            kind=kind,
            state=JobState.SUCCEEDED,
            model_node=version.node,
            dataset_node=data,
            model_artifact_id=version.node.artifact_id,
            dataset_artifact_id=data.artifact_id,
            backend=backend,
            result=result,
            finished_at=timezone.now(),
        )

    def assessment(*features):
        return assess(frame["label"].to_numpy(), (frame["score"] > 0.4).to_numpy(), frame[list(features)])

    by_sex = succeeded(JobKind.FAIRNESS, assessment("sex"))
    by_both = succeeded(JobKind.FAIRNESS, assessment("sex", "region"))
    importance = {"data": [{"type": "bar", "x": [0.4], "y": ["score"]}], "layout": {}}
    shap = {"rows": 600, "top_features": ["score"], "additivity_residual": 0.0}
    succeeded(JobKind.EXPLANATION, {**shap, "figures": {"importance": importance, "beeswarm": {}}}, "cpu")
    page = browser(bob).get(reverse("dashboard-request", kwargs={"slug": "acme", "request_id": pending.pk}))
    text = page.content.decode()
    assert re.findall(r"<h3>By ([^<]+)</h3>", text) == ["sex", "sex, region"]
    assert f"Assessment {by_sex.pk} on adult@v1" in text
    assert f"Assessment {by_both.pk} on adult@v1" in text
    assert "with its 0.95 bootstrap interval" in text
    figure = re.search(r'<script id="figure-fairness-1" type="application/json">(.*?)</script>', text, re.S)
    assert figure, text
    labels = next(trace["x"] for trace in json.loads(figure[1])["data"])
    assert [label.split(" (n=")[0] for label in labels] == ["sex=0", "sex=1"]  # each with its size
    assert all(re.fullmatch(r"sex=\d \(n=\d+\)", label) for label in labels)
    assert "600 rows on cpu" in text
    # Each interval is shown beside its group's size, and numbers at four significant digits.
    sizes = frame["sex"].value_counts()
    for sex, size in sizes.items():
        row = re.search(rf"<td>sex={sex}(?: \(reference\))?</td>\s*<td>{size}</td>", text)
        assert row, (sex, size)
    assert "Disparities over the groups with at least 30 rows" in text
    shown = re.findall(r">(-?\d+\.\d+)<", text)
    assert shown
    assert all(len(n.lstrip("-").replace(".", "").lstrip("0")) <= 6 for n in shown), shown  # not 16 digits
    shap_figure = re.search(
        r'<script id="figure-shap-importance" type="application/json">(.*?)</script>', text
    )
    assert shap_figure, text
    assert json.loads(shap_figure[1]) == importance
