"""The reports pages in Chromium: an auditor follows the navigation to the workspace's reports and a
version's, asks for a report with the page's form, and downloads its PDF from the list; the pages fit
a phone's width, axe finds no serious violation, and nothing errs or leaves the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.roles import Role
from tests.e2e.worlds import login
from tests.factories import make_member

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_auditor_asks_for_a_report_from_the_reports_pages_and_downloads_its_pdf(
    world,
    live_server,
    page_factory,
    eager_celery,
):
    auditor = make_member(world["workspace"], Role.AUDITOR, "carol")
    base = live_server.url
    page = page_factory()
    login(page, base, auditor)
    page.goto(f"{base}/w/acme/")
    page.click("header nav a:text-is('Reports')")
    page.wait_for_load_state("networkidle")
    assert "No report yet" in page.content()
    page.goto(f"{base}/w/acme/models/income/versions/1/reports/")
    page.click("#request-report")
    page.wait_for_selector("#download-bundle", timeout=30_000)  # the report's page, until it is done
    page.click("text=All reports of income@1")
    page.wait_for_load_state("networkidle")
    assert page.locator("table.reports tbody tr").count() == 1
    assert "succeeded" in page.inner_text("table.reports")
    pdf = page.request.get(base + page.get_attribute("a.download-pdf", "href"))
    assert pdf.ok
    assert pdf.body().startswith(b"%PDF")
    assert page.console_errors == []
    assert page.foreign_requests == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_reports_pages_fit_a_phone_and_pass_axe(world, live_server, chromium, eager_celery):
    from tests.factories import make_report

    auditor = make_member(world["workspace"], Role.AUDITOR, "carol")
    make_report(world["version"], auditor)
    context = chromium.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = context.new_page()
    try:
        login(page, live_server.url, auditor)
        for path in ("/w/acme/reports/", "/w/acme/models/income/versions/1/reports/"):
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth"), path
            page.add_script_tag(path=str(AXE))
            violations = page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                    .filter(v => v.impact === 'critical' || v.impact === 'serious').map(v => v.id)"""
            )
            assert violations == [], (path, violations)
    finally:
        context.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_unfinished_report_is_followed_in_place_without_reloading_the_page(
    world, live_server, page_factory
):
    """While a report is being made its page polls for it and redraws only its state: the page is
    not reloaded (a marker set in the page survives), and the poll stops once the work ended."""
    from governance.models import Report
    from tests.factories import make_report

    auditor = make_member(world["workspace"], Role.AUDITOR, "carol")
    report = make_report(world["version"], auditor)  # never sent to a worker: still queued
    page = page_factory()
    login(page, live_server.url, auditor)
    page.goto(f"{live_server.url}/w/acme/reports/{report.pk}/")
    assert "queued" in page.inner_text("#report-state")
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    page.evaluate("window.notReloaded = true")
    Report.objects.filter(pk=report.pk).update(state="failed", error="the signing key could not be read")
    page.wait_for_selector("#report-live .fail", timeout=15_000)
    assert "the signing key could not be read" in page.inner_text("#report-live")
    assert page.evaluate("window.notReloaded") is True
    assert page.get_attribute("#report-live", "data-live-every") is None  # no more polling
    assert page.console_errors == []
