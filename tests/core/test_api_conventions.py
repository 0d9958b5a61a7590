import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from core.models import ApiToken, Workspace
from tests.conftest import session
from tests.factories import PASSWORD, make_token, make_user

# Each state-changing call, made by ada (acme's admin) through the API, and what it changes.
MUTATIONS = {
    "workspace-create": ("post", "workspace-list", {}, {"slug": "newco", "name": "NewCo"}),
    "workspace-update": ("patch", "workspace-detail", {}, {"name": "Acme Corp"}),
    "member-add": ("post", "member-list", {}, {"username": "dave", "role": "auditor"}),
    "member-role": ("patch", "member-detail", {"username": "alice"}, {"role": "auditor"}),
    "member-remove": ("delete", "member-detail", {"username": "alice"}, None),
    "token-create": ("post", "token-list", {}, {"name": "ci", "scopes": ["gate:check"]}),
    "token-revoke": ("delete", "token-detail", "token", None),
    "artifact-create": ("post", "artifact-list", {}, "file"),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_every_state_changing_call_writes_exactly_one_event(case, acme, ada, alice):
    make_user("dave")
    method, name, kwargs, body = MUTATIONS[case]
    if kwargs == "token":
        kwargs = {"token_id": ApiToken.objects.get(pk=_token_id(acme, ada)).pk}
    client = session(ada, acme)
    heads_before = {w.slug: w.audit_head_seq for w in Workspace.objects.all()}
    if body == "file":
        upload = SimpleUploadedFile("a.csv", b"a,b\n1,2\n", content_type="text/csv")
        response = client.post(reverse(name), {"file": upload}, format="multipart")
    else:
        response = getattr(client, method)(reverse(name, kwargs=kwargs), body, format="json")
    assert response.status_code < 300, response.content
    heads_after = {w.slug: w.audit_head_seq for w in Workspace.objects.all()}
    written = sum(heads_after[s] - heads_before.get(s, 0) for s in heads_after)
    # Creating a workspace also records its first admin's membership in the new chain.
    assert written == (2 if case == "workspace-create" else 1)


def _token_id(workspace, user):
    make_token(workspace, user, ["audit:read"])
    return ApiToken.objects.filter(workspace=workspace, user=user).latest("created_at").pk


def test_validation_errors_name_the_field(acme, ada):
    response = session(ada).post(reverse("member-list"), {"username": "", "role": "wizard"}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Validation failed"
    assert body["status"] == 400
    assert {e["field"] for e in body["errors"]} == {"username", "role"}
    assert body["instance"] == "/api/v1/members"


def test_unknown_api_path_answers_problem_json(db):
    response = Client().get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Not found"


def test_last_admin_cannot_be_removed_or_demoted(acme, ada):
    client = session(ada)
    response = client.delete(reverse("member-detail", kwargs={"username": "ada"}))
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {"field": "role", "message": "a workspace must keep at least one admin"}
    ]
    assert (
        client.patch(
            reverse("member-detail", kwargs={"username": "ada"}), {"role": "auditor"}, format="json"
        ).status_code
        == 409
    )
    assert acme.memberships.get(user=ada).role == "admin"


def test_inviting_says_nothing_about_who_has_an_account(acme, ada, carol):
    """An unknown username and a known one get the same answer: an invitation, pending."""
    client = session(ada)
    ghost = client.post(reverse("member-list"), {"username": "ghost", "role": "auditor"}, format="json")
    known = client.post(reverse("member-list"), {"username": "dora", "role": "auditor"}, format="json")
    make_user("dora")
    assert ghost.status_code == known.status_code == 202
    differing = {k for k in ghost.json() if ghost.json()[k] != known.json()[k]}
    assert differing <= {"id", "username", "created_at", "link", "link_expires_at"}  # each its own link


def test_only_admins_manage_members(acme, alice):
    response = session(alice).post(
        reverse("member-list"), {"username": "ada", "role": "auditor"}, format="json"
    )
    assert response.status_code == 403


def test_tokens_cannot_create_workspaces(acme, ada):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(acme, ada, ['workspace:admin'])}")
    assert client.post(reverse("workspace-list"), {"slug": "x"}, format="json").status_code == 403


def test_duplicate_workspace_slug_is_a_conflict(acme, ada):
    response = session(ada).post(reverse("workspace-list"), {"slug": "acme"}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "slug"


def test_session_writes_require_csrf(acme, ada):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(ada)
    response = client.patch(reverse("workspace-detail"), {"name": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    client.get(reverse("login"))
    token = client.cookies["csrftoken"].value
    response = client.patch(
        reverse("workspace-detail"), {"name": "Acme"}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200


def test_openapi_schema_and_docs_are_served_without_other_hosts(db):
    client = Client()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/artifacts" in document["paths"]
    assert "bearerToken" in document["components"]["securitySchemes"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    external = re.findall(r"""(?:src|href)=["'](https?:)?//""", docs.content.decode())
    assert external == []


def test_health_is_public(db):
    assert Client().get("/api/v1/health").json() == {"status": "ok"}


def test_dashboard_login_and_home(acme, alice):
    client = Client(enforce_csrf_checks=True)
    assert client.get("/").status_code == 302
    page = client.get(reverse("login"))
    assert b"csrfmiddlewaretoken" in page.content
    token = client.cookies["csrftoken"].value
    refused = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 403  # no CSRF token
    response = client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert b"Acme" in home.content
    assert b"Data scientist" in home.content
