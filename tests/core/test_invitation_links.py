"""An invitation's one-time link: a person without an account joins through it (by e-mail or by
username); the link expires, works once, and every refusal of a known link is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.invitation_links import link_digest
from core.models import AuditEvent, Invitation, Membership
from tests.conftest import session
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-passphrase-of-her-own"


def _invite(ada, **addressed):
    response = session(ada).post(
        reverse("member-list"), {"role": "compliance_reviewer", **addressed}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def _path(link: str) -> str:
    return link[link.index("/invitations/join/") :]


def _sign_up(link: str, username: str = "dora", password: str = NEW_PASSWORD, client: Client | None = None):
    client = client or Client()
    return client, client.post(
        _path(link), {"username": username, "password": password, "password_again": password}
    )


def _refusals(workspace) -> list[dict]:
    return [
        e.payload for e in AuditEvent.objects.filter(workspace=workspace, action="invitation.link_refused")
    ]


def test_an_invitation_by_email_is_mailed_and_makes_an_account_and_a_member(acme, ada, mailoutbox):
    invitation = _invite(ada, email="Dora@Example.ORG")
    assert invitation["email"] == "Dora@example.org"
    assert invitation["username"] == ""
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["Dora@example.org"]
    assert invitation["link"] in mailoutbox[0].body
    # Only the secret's digest is kept.
    secret = invitation["link"].rstrip("/").rsplit("/", 1)[1]
    stored = Invitation.objects.get(pk=invitation["id"])
    assert stored.link_digest == link_digest(secret)
    assert secret not in str(stored.__dict__)

    client = Client()
    page = client.get(_path(invitation["link"]))
    assert page.status_code == 200
    assert b"Create your account" in page.content
    assert page["Referrer-Policy"] == "same-origin"
    assert "no-store" in page["Cache-Control"]
    client, answer = _sign_up(invitation["link"], client=client)
    assert answer.status_code == 302
    assert answer["Location"] == reverse("dashboard-inventory", kwargs={"slug": "acme"})
    dora = get_user_model().objects.get(username="dora")
    assert dora.email == "Dora@example.org"
    assert dora.check_password(NEW_PASSWORD)
    assert Membership.objects.get(workspace=acme, user=dora).role == "compliance_reviewer"
    assert client.get(answer["Location"]).status_code == 200  # signed in, in the workspace
    actions = list(AuditEvent.objects.filter(workspace=acme).order_by("seq").values_list("action", "actor"))
    assert actions[-2:] == [("invitation.sign_up", "user:dora"), ("membership.create", "user:dora")]
    stored.refresh_from_db()
    assert (stored.state, stored.username) == ("accepted", "dora")
    assert stored.link_used_at is not None


def test_a_used_link_is_refused_and_audited(acme, ada):
    link = _invite(ada, email="dora@example.org")["link"]
    _sign_up(link)
    client, again = _sign_up(link, username="mallory")
    assert again.status_code == 410
    assert b"has been used already" in again.content
    for _ in range(5):  # reloading it: refused each time, audited once per client and reason
        assert client.get(_path(link)).status_code == 410
    assert not get_user_model().objects.filter(username="mallory").exists()
    assert [r["reason"] for r in _refusals(acme)] == ["used"]
    assert Client(REMOTE_ADDR="10.0.0.9").get(_path(link)).status_code == 410
    assert [(r["reason"], r["client"]) for r in _refusals(acme)] == [
        ("used", "127.0.0.1"),
        ("used", "10.0.0.9"),
    ]


def test_an_expired_link_is_refused_and_audited(acme, ada):
    invitation = _invite(ada, email="dora@example.org")
    Invitation.objects.filter(pk=invitation["id"]).update(
        link_expires_at=timezone.now() - timedelta(seconds=1)
    )
    _, answer = _sign_up(invitation["link"])
    assert answer.status_code == 410
    assert b"has expired" in answer.content
    assert not get_user_model().objects.filter(username="dora").exists()
    assert Invitation.objects.get(pk=invitation["id"]).state == "pending"
    assert [(r["reason"], r["invitation"]) for r in _refusals(acme)] == [("expired", invitation["id"])]


def test_a_withdrawn_invitation_and_an_unknown_or_replaced_link_are_refused(acme, ada):
    first = _invite(ada, email="dora@example.org")
    second = _invite(ada, email="dora@example.org")  # inviting again issues a new link
    assert second["id"] == first["id"]
    assert second["link"] != first["link"]
    assert Client().get(_path(first["link"])).status_code == 404  # the old link is gone
    assert Client().get(_path(second["link"])).status_code == 200
    session(ada).delete(reverse("member-invitation-detail", kwargs={"invitation_id": second["id"]}))
    refused = Client().get(_path(second["link"]))
    assert refused.status_code == 410
    assert b"withdrawn" in refused.content
    assert Client().get("/invitations/join/not-a-secret/").status_code == 404
    assert [r["reason"] for r in _refusals(acme)] == ["withdrawn"]


def test_a_weak_password_is_refused_by_name_and_the_link_still_works(acme, ada):
    link = _invite(ada, email="dora@example.org")["link"]
    _, weak = _sign_up(link, password="password")
    assert weak.status_code == 400
    assert b"This password is too common" in weak.content
    mismatch = Client().post(
        _path(link), {"username": "dora", "password": NEW_PASSWORD, "password_again": "x"}
    )
    assert mismatch.status_code == 400
    assert b"The two passwords differ" in mismatch.content
    assert not get_user_model().objects.filter(username="dora").exists()
    _, taken = _sign_up(link, username="ada")
    assert taken.status_code == 400
    assert b"sign in to accept" in taken.content
    _, good = _sign_up(link)
    assert good.status_code == 302


def test_a_username_invitation_fixes_the_username_and_an_account_holder_signs_in_to_accept(acme, ada):
    link = _invite(ada, username="erin")["link"]
    _, answer = _sign_up(link, username="someone-else")
    assert answer.status_code == 302
    assert Membership.objects.filter(workspace=acme, user__username="erin").exists()
    assert not get_user_model().objects.filter(username="someone-else").exists()

    make_user("frank")
    other = make_user("gina")
    link = _invite(ada, username="frank")["link"]
    _, exists = _sign_up(link, username="frank")
    assert exists.status_code == 400
    assert b"sign in to accept" in exists.content
    stranger = Client()
    stranger.force_login(other)
    refused = stranger.post(_path(link))
    assert refused.status_code == 400
    assert b"addressed to someone else" in refused.content
    frank = Client()
    assert frank.login(username="frank", password=PASSWORD)
    assert frank.post(_path(link)).status_code == 302
    assert Membership.objects.get(workspace=acme, user__username="frank").role == "compliance_reviewer"


def test_the_sign_up_form_needs_its_csrf_token(acme, ada):
    link = _invite(ada, email="dora@example.org")["link"]
    answer = Client(enforce_csrf_checks=True).post(
        _path(link), {"username": "dora", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    )
    assert answer.status_code == 403
    assert not get_user_model().objects.filter(username="dora").exists()


def test_an_invitation_names_exactly_one_addressee(acme, ada):
    for body in ({}, {"username": "dora", "email": "dora@example.org"}, {"email": "not-an-address"}):
        answer = session(ada).post(reverse("member-list"), {"role": "auditor", **body}, format="json")
        assert answer.status_code == 400, body
        assert {e["field"] for e in answer.json()["errors"]} & {"username", "email"}, answer.json()


def test_an_email_invitation_is_listed_for_the_account_with_that_address(acme, ada):
    hana = make_user("hana", email="hana@example.org")
    invitation = _invite(ada, email="HANA@example.org")
    mine = session(hana).get(reverse("invitation-list")).json()["results"]
    assert [i["id"] for i in mine] == [invitation["id"]]
    accepted = session(hana).post(reverse("invitation-accept", kwargs={"invitation_id": invitation["id"]}))
    assert accepted.status_code == 200
    assert Client().get(_path(invitation["link"])).status_code == 410  # the link is used up with it
