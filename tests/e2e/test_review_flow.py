"""A reviewer logs in, opens the queue, reads a request whose charts have rendered, approves with a
comment and the stage changes; the author has no approve button; another workspace sees nothing;
no console errors and no request to another host."""

from __future__ import annotations

import pytest

from core.roles import Role
from explain.models import Job, JobKind, JobState
from governance.models import ModelVersion, Stage
from lineage.models import Node
from tests.e2e.worlds import login
from tests.factories import (
    make_member,
    make_user,
    make_workspace,
)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_reviewer_approves_in_the_browser(world, live_server, page_factory):
    base = live_server.url
    page = page_factory()
    login(page, base, world["reviewer"])
    page.goto(f"{base}/w/acme/reviews/")
    page.click('table.queue a:text-is("Review")')
    try:
        page.wait_for_selector("div.chart[data-rendered=true]", timeout=20_000)
    except Exception:
        state = page.evaluate(
            "() => [typeof Plotly, Array.from(document.querySelectorAll('div.chart'))"
            ".map(d => d.dataset.rendered + ':' + d.offsetHeight)]"
        )
        raise AssertionError(f"charts did not render: {state}; console: {page.console_errors}") from None
    points = page.evaluate(
        "() => Array.from(document.querySelectorAll('div.chart[data-rendered=true]'))"
        ".map(d => (d.data || []).reduce((n, t) => n + ((t.x || []).length || (t.y || []).length), 0))"
    )
    assert len(points) == 4, points  # fairness, SHAP importance, SHAP beeswarm, provenance
    assert all(p > 0 for p in points), points  # every chart holds data points
    assert "0 of 1 required approvals" in page.content()
    page.fill("#comment", "fairness and provenance read")
    page.once("dialog", lambda dialog: dialog.accept())  # "Approve income@1 for production?"
    page.click("#approve")
    page.wait_for_load_state("networkidle")
    assert page.inner_text("#version-stage") == "production"
    assert ModelVersion.objects.get(pk=world["version"].pk).stage == Stage.PRODUCTION
    assert page.console_errors == []
    assert page.foreign_requests == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_author_cannot_approve_and_outsiders_see_nothing(world, live_server, page_factory):
    base = live_server.url
    page = page_factory()
    login(page, base, world["author"])
    page.goto(f"{base}/w/acme/reviews/{world['request'].pk}/")
    assert page.locator("#approve").count() == 0
    assert page.locator("#author-note").is_visible()
    outsider = make_user("eve")
    make_workspace("other", admin=outsider)
    other = page_factory()
    login(other, base, outsider)
    response = other.goto(f"{base}/w/acme/reviews/{world['request'].pk}/")
    assert response.status == 404
    assert "income" not in other.content()
    assert page.console_errors == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_auditor_exports_a_report_that_verifies(world, live_server, page_factory, eager_celery):
    from core import signing
    from mlgov.client import verify_report

    auditor = make_member(world["workspace"], Role.AUDITOR, "carol")
    base = live_server.url
    page = page_factory()
    login(page, base, auditor)
    page.goto(f"{base}/w/acme/reviews/{world['request'].pk}/")
    page.click("#export-report")
    page.wait_for_selector("#download-bundle", timeout=30_000)  # the page refreshes until it is done
    bundle = page.request.get(base + page.get_attribute("#download-bundle", "href"))
    assert bundle.ok
    problems = verify_report(bundle.json(), signing.public_key_document()["public_key"])
    assert problems == []
    assert page.console_errors == []
    assert page.foreign_requests == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_page_renders_without_console_errors_or_foreign_requests(world, live_server, page_factory):
    from core.roles import Role as Roles
    from governance.models import Report

    admin = make_member(world["workspace"], Roles.ADMIN, "root")
    report = Report.objects.create(workspace=world["workspace"], model_version=world["version"])
    node = Node.objects.get(key="income@1")
    base = live_server.url
    page = page_factory()
    page.goto(f"{base}/accounts/login/")
    login(page, base, admin)
    paths = [
        "/",
        "/w/acme/",
        "/w/acme/?q=income&stage=none",
        "/w/acme/reviews/",
        f"/w/acme/reviews/{world['request'].pk}/",
        "/w/acme/lineage/",
        "/w/acme/lineage/?q=adult",
        f"/w/acme/lineage/{node.pk}/",
        "/w/acme/audit/",
        "/w/acme/audit/?action=promotion.",
        "/w/acme/jobs/",
        "/w/acme/jobs/?kind=fairness&state=succeeded",
        f"/w/acme/reports/{report.pk}/",
        "/api/docs/",
    ]
    for path in paths:
        response = page.goto(base + path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        if page.locator("div.chart").count():
            page.wait_for_selector("div.chart[data-rendered=true]", timeout=20_000)
        assert page.console_errors == [], (path, page.console_errors)
        assert page.foreign_requests == [], (path, page.foreign_requests)
    # A user of another workspace sees none of acme's models in their own inventory either.
    outsider = make_user("eve")
    make_workspace("other", admin=outsider)
    other = page_factory()
    login(other, base, outsider)
    other.goto(f"{base}/w/other/")
    assert "income" not in other.content()
    assert other.goto(f"{base}/w/acme/").status == 404


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_data_scientist_cancels_a_queued_job_in_the_browser(world, live_server, page_factory):
    queued = Job.objects.create(
        workspace=world["workspace"],
        kind=JobKind.EXPLANATION,
        model_node=world["version"].node,
        dataset_node=Node.objects.get(key="adult@v1"),
        model_artifact_id=world["version"].node.artifact_id,
        dataset_artifact_id=Node.objects.get(key="adult@v1").artifact_id,
    )
    base = live_server.url
    reviewer = page_factory()
    login(reviewer, base, world["reviewer"])
    reviewer.goto(f"{base}/w/acme/jobs/")
    assert reviewer.locator(f"#job-{queued.pk}").inner_text().count("queued") == 1
    assert reviewer.get_by_role("button", name="Cancel").count() == 0

    page = page_factory()
    login(page, base, world["author"])
    page.goto(f"{base}/w/acme/jobs/")
    row = page.locator(f"#job-{queued.pk}")
    row.get_by_role("button", name="Cancel").click()
    page.wait_for_load_state("networkidle")
    assert "Cancelled the explanation job of income@1." in page.locator(".messages").inner_text()
    assert "cancelled before it started" in page.locator(f"#job-{queued.pk}").inner_text()
    assert page.get_by_role("button", name="Cancel").count() == 0
    queued.refresh_from_db()
    assert queued.state == JobState.CANCELLED
    assert page.console_errors == []
