"""Dashboard pages with Django's test client: content, roles, CSRF, CSP, tenancy. (The browser
tests in tests/e2e drive the same pages in Chromium.)"""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from core.actors import Actor
from explain.models import Job, JobKind
from governance import services
from governance.models import DatasheetKind, ModelVersion, Stage
from lineage.models import Node
from tests.factories import (
    PASSWORD,
    fairness_result,
    make_datasheet,
    make_frame,
    make_job,
    make_model_version,
    make_policy,
    make_promotion_request,
    make_review,
    make_user,
    make_workspace,
    train_model,
)
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
    # Evidence reads as labelled values, not a Python dict.
    assert '<dt>request state</dt><dd><span class="text">open</span></dd>' in page
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
    filtered = client.get(url, {"action": "promotion.*"}).content.decode()  # the API's syntax
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
    for job in (by_sex, by_both):  # each links to its job and to its data
        link = rf'Assessment <a href="[^"]+#job-{job.pk}">{job.pk}</a> on <a href="[^"]+">adult@v1</a>'
        assert re.search(link, text)
    assert "with its 0.95 bootstrap interval" in text
    figure = re.search(r'<script id="figure-fairness-1" type="application/json">(.*?)</script>', text, re.S)
    assert figure, text
    labels = next(trace["x"] for trace in json.loads(figure[1])["data"])
    assert [label.split(" (n=")[0] for label in labels] == ["sex=0", "sex=1"]  # each with its size
    assert all(re.fullmatch(r"sex=\d \(n=\d+\)", label) for label in labels)
    assert re.search(r"600 rows of <a href=\"[^\"]+\">adult@v1</a> on cpu", text)
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


# --- what a reviewer reads on the request page ----------------------------------------------------


def _request_page(user, request) -> str:
    url = reverse("dashboard-request", kwargs={"slug": "acme", "request_id": request.pk})
    response = browser(user).get(url)
    assert response.status_code == 200
    return response.content.decode()


def _section(page: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.S)
    assert found, section_id
    return found[1]


def _rule_row(page: str, rule: str) -> str:
    found = re.search(rf"<tr[^>]*><td>{re.escape(rule)} .*?</tr>", page, re.S)
    assert found, rule
    return found[0]


def _numbers_people_read(page: str) -> list[str]:
    """Every decimal number on the page, leaving out tooltips and chart data (where the full value
    is kept on purpose)."""
    text = re.sub(r"<script\b.*?</script>", "", page, flags=re.S)
    text = re.sub(r'\stitle="[^"]*"', "", text)
    return re.findall(r"\d*\.\d+(?:e[+-]?\d+)?", text)


def _significant_digits(number: str) -> int:
    return len(number.split("e")[0].replace(".", "").lstrip("0"))


BOUNDS = {
    "name": "bounds",
    "stages": ["production"],
    "rules": [
        {
            "id": "parity-sex",
            "type": "fairness_bound",
            "metric": "demographic_parity_difference",
            "sensitive_feature": "sex",
            "max": 0.15,
            "use_interval": True,
            "description": "Selection rates of the sexes close enough.",
        },
        {"id": "accuracy", "type": "metric_threshold", "metric": "accuracy", "min": 0.95},
        {
            "id": "credit-auc",
            "type": "metric_threshold",
            "metric": "auc",
            "min": 0.9,
            "applies_to": {"models": ["credit-*"]},
        },
    ],
}


def test_each_rule_shows_the_bound_its_policy_revision_sets_beside_its_value(acme, ada, bob, pending):
    make_job(pending.model_version, JobKind.FAIRNESS)
    services.policy_upload(workspace=acme, actor=Actor(user=ada), document=BOUNDS)
    revised = {**BOUNDS, "rules": [{**BOUNDS["rules"][0], "max": 0.2}, *BOUNDS["rules"][1:]]}
    services.policy_upload(workspace=acme, actor=Actor(user=ada), document=revised)
    page = _request_page(bob, pending)
    parity = _rule_row(page, "bounds/parity-sex")
    # The bound of revision 2, which the evaluation names, not of revision 1.
    assert '<dt>max</dt><dd><span class="num" title="0.2">0.2</span></dd>' in parity
    assert '<dt>use interval</dt><dd><span class="text">yes</span></dd>' in parity
    assert "policy bounds, revision 2" in parity
    assert "Selection rates of the sexes close enough." in parity
    # Its value is the measured disparity with its interval, at four significant digits.
    value = re.search(
        r'<td class="value" data-label="Value"><span class="num" title="([^"]+)">([^<]+)</span>', parity
    )
    assert value, parity
    assert re.fullmatch(r"-?[\d.e+-]+ \[-?[\d.e+-]+, -?[\d.e+-]+\]", value[2]), value[2]
    assert "demographic_parity_difference for sex is" in parity  # and its reason
    accuracy = _rule_row(page, "bounds/accuracy")
    assert '<dt>min</dt><dd><span class="num" title="0.95">0.95</span></dd>' in accuracy
    assert "below the minimum 0.95" in accuracy
    scoped_out = _rule_row(page, "bounds/credit-auc")
    assert scoped_out.startswith('<tr class="not-applicable">')
    assert '<td class="na">not applicable</td>' in scoped_out
    # The evidence links the fairness job to its row on the jobs page and the data to its node.
    job = Job.objects.get(kind="fairness")
    assert f'href="/w/acme/jobs/?model=income%401#job-{job.pk}"' in parity
    data = Node.objects.get(workspace=acme, key="adult@v1")
    assert f'<a href="/w/acme/lineage/{data.pk}/">adult@v1</a>' in parity


def test_the_request_compares_with_the_version_now_in_the_stage(acme, alice, bob, pending):
    make_job(pending.model_version, JobKind.FAIRNESS)
    make_job(pending.model_version, JobKind.EXPLANATION)
    make_review(pending, bob, comment="first release")
    assert ModelVersion.objects.get(pk=pending.model_version_id).stage == Stage.PRODUCTION
    frame = make_frame(seed=3)
    model = train_model(frame)
    second = make_model_version(
        acme,
        alice,
        "income",
        "2",
        datasets=("adult@v2",),
        frame=frame,
        model=model,
        metrics={"accuracy": 0.8765},
    )
    make_job(second, JobKind.FAIRNESS, result=fairness_result(model, frame))
    request = make_promotion_request(second, alice, "production")
    comparison = _section(_request_page(bob, request), "comparison")
    assert "income@1 is in production now" in comparison
    accuracy = re.search(r'<th scope="row">accuracy</th>(.*?)</tr>', comparison, re.S)
    assert accuracy, comparison
    assert '<span class="num" title="0.8765">0.8765</span>' in accuracy[1]
    assert '<span class="num" title="0.9">0.9</span>' in accuracy[1]
    assert re.search(
        r'<span aria-hidden="true">↓</span> <span title="-0\.0235\d*">-0\.0235</span>', accuracy[1]
    )
    parity = re.search(r'<th scope="row">demographic parity difference</th>(.*?)</tr>', comparison, re.S)
    assert parity, comparison
    assert (
        len(re.findall(r'<span class="num" title="[^"]+">[^<]+ \[[^<]+\]</span>', parity[1])) == 2
    )  # intervals
    assert re.search(r"[↑↓=]", parity[1])
    assert "Top features (mean |SHAP|)" in comparison
    assert "+ adult@v2; \N{MINUS SIGN} adult@v1" in comparison  # the training data changed
    v2 = Node.objects.get(workspace=acme, key="adult@v2")
    assert f'<a href="/w/acme/lineage/{v2.pk}/">adult@v2</a>' in comparison


def test_a_request_for_the_first_version_says_there_is_nothing_to_compare(bob, pending):
    comparison = _section(_request_page(bob, pending), "comparison")
    assert "income@1 is the first version of income in use" in comparison
    assert "<table" not in comparison


def test_with_no_version_in_the_stage_the_request_compares_with_the_version_before(acme, alice, bob, pending):
    """income@1 waits in no stage (its request still open); income@2 asks for production: the page
    compares with income@1 and says why it is that one, not a version in production."""
    second = make_model_version(acme, alice, "income", "2", metrics={"accuracy": 0.95})
    third = make_model_version(acme, alice, "income", "3", metrics={"accuracy": 0.97})
    request = make_promotion_request(second, alice, "production")
    comparison = _section(_request_page(bob, request), "comparison")
    assert "Compared with the version before" in comparison
    assert (
        "No other version of income is in production now; income@1, registered before this one" in comparison
    )
    assert "income@1 (before)" in comparison
    assert "income@3" not in comparison  # registered later: not what this one replaces
    accuracy = re.search(r'<th scope="row">accuracy</th>(.*?)</tr>', comparison, re.S)
    assert accuracy, comparison
    assert '<span class="num" title="0.95">0.95</span>' in accuracy[1]
    assert '<span class="num" title="0.9">0.9</span>' in accuracy[1]
    # An archived version is not compared with.
    ModelVersion.objects.filter(pk=pending.model_version_id).update(stage=Stage.ARCHIVED)
    comparison = _section(_request_page(bob, request), "comparison")
    assert "income@2 is the first version of income in use" in comparison
    assert third.stage == Stage.NONE


def test_the_model_card_and_the_training_datasheets_read_section_by_section(acme, alice, bob, pending):
    make_datasheet(
        acme,
        alice,
        content={
            "model_details": {"name": "income", "description": "Flags records likely to earn more than 50K."},
            "factors": {"relevant_factors": ["sex", "age"]},
            "caveats_and_recommendations": {"caveats": "1994 data.\nRe-assess before use."},
        },
    )
    make_datasheet(
        acme, alice, DatasheetKind.DATASET, "adult", "v1", content={"motivation": {"purpose": "Census rows."}}
    )
    page = _request_page(bob, pending)
    card = _section(page, "datasheet")
    assert "<h3>Model details" in card
    assert "Flags records likely to earn more than 50K." in card
    assert "1994 data.<br>Re-assess before use." in card
    assert (
        '<ul class="values"><li><span class="text">sex</span></li><li><span class="text">age</span></li></ul>'
        in card
    )
    license_field = re.search(r"<dt>License</dt>\s*<dd>(.*?)</dd>", card, re.S)
    assert license_field, card
    assert "missing" in license_field[1]
    # What the lineage filled is marked, and links to the data.
    training = re.search(r"<h3>Training data.*?</dl>", card, re.S)
    assert training, card
    assert "filled from lineage" in training[0]
    assert '<dt>Datasets <span class="from-evidence">filled from evidence</span></dt>' in training[0]
    data = Node.objects.get(workspace=acme, key="adult@v1")
    assert f'<a href="/w/acme/lineage/{data.pk}/">adult@v1</a>' in training[0]
    sheets = _section(page, "training-datasheets")
    assert "Census rows." in sheets
    assert "<h4>Motivation" in sheets


def test_numbers_read_at_four_digits_with_the_full_value_in_the_tooltip(acme, alice, bob):

    version = make_model_version(acme, alice, "long", "1", metrics={"accuracy": 0.9471234567891234})
    make_job(version, JobKind.FAIRNESS)
    make_job(version, JobKind.EXPLANATION)
    make_policy(
        acme,
        alice,
        "p",
        rules=[{"id": "accuracy", "type": "metric_threshold", "metric": "accuracy", "min": 0.5}],
    )
    page = _request_page(bob, make_promotion_request(version, alice, "production"))
    shown = _numbers_people_read(page)
    assert shown
    assert all(_significant_digits(n) <= 6 for n in shown), [n for n in shown if _significant_digits(n) > 6]
    assert '<span class="num" title="0.9471234567891234">0.9471</span>' in page  # the exact value kept
    assert "{'" not in page


def test_every_chart_has_a_caption_and_a_data_table(acme, alice, bob):

    version = make_model_version(acme, alice, "charted", "1")
    make_job(version, JobKind.FAIRNESS)
    explanation = make_job(version, JobKind.EXPLANATION)
    page = _request_page(bob, make_promotion_request(version, alice, "production"))
    charts = re.findall(r'<div class="chart" data-figure="([^"]+)"', page)
    assert charts == [
        "figure-fairness-1",
        "figure-shap-importance",
        "figure-shap-beeswarm",
        "figure-provenance",
    ]
    figures = re.findall(r'<figure class="chart-figure">(.*?)</figure>', page, re.S)
    assert len(figures) == 4
    assert all("<figcaption" in f for f in figures)
    assert sum("<summary>Data table</summary>" in f for f in figures) == 3  # importance shares the beeswarm's
    # The SHAP table: each feature's mean |SHAP| and the range of its plotted SHAP values.
    score = re.search(r'<th scope="row">score</th><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>', page, re.S)
    assert score, page
    mean_abs = explanation.result["importance"]["score"][explanation.result["plot_output"]]
    assert f'title="{mean_abs!r}"' in score[1]
    low, high = (float(re.search(r'title="([^"]+)"', cell)[1]) for cell in (score[2], score[3]))
    assert low < 0 < high
    # The fairness table: every metric of every group, with the group's size.
    assert re.search(r'<th scope="row">sex=0</th><td>\d+</td>', page)
