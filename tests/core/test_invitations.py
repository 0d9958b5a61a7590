"""Joining a workspace takes the user's consent: an admin invites, the user accepts or declines."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from core.models import AuditEvent, Invitation, Membership
from tests.conftest import bearer, session
from tests.factories import PASSWORD, make_token, make_user

pytestmark = pytest.mark.django_db


def _invite(ada, username="dora", role="auditor"):
    response = session(ada).post(reverse("member-list"), {"username": username, "role": role}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def test_an_invited_user_is_not_a_member_until_they_accept(acme, ada):
    dora = make_user("dora")
    invitation = _invite(ada)
    assert invitation["state"] == "pending"
    assert not Membership.objects.filter(workspace=acme, user=dora).exists()
    # She sees nothing of acme yet.
    assert session(dora, acme).get(reverse("artifact-list")).status_code == 404

    mine = session(dora).get(reverse("invitation-list")).json()["results"]
    assert [(i["workspace"], i["role"], i["invited_by"]) for i in mine] == [("acme", "auditor", "ada")]
    accepted = session(dora).post(reverse("invitation-accept", kwargs={"invitation_id": invitation["id"]}))
    assert accepted.status_code == 200, accepted.content
    assert Membership.objects.get(workspace=acme, user=dora).role == "auditor"
    event = AuditEvent.objects.filter(workspace=acme).latest("seq")
    assert (event.action, event.actor, event.target) == ("membership.create", "user:dora", "user:dora")
    again = session(dora).post(reverse("invitation-accept", kwargs={"invitation_id": invitation["id"]}))
    assert again.status_code == 404  # answered already


def test_only_the_invited_user_answers_and_not_with_a_token(acme, ada, alice):
    dora = make_user("dora")
    invitation = _invite(ada)
    url = reverse("invitation-accept", kwargs={"invitation_id": invitation["id"]})
    assert session(alice).post(url).status_code == 404  # someone else's invitation
    make_user("tess")
    other = _invite(ada, "tess")
    admin_token = bearer(make_token(acme, ada, ["workspace:read"]))
    assert (
        admin_token.post(reverse("invitation-accept", kwargs={"invitation_id": other["id"]})).status_code
        == 404
    )
    assert Invitation.objects.get(pk=invitation["id"]).state == "pending"
    assert not Membership.objects.filter(user=dora).exists()


def test_declined_and_revoked_invitations_make_no_member(acme, ada):
    dora, tess = make_user("dora"), make_user("tess")
    declined = _invite(ada, "dora")
    response = session(dora).post(reverse("invitation-decline", kwargs={"invitation_id": declined["id"]}))
    assert response.json()["state"] == "declined"
    revoked = _invite(ada, "tess")
    pending = session(ada, acme).get(reverse("member-invitation-list")).json()["results"]
    assert [i["username"] for i in pending] == ["tess"]
    gone = session(ada, acme).delete(
        reverse("member-invitation-detail", kwargs={"invitation_id": revoked["id"]})
    )
    assert gone.json()["state"] == "revoked"
    assert (
        session(tess).post(reverse("invitation-accept", kwargs={"invitation_id": revoked["id"]})).status_code
        == 404
    )
    assert not Membership.objects.filter(user__in=[dora, tess]).exists()
    actions = list(AuditEvent.objects.filter(workspace=acme).values_list("action", flat=True))
    assert actions.count("invitation.create") == 2
    assert {"invitation.decline", "invitation.revoke"} <= set(actions)


def test_inviting_a_member_is_a_conflict_and_inviting_again_changes_the_role(acme, ada, alice):
    client = session(ada)
    member = client.post(reverse("member-list"), {"username": "alice", "role": "auditor"}, format="json")
    assert member.status_code == 409
    make_user("dora")
    first = _invite(ada, role="auditor")
    second = _invite(ada, role="compliance_reviewer")
    assert first["id"] == second["id"]
    assert Invitation.objects.get(pk=first["id"]).role == "compliance_reviewer"
    assert (
        session(alice)
        .post(reverse("member-list"), {"username": "x", "role": "admin"}, format="json")
        .status_code
        == 403
    )


def test_the_dashboard_home_page_offers_accept_and_decline(acme, ada):
    make_user("dora")
    invitation = _invite(ada)
    browser = Client()
    assert browser.login(username="dora", password=PASSWORD)
    home = browser.get(reverse("home")).content.decode()
    assert "Acme" in home.split('id="invitations"')[1]
    accept = reverse("dashboard-invitation-accept", kwargs={"invitation_id": invitation["id"]})
    strict = Client(enforce_csrf_checks=True)
    assert strict.login(username="dora", password=PASSWORD)
    assert strict.post(accept).status_code == 403  # no CSRF token
    token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', strict.get(reverse("home")).content.decode()
    )
    joined = strict.post(accept, {"csrfmiddlewaretoken": token.group(1)}, follow=True).content.decode()
    assert "You joined Acme." in joined
    assert Membership.objects.filter(workspace=acme, user__username="dora").exists()


def test_operators_add_a_service_account_at_once(acme):
    from django.contrib.auth import get_user_model
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no user 'ci-bot'"):
        call_command("member_add", "--workspace", "acme", "--user", "ci-bot", "--role", "ci")
    call_command("member_add", "--workspace", "acme", "--user", "ci-bot", "--role", "ci", "--create")
    bot = get_user_model().objects.get(username="ci-bot")
    assert not bot.has_usable_password()
    assert Membership.objects.get(workspace=acme, user=bot).role == "ci"
    assert AuditEvent.objects.filter(
        workspace=acme, action="membership.create", actor="system:mlgov"
    ).exists()
    with pytest.raises(CommandError, match="already a member"):
        call_command("member_add", "--workspace", "acme", "--user", "ci-bot", "--role", "ci")
