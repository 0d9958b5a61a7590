from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from core.models import ApiToken
from core.roles import Role
from tests.conftest import bearer, session
from tests.factories import make_token


def test_token_is_shown_once_and_only_its_hash_is_stored(acme, alice):
    response = session(alice).post(
        reverse("token-list"), {"name": "laptop", "scopes": ["lineage:write"]}, format="json"
    )
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    assert raw.startswith("mlg_")
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert token.token_hash != raw
    assert len(token.token_hash) == 64
    # Not in any column of any table: dump every text value in the database and look.
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608  (table names from introspection)
            for row in cursor.fetchall():
                assert not any(isinstance(v, str) and raw in v for v in row), f"raw token found in {table}"
                assert not any(isinstance(v, str) and raw[4:] in v for v in row), f"token secret in {table}"
    # Listing it again never shows the secret.
    listed = session(alice).get(reverse("token-detail", kwargs={"token_id": token.id})).json()
    assert "token" not in listed
    assert listed["prefix"] == raw[:10]


def test_valid_token_authenticates_and_records_last_use(acme, alice):
    raw = make_token(acme, alice, ["artifact:read"])
    response = bearer(raw).get(reverse("artifact-list"))
    assert response.status_code == 200
    assert ApiToken.objects.get(prefix=raw[:10]).last_used_at is not None


def test_it_rejects_expired_token(acme, alice):
    raw = make_token(acme, alice, ["artifact:read"])
    ApiToken.objects.filter(prefix=raw[:10]).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(raw).get(reverse("artifact-list"))
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"


def test_it_rejects_revoked_token(acme, alice):
    raw = make_token(acme, alice, ["artifact:read"])
    token = ApiToken.objects.get(prefix=raw[:10])
    assert session(alice).delete(reverse("token-detail", kwargs={"token_id": token.id})).status_code == 204
    response = bearer(raw).get(reverse("artifact-list"))
    assert response.status_code == 401
    assert response.json()["detail"] == "token revoked"


def test_it_rejects_unknown_and_malformed_tokens(acme, alice):
    raw = make_token(acme, alice, ["artifact:read"])
    assert (
        bearer(raw[:-1] + ("A" if raw[-1] != "A" else "B")).get(reverse("artifact-list")).status_code == 401
    )
    assert bearer("not-a-token").get(reverse("artifact-list")).status_code == 401


def test_it_rejects_wrong_scope_token(acme, ci_user):
    raw = make_token(acme, ci_user, ["gate:check"])
    response = bearer(raw).get(reverse("artifact-list"))
    assert response.status_code == 403
    assert "artifact:read" in response.json()["detail"]


def test_token_scopes_are_capped_by_the_owner_role(acme, bob):
    response = session(bob).post(
        reverse("token-list"), {"name": "x", "scopes": ["lineage:write"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "scopes[0]", "message": "the role compliance_reviewer does not allow 'lineage:write'"}
    ]


def test_demoting_a_member_narrows_their_tokens_at_once(acme, alice):
    raw = make_token(acme, alice, ["artifact:read", "artifact:write"])
    acme.memberships.filter(user=alice).update(role=Role.AUDITOR)
    client = bearer(raw)
    assert client.get(reverse("artifact-list")).status_code == 200  # auditors may read
    response = client.post(
        reverse("artifact-list") + "?filename=a.csv", b"a,b\n1,2\n", content_type="text/csv"
    )
    assert response.status_code == 403


def test_removed_member_token_stops_working(acme, alice, ada):
    raw = make_token(acme, alice, ["artifact:read"])
    assert session(ada).delete(reverse("member-detail", kwargs={"username": "alice"})).status_code == 204
    assert bearer(raw).get(reverse("artifact-list")).status_code == 401


def test_unknown_scope_and_too_long_expiry_are_named(acme, alice, settings):
    response = session(alice).post(
        reverse("token-list"),
        {
            "name": "x",
            "scopes": ["artifact:read", "root"],
            "expires_in_days": settings.API_TOKEN_MAX_DAYS + 1,
        },
        format="json",
    )
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"expires_in_days"}
    response = session(alice).post(
        reverse("token-list"), {"name": "x", "scopes": ["artifact:read", "root"]}, format="json"
    )
    assert response.json()["errors"] == [{"field": "scopes[1]", "message": "unknown scope 'root'"}]


def test_only_admin_creates_tokens_for_others(acme, ada, alice, ci_user):
    body = {"name": "pipeline", "scopes": ["gate:check"], "user": "ci"}
    assert session(alice).post(reverse("token-list"), body, format="json").status_code == 403
    response = session(ada).post(reverse("token-list"), body, format="json")
    assert response.status_code == 201
    assert response.json()["owner"] == "ci"
    assert ApiToken.objects.get(pk=response.json()["id"]).user == ci_user


def test_member_sees_only_own_tokens_admin_sees_all(acme, ada, alice, bob):
    make_token(acme, alice, ["artifact:read"])
    make_token(acme, bob, ["audit:read"])
    mine = session(alice).get(reverse("token-list")).json()["results"]
    assert [t["owner"] for t in mine] == ["alice"]
    bobs = ApiToken.objects.get(user=bob)
    assert session(alice).get(reverse("token-detail", kwargs={"token_id": bobs.id})).status_code == 404
    assert {t["owner"] for t in session(ada).get(reverse("token-list")).json()["results"]} == {"alice", "bob"}


def test_narrow_token_cannot_mint_tokens(acme, alice):
    raw = make_token(acme, alice, ["artifact:read"])
    response = bearer(raw).post(
        reverse("token-list"), {"name": "x", "scopes": ["artifact:write"]}, format="json"
    )
    assert response.status_code == 403


def test_revoking_twice_writes_one_event(acme, alice):
    raw = make_token(acme, alice, ["artifact:read"])
    token = ApiToken.objects.get(prefix=raw[:10])
    acme.refresh_from_db()
    before = acme.audit_head_seq
    url = reverse("token-detail", kwargs={"token_id": token.id})
    assert session(alice).delete(url).status_code == 204
    assert session(alice).delete(url).status_code == 204
    acme.refresh_from_db()
    assert acme.audit_head_seq == before + 1


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Token abc"])
def test_malformed_authorization_headers(acme, header):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get(reverse("artifact-list")).status_code == 401


def test_a_token_never_mints_a_wider_token(acme, alice):
    narrow = bearer(make_token(acme, alice, ["token:manage", "artifact:read"]))
    response = narrow.post(
        reverse("token-list"), {"name": "wide", "scopes": ["artifact:read", "lineage:write"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "scopes[1]", "message": "the token making this request does not hold 'lineage:write'"}
    ]
    assert ApiToken.objects.filter(user=alice).count() == 1
    same = narrow.post(reverse("token-list"), {"name": "same", "scopes": ["artifact:read"]}, format="json")
    assert same.status_code == 201, same.content
    # Signed in, a member's tokens may hold anything their role allows.
    wide = session(alice).post(
        reverse("token-list"), {"name": "w", "scopes": ["lineage:write"]}, format="json"
    )
    assert wide.status_code == 201


def test_an_admin_makes_tokens_for_ci_members_only(acme, ada, alice, bob, ci_user):
    """No one acts as another person: tokens for people are made by those people."""
    as_bob = {"name": "as-bob", "scopes": ["model:read"], "user": bob.get_username()}
    refused = session(ada).post(reverse("token-list"), as_bob, format="json")
    assert refused.status_code == 403
    assert "they create their own tokens" in refused.json()["detail"]
    assert not ApiToken.objects.filter(user=bob).exists()
    # An admin's token without workspace:admin cannot make tokens for anyone else, even the ci member.
    pipeline = {"name": "pipeline", "scopes": ["gate:check"], "user": "ci"}
    admin_token = bearer(make_token(acme, ada, ["token:manage", "gate:check"]))
    assert admin_token.post(reverse("token-list"), pipeline, format="json").status_code == 403
    full = bearer(make_token(acme, ada, ["token:manage", "workspace:admin", "gate:check"]))
    made = full.post(reverse("token-list"), pipeline, format="json")
    assert made.status_code == 201, made.content
    assert ApiToken.objects.get(pk=made.json()["id"]).user == ci_user


def test_an_unknown_api_address_is_a_problem_document_even_with_debug(acme, alice, settings):
    settings.DEBUG = True  # the development server's setting, whose 404 page is HTML
    client = bearer(make_token(acme, alice, ["explain:run"]))
    for path in ("/api/v1/jobs/not-a-uuid", "/api/v1/no-such-thing"):
        response = client.get(path)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["instance"] == path


def test_every_roles_scopes_and_default_token_scopes_are_listed(acme, alice):
    response = session(alice).get(reverse("role-list"))
    assert response.status_code == 200, response.content
    roles = {r["role"]: r for r in response.json()["roles"]}
    assert set(roles) == {role.value for role in Role}
    assert roles["ci"]["default_token_scopes"] == ["gate:check"]
    assert roles["auditor"]["scopes"]["report:export"] == "export lineage and audit reports"
    assert "approval:decide" in roles["compliance_reviewer"]["scopes"]
    assert "approval:decide" not in roles["compliance_reviewer"]["default_token_scopes"]
    for role in roles.values():
        assert set(role["default_token_scopes"]) <= set(role["scopes"]), role["role"]
    assert bearer("mlg_not-a-token").get(reverse("role-list")).status_code == 401


def test_a_token_asked_for_without_scopes_gets_its_roles_defaults(acme, ada, alice, ci_user):
    made = session(alice).post(reverse("token-list"), {"name": "notebook"}, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["scopes"] == sorted(
        {"artifact:read", "artifact:write", "lineage:read", "lineage:write", "model:read", "model:write"}
        | {"datasheet:write", "explain:run", "privacy:release", "gate:check", "promotion:request"}
    )
    pipeline = session(ada).post(
        reverse("token-list"), {"name": "ci", "user": ci_user.username}, format="json"
    )
    assert pipeline.status_code == 201, pipeline.content
    assert pipeline.json()["scopes"] == ["gate:check"]
    # A token making a token: the defaults it does not hold are left out, and none at all is a 400.
    narrow = bearer(make_token(acme, alice, ["token:manage", "model:read"]))
    assert narrow.post(reverse("token-list"), {"name": "child"}, format="json").json()["scopes"] == [
        "model:read"
    ]
    only_manage = bearer(make_token(acme, alice, ["token:manage"]))
    refused = only_manage.post(reverse("token-list"), {"name": "child"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "scopes"
