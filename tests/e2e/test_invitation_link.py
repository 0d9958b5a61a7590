"""Joining by invitation in Chromium: a person with no account opens the e-mailed link, chooses a
username and password, and lands in the workspace with the invited role; opening the link again,
or an expired one, is refused in words and audited. The sign-up page has no serious axe violation
and fits a phone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.actors import Actor
from core.invitation_links import link_url
from core.models import AuditEvent, Invitation, Membership
from core.roles import Role
from core.workspaces import invitation_create
from tests.e2e.test_every_page import AXE
from tests.e2e.worlds import PHONE
from tests.factories import make_user, make_workspace

PASSWORD = "her-own-long-passphrase"


def _invitation(live_server, email: str = "dora@example.org"):
    admin = make_user("admin")
    workspace = make_workspace("acme", admin=admin)
    invitation, secret = invitation_create(
        workspace=workspace, actor=Actor(user=admin), email=email, role=Role.COMPLIANCE_REVIEWER
    )
    return workspace, invitation, link_url(secret, live_server.url)


def _refusals(workspace) -> list[str]:
    events = AuditEvent.objects.filter(workspace=workspace, action="invitation.link_refused").order_by("seq")
    return [e.payload["reason"] for e in events]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_invited_person_signs_up_through_the_link_and_the_link_then_refuses(live_server, page_factory):
    workspace, _, link = _invitation(live_server)
    page = page_factory()
    page.goto(link)
    assert page.get_by_role("heading", name="Join Acme").is_visible()
    assert "as Compliance reviewer" in page.inner_text("main")
    page.fill("#id_username", "dora")
    page.fill("#id_password", "password")  # too common: refused, by name, and nothing made
    page.fill("#id_password_again", "password")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "This password is too common" in page.inner_text("form")
    assert not Membership.objects.filter(workspace=workspace).exclude(user__username="admin").exists()
    assert all(" 400 " in f" {e} " or e.startswith("Failed to load resource") for e in page.console_errors)
    page.console_errors.clear()  # the 400 that refused the password is the expected answer

    page.fill("#id_username", "dora")
    page.fill("#id_password", PASSWORD)
    page.fill("#id_password_again", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == f"{live_server.url}/w/acme/"
    assert "You joined Acme as Compliance reviewer." in page.inner_text(".messages")
    assert "Acme · Compliance reviewer" in page.inner_text("header")
    assert Membership.objects.get(workspace=workspace, user__username="dora").role == Role.COMPLIANCE_REVIEWER

    # The same link again, even signed out in a fresh browser: refused, and the refusal audited.
    again = page_factory()
    response = again.goto(link)
    assert response.status == 410
    assert "has been used already" in again.inner_text("#refused")
    assert _refusals(workspace) == ["used"]
    assert page.console_errors == []
    assert page.foreign_requests == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_expired_link_is_refused_in_the_browser_and_audited(live_server, page_factory):
    workspace, invitation, link = _invitation(live_server)
    Invitation.objects.filter(pk=invitation.pk).update(link_expires_at=timezone.now() - timedelta(minutes=1))
    page = page_factory()
    response = page.goto(link)
    assert response.status == 410
    assert "has expired" in page.inner_text("#refused")
    assert page.locator("form input[type=password]").count() == 0
    assert _refusals(workspace) == ["expired"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_sign_up_page_has_no_serious_axe_violation_and_fits_a_phone(live_server, chromium):
    _, _, link = _invitation(live_server)
    context = chromium.new_context(bypass_csp=True, viewport=PHONE)
    page = context.new_page()
    try:
        page.goto(link)
        scroll, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .filter(v => v.impact === 'critical' || v.impact === 'serious').map(v => v.id)"""
        )
        assert violations == []
    finally:
        context.close()
