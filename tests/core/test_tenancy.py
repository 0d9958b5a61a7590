"""Walks every route of the API URLconf: anonymous callers get 401, and a member of another
workspace (mallory, admin of `umbrella`, holding every scope) can neither read nor change anything
of `acme`: each such request answers 404, and list endpoints never show acme's objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from core.actors import Actor
from core.artifacts import Spool, artifact_store
from core.audit import audit_append
from core.models import ApiToken, Membership, Workspace
from core.roles import SCOPES, Role
from core.workspaces import invitation_create
from explain.models import Job, JobKind
from governance.models import Report
from lineage.models import Node
from tests.conftest import bearer, session
from tests.factories import make_token
from tests.lineage.helpers import record

PUBLIC = {"health", "gate-public-key"}


def api_route_names() -> set[str]:
    """Every named route under /api/v1/ in the URLconf."""
    names: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/") and pattern.name:
                names.add(pattern.name)

    walk(get_resolver().url_patterns, "")
    return names


@dataclass
class Route:
    """How to aim one route at an object of acme: `kwargs(world)` and the methods to try."""

    methods: tuple[str, ...]
    kwargs: Callable[[dict], dict] = field(default=lambda world: {})
    # For a list or singleton route, where an object of acme could show up in what mallory gets.
    leaks: Callable[[dict, object], bool] | None = None
    body: dict = field(default_factory=dict)
    query: Callable[[dict], str] = field(default=lambda world: "")


def _ids(response) -> str:
    return str(response.json())


ROUTES: dict[str, Route] = {
    "health": Route(("GET",)),
    "me": Route(("GET",), leaks=lambda w, r: "acme" in _ids(r)),
    "role-list": Route(("GET",), leaks=lambda w, r: "acme" in _ids(r)),
    "workspace-list": Route(("GET",), leaks=lambda w, r: "acme" in _ids(r)),
    "workspace-detail": Route(("GET", "PATCH"), leaks=lambda w, r: "acme" in _ids(r), body={"name": "x"}),
    "member-list": Route(
        ("GET", "POST"), leaks=lambda w, r: "alice" in _ids(r), body={"username": "mallory2", "role": "admin"}
    ),
    "member-detail": Route(
        ("GET", "PATCH", "DELETE"), kwargs=lambda w: {"username": "alice"}, body={"role": "admin"}
    ),
    "member-invitation-list": Route(("GET",), leaks=lambda w, r: str(w["invitation"].id) in _ids(r)),
    "member-invitation-detail": Route(("DELETE",), kwargs=lambda w: {"invitation_id": w["invitation"].id}),
    "invitation-list": Route(("GET",), leaks=lambda w, r: str(w["invitation"].id) in _ids(r)),
    "invitation-accept": Route(("POST",), kwargs=lambda w: {"invitation_id": w["invitation"].id}),
    "invitation-decline": Route(("POST",), kwargs=lambda w: {"invitation_id": w["invitation"].id}),
    "token-list": Route(
        ("GET", "POST"),
        leaks=lambda w, r: str(w["token"].id) in _ids(r),
        body={"name": "t", "scopes": ["audit:read"]},
    ),
    "token-detail": Route(("GET", "DELETE"), kwargs=lambda w: {"token_id": w["token"].id}),
    "artifact-list": Route(("GET", "POST"), leaks=lambda w, r: str(w["artifact"].id) in _ids(r)),
    "artifact-detail": Route(("GET",), kwargs=lambda w: {"artifact_id": w["artifact"].id}),
    "artifact-content": Route(("GET",), kwargs=lambda w: {"artifact_id": w["artifact"].id}),
    "audit-event-list": Route(("GET",), leaks=lambda w, r: w["acme"].audit_head_hash in _ids(r)),
    "audit-event-detail": Route(("GET",), kwargs=lambda w: {"seq": w["acme"].audit_head_seq}),
    "audit-verify": Route(("GET",), leaks=lambda w, r: "acme" in _ids(r)),
    "audit-chain": Route(("GET",), leaks=lambda w, r: w["acme"].audit_head_hash in _ids(r)),
    "audit-checkpoint-list": Route(("GET", "POST"), leaks=lambda w, r: w["acme"].audit_head_hash in _ids(r)),
    "audit-export": Route(
        ("GET",),
        leaks=lambda w, r: w["acme"].audit_head_hash in _ids(r) or str(w["acme"].pk) in _ids(r),
        query=lambda w: "?since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z",
    ),
    # Writes without an object to aim at: mallory's land in her own workspace, never in acme.
    "lineage-events": Route(
        ("POST",),
        leaks=lambda w, r: False,
        body={"events": [{"type": "node", "kind": "Dataset", "key": "m"}]},
    ),
    "openlineage": Route(
        ("POST",),
        leaks=lambda w, r: False,
        body={"eventType": "START", "run": {"runId": "r"}, "job": {"namespace": "n", "name": "j"}},
    ),
    "lineage-node-list": Route(("GET",), leaks=lambda w, r: "acme-secret-dataset" in _ids(r)),
    "lineage-node-detail": Route(("GET",), kwargs=lambda w: {"node_id": w["node"].pk}),
    "lineage-upstream": Route(("GET",), kwargs=lambda w: {"node_id": w["node"].pk}),
    "lineage-downstream": Route(("GET",), kwargs=lambda w: {"node_id": w["node"].pk}),
    "lineage-impact": Route(("GET",), kwargs=lambda w: {"node_id": w["node"].pk}),
    "lineage-provenance": Route(("GET",), kwargs=lambda w: {"node_id": w["node"].pk}),
    "lineage-export": Route(("GET",), kwargs=lambda w: {"node_id": w["node"].pk, "fmt": "prov"}),
    "lineage-path": Route(("GET",), query=lambda w: f"?source={w['node'].pk}&target={w['node'].pk}"),
    "model-explanations": Route(
        ("GET", "POST"),
        kwargs=lambda w: {"name": "acme-model", "version": "1"},
        body={"dataset_version": "acme-data@1"},
    ),
    "model-fairness-assessments": Route(
        ("GET", "POST"),
        kwargs=lambda w: {"name": "acme-model", "version": "1"},
        body={"dataset_version": "acme-data@1", "target": "label", "sensitive_features": ["sex"]},
    ),
    "privacy-budget": Route(
        ("GET", "PUT"), kwargs=lambda w: {"name": "acme-data", "version": "1"}, body={"epsilon": 1.0}
    ),
    "dp-releases": Route(
        ("GET", "POST"),
        kwargs=lambda w: {"name": "acme-data", "version": "1"},
        body={"statistic": "count", "epsilon": 0.1},
    ),
    "dp-summary": Route(
        ("GET", "POST"), kwargs=lambda w: {"name": "acme-data", "version": "1"}, body={"epsilon": 1.0}
    ),
    "model-list": Route(("GET",), leaks=lambda w, r: "acme-model" in _ids(r)),
    "model-detail": Route(
        ("GET", "PATCH"), kwargs=lambda w: {"name": "acme-model"}, body={"risk_tier": "high"}
    ),
    # Registering creates the model in the caller's own workspace: mallory's lands in umbrella.
    "model-versions": Route(
        ("GET", "POST"),
        kwargs=lambda w: {"name": "acme-model"},
        leaks=lambda w, r: "acme" in _ids(r),
        body={"version": "2", "artifact": "00000000-0000-0000-0000-000000000000"},
    ),
    "model-version": Route(("GET",), kwargs=lambda w: {"name": "acme-model", "version": "1"}),
    "model-alias": Route(
        ("PUT",), kwargs=lambda w: {"name": "acme-model", "alias": "champion"}, body={"version": "1"}
    ),
    "model-card": Route(
        ("GET", "PUT"), kwargs=lambda w: {"name": "acme-model", "version": "1"}, body={"content": {}}
    ),
    "model-annex-iv": Route(
        ("GET", "PUT"), kwargs=lambda w: {"name": "acme-model", "version": "1"}, body={"content": {}}
    ),
    "model-technical-file": Route(("GET",), kwargs=lambda w: {"name": "acme-model", "version": "1"}),
    "model-technical-file-approvals": Route(
        ("POST",), kwargs=lambda w: {"name": "acme-model", "version": "1"}, body={"comment": "mine"}
    ),
    "model-gate": Route(
        ("POST",), kwargs=lambda w: {"name": "acme-model", "version": "1"}, body={"stage": "staging"}
    ),
    "model-promotion-requests": Route(
        ("GET", "POST"), kwargs=lambda w: {"name": "acme-model", "version": "1"}, body={"stage": "staging"}
    ),
    "dataset-datasheet": Route(
        ("GET", "PUT"), kwargs=lambda w: {"name": "acme-data", "version": "1"}, body={"content": {}}
    ),
    "policy-list": Route(
        ("GET", "POST"),
        leaks=lambda w, r: "acme-policy" in _ids(r),
        body={"document": {"name": "m", "stages": ["staging"], "rules": [{"type": "approvals", "count": 1}]}},
    ),
    "gate-decision": Route(("GET",), kwargs=lambda w: {"decision_id": w["decision"].pk}),
    "gate-public-key": Route(("GET",)),
    "promotion-request-list": Route(("GET",), leaks=lambda w, r: str(w["request"].pk) in _ids(r)),
    "promotion-approve": Route(
        ("POST",), kwargs=lambda w: {"request_id": w["request"].pk}, body={"comment": "x"}
    ),
    "promotion-reject": Route(
        ("POST",), kwargs=lambda w: {"request_id": w["request"].pk}, body={"comment": "x"}
    ),
    "model-reports": Route(("GET", "POST"), kwargs=lambda w: {"name": "acme-model", "version": "1"}),
    "report-detail": Route(("GET",), kwargs=lambda w: {"report_id": w["report"].pk}),
    "job-list": Route(("GET",), leaks=lambda w, r: str(w["job"].id) in _ids(r)),
    "job-detail": Route(("GET",), kwargs=lambda w: {"job_id": w["job"].id}),
    "job-cancel": Route(("POST",), kwargs=lambda w: {"job_id": w["job"].id}),
}


@pytest.fixture
def world(acme, alice, mallory):
    """acme with a token, an artifact and more audit events than umbrella has."""
    make_token(acme, alice, ["artifact:read"])
    spool = Spool()
    spool.write(b"a,b\n1,2\n")
    artifact, _ = artifact_store(
        workspace=acme, actor=Actor(user=alice), spool=spool.finish(), filename="x.csv"
    )
    for n in range(5):
        audit_append(workspace=acme, actor=Actor(user=alice), action="test.event", payload={"n": n})
    record(
        acme,
        alice,
        {"type": "node", "kind": "Dataset", "key": "acme-secret-dataset"},
        {"type": "node", "kind": "DatasetVersion", "key": "acme-data@1", "artifact": str(artifact.pk)},
        {"type": "node", "kind": "ModelVersion", "key": "acme-model@1"},
    )
    acme.refresh_from_db()
    node = Node.objects.get(workspace=acme, key="acme-secret-dataset")
    import skops.io as sio
    from sklearn.dummy import DummyClassifier

    from governance import services as governance

    spool = Spool()
    spool.write(sio.dumps(DummyClassifier().fit([[0]], [0])))
    weights, _ = artifact_store(
        workspace=acme, actor=Actor(user=alice), spool=spool.finish(), filename="m.skops"
    )
    version = governance.version_register(
        workspace=acme, actor=Actor(user=alice), name="acme-model", version="1", artifact=str(weights.pk)
    )
    governance.policy_upload(
        workspace=acme,
        actor=Actor(user=alice),
        document={"name": "acme-policy", "stages": ["staging"], "rules": [{"type": "approvals", "count": 1}]},
    )
    decision = governance.gate_check(
        workspace=acme, actor=Actor(user=alice), version=version, stage="staging"
    )
    request = governance.promotion_request(
        workspace=acme, actor=Actor(user=alice), version=version, stage="staging"
    )
    report = Report.objects.create(workspace=acme, model_version=version)
    acme.refresh_from_db()
    job = Job.objects.create(
        workspace=acme,
        kind=JobKind.EXPLANATION,
        model_node=Node.objects.get(workspace=acme, key="acme-model@1"),
        dataset_node=Node.objects.get(workspace=acme, key="acme-data@1"),
        model_artifact_id=Node.objects.get(workspace=acme, key="acme-model@1").artifact_id,
        dataset_artifact_id=Node.objects.get(workspace=acme, key="acme-data@1").artifact_id,
    )
    invitation, _ = invitation_create(
        workspace=acme, actor=Actor(user=alice), username="newbie", role="auditor"
    )
    acme.refresh_from_db()
    return {
        "acme": acme,
        "invitation": invitation,
        "token": ApiToken.objects.get(workspace=acme),
        "artifact": artifact,
        "node": node,
        "job": job,
        "decision": decision,
        "request": request,
        "report": report,
    }


def test_every_api_route_has_a_tenancy_case():
    assert api_route_names() == set(ROUTES), "add new API routes to ROUTES in this test"


CASES = [(name, method) for name, route in ROUTES.items() for method in route.methods]


def _call(client, method: str, url: str, body: dict):
    if method == "GET":
        return client.get(url)
    if method == "POST" and url.endswith("/artifacts"):
        upload = SimpleUploadedFile("m.csv", b"c,d\n3,4\n", content_type="text/csv")
        return client.post(url, {"file": upload}, format="multipart")
    return getattr(client, method.lower())(url, body, format="json")


@pytest.mark.parametrize(("name", "method"), CASES)
def test_anonymous_request_is_refused_with_401(name, method, world):
    url = reverse(name, kwargs=ROUTES[name].kwargs(world)) + ROUTES[name].query(world)
    response = _call(APIClient(), method, url, ROUTES[name].body)
    if name in PUBLIC:
        assert response.status_code == 200
    else:
        assert response.status_code == 401, response.content
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response["Content-Type"] == "application/problem+json"


USER_LEVEL = {"me", "role-list", "workspace-list", "invitation-list"}


@pytest.mark.parametrize(("name", "method"), [c for c in CASES if c[0] not in PUBLIC])
@pytest.mark.parametrize("credential", ["token", "session-header"])
def test_member_of_another_workspace_cannot_reach_acme(name, method, credential, world, mallory, umbrella):
    route = ROUTES[name]
    url = reverse(name, kwargs=route.kwargs(world)) + route.query(world)
    if credential == "token":
        # mallory is umbrella's admin and her token holds every scope there is.
        client = bearer(make_token(umbrella, mallory, sorted(SCOPES)))
    else:
        # A session that names acme explicitly: the workspace itself answers 404.
        client = session(mallory, world["acme"])
    before = world["acme"].audit_head_seq
    response = _call(client, method, url, route.body)

    aimed_at_acme_object = route.leaks is None  # detail routes, and the path between acme's nodes
    names_acme = credential == "session-header" and name not in USER_LEVEL
    if aimed_at_acme_object or names_acme:
        assert response.status_code == 404, response.content
    else:
        # A list or singleton answers with umbrella's own data, never acme's.
        assert response.status_code < 500, response.content
        if response.status_code < 300 and response.content:
            assert not route.leaks(world, response)
    world["acme"].refresh_from_db()
    assert world["acme"].audit_head_seq == before, "nothing of acme may change"


def test_member_of_acme_sees_its_own_objects(world, alice):
    """The same requests succeed for a member of acme: the 404s above are about tenancy."""
    client = bearer(make_token(world["acme"], alice, ["artifact:read"]))
    assert (
        client.get(reverse("artifact-detail", kwargs={"artifact_id": world["artifact"].id})).status_code
        == 200
    )
    ada_client = session(world["acme"].memberships.get(role=Role.ADMIN).user)
    assert ada_client.get(reverse("member-detail", kwargs={"username": "alice"})).status_code == 200


def test_token_cannot_switch_workspace_by_header(world, mallory, umbrella):
    raw = make_token(umbrella, mallory, ["workspace:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_X_WORKSPACE="acme")
    assert client.get(reverse("workspace-detail")).status_code == 404


def test_session_user_in_two_workspaces_must_choose_one(world, alice, umbrella):
    Membership.objects.create(workspace=umbrella, user=alice, role=Role.AUDITOR)
    response = session(alice).get(reverse("workspace-detail"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "workspace"
    assert session(alice, umbrella).get(reverse("workspace-detail")).json()["slug"] == "umbrella"
    assert Workspace.objects.count() == 2
