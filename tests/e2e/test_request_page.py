"""The request page in Chromium: a reviewer is asked to confirm before a decision is sent (cancelling
sends nothing), decides with the keyboard alone, and on a phone the page does not scroll sideways.

The world: income@1 is in production (a reviewer approved it under revision 1 of the policy);
alice asks to move income@2, trained on other data, to production under revision 2, which bounds
fairness and accuracy and has a rule scoped to other models."""

from __future__ import annotations

import pytest

from governance.models import ModelVersion, Review, Stage
from tests.e2e.worlds import PHONE, login


def _open(page, base: str, world) -> None:
    page.goto(f"{base}/w/acme/reviews/{world['request'].pk}/")
    page.wait_for_selector("div.chart[data-rendered=true]", timeout=20_000)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_approve_asks_first_and_cancelling_sends_nothing(reviewed_world, live_server, page_factory):
    page = page_factory()
    login(page, live_server.url, reviewed_world["bob"])
    _open(page, live_server.url, reviewed_world)
    asked = []

    def dismiss(dialog):
        asked.append((dialog.type, dialog.message))
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.fill("#comment", "fairness within the bound; card read")
    page.click("#approve")
    page.wait_for_timeout(300)
    assert asked, "no confirmation was asked"
    kind, message = asked[0]
    assert kind == "confirm"
    assert message.startswith("Approve income@2 for production?")
    assert "fairness within the bound; card read" in message
    assert page.url.endswith(f"/reviews/{reviewed_world['request'].pk}/")
    assert not Review.objects.filter(request=reviewed_world["request"]).exists()
    assert ModelVersion.objects.get(pk=reviewed_world["second"].pk).stage == Stage.NONE
    assert page.evaluate("document.activeElement.id") == "approve"  # the focus is where it was

    page.remove_listener("dialog", dismiss)
    page.on("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("#reject")
    assert Review.objects.get(request=reviewed_world["request"]).approve is False
    assert page.console_errors == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_reviewer_approves_with_the_keyboard_alone(reviewed_world, live_server, page_factory):
    page = page_factory()
    login(page, live_server.url, reviewed_world["bob"])
    _open(page, live_server.url, reviewed_world)
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.focus("#comment")
    page.keyboard.type("read the card, the bounds and the comparison")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "approve"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert asked
    assert asked[0].startswith("Approve income@2 for production?")
    assert ModelVersion.objects.get(pk=reviewed_world["second"].pk).stage == Stage.PRODUCTION
    assert ModelVersion.objects.get(pk=reviewed_world["first"].pk).stage == Stage.ARCHIVED
    assert page.console_errors == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_request_page_fits_a_phone(reviewed_world, live_server, chromium):
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        login(page, live_server.url, reviewed_world["bob"])
        for path in ("/w/acme/", "/w/acme/reviews/", f"/w/acme/reviews/{reviewed_world['request'].pk}/"):
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            if page.locator("div.chart").count():
                page.wait_for_selector("div.chart[data-rendered=true]", timeout=20_000)
            # Every data table open: what a screen-reader user or a curious reviewer sees.
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            width = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (path, width)
    finally:
        context.close()
