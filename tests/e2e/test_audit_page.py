"""The audit log in Chromium: an auditor filters with the API's syntax from the form, opens an
event to read the reviewer's comment and its hashes, meets an unreadable time as an error, and on
a phone, every event open, the page does not scroll sideways."""

from __future__ import annotations

import pytest

from core.models import AuditEvent
from core.roles import Role
from tests.e2e.worlds import PHONE, login
from tests.factories import make_member


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_auditor_filters_and_reads_an_event(reviewed_world, live_server, page_factory):
    auditor = make_member(reviewed_world["workspace"], Role.AUDITOR, "carol")
    page = page_factory()
    login(page, live_server.url, auditor)
    page.goto(f"{live_server.url}/w/acme/audit/")
    page.fill("#filter-action", "promotion.*")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    actions = page.locator("table.audit > tbody > tr:first-child > td:nth-child(4)").all_inner_texts()
    assert actions
    assert all(action.startswith("promotion.") for action in actions)
    approval = AuditEvent.objects.get(action="promotion.approve")
    event = page.locator(f"#event-{approval.seq}")
    assert not event.locator("code.hash").first.is_visible()  # closed until asked for
    event.locator("summary").click()
    assert event.get_by_text("first release").is_visible()
    assert event.locator("code.hash").first.inner_text() == approval.hash

    page.fill("#filter-since", "not-a-date")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert "since: Datetime has wrong format" in page.locator("#filter-problems").inner_text()
    assert page.locator("table.audit").count() == 0
    assert page.console_errors == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_audit_log_fits_a_phone_with_every_event_open(reviewed_world, live_server, chromium):
    auditor = make_member(reviewed_world["workspace"], Role.AUDITOR, "carol")
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        login(page, live_server.url, auditor)
        for path in ("/w/acme/audit/", "/w/acme/audit/?since=not-a-date"):
            page.goto(live_server.url + path)
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            width = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (path, width)
    finally:
        context.close()
