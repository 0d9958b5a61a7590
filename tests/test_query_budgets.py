"""Query budgets: every dashboard list page and every API list endpoint answers within a fixed number
of queries, in a workspace with several objects in every list, so that a query per row (an N+1)
breaks the budget. A budget counts everything the request does: authentication, the workspace
lookup, the page's count and its rows.

A new list endpoint fails `test_every_api_list_has_a_budget` until it is given one here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client, override_settings

from core.actors import Actor
from core.audit_checkpoints import audit_checkpoint_create
from core.models import Workspace
from core.roles import Role
from core.workspaces import invitation_create
from explain.models import JobKind
from governance.models import ModelVersion, PromotionRequest
from lineage.models import Node
from tests.conftest import session
from tests.core.test_api_schema import PAGE_KEYS, _json_schema
from tests.factories import (
    explanation_result,
    fairness_result,
    make_datasheet,
    make_dp_release,
    make_gate_decision,
    make_job,
    make_member,
    make_model_version,
    make_policy,
    make_privacy_budget,
    make_private_dataset_version,
    make_promotion_request,
    make_report,
    make_review,
    make_token,
    make_user,
    make_workspace,
)

# Objects in each list: enough that one query per row shows against a budget of a few queries.
SCALE = 4


@dataclass
class World:
    workspace: Workspace
    admin: Any
    request: PromotionRequest  # model0@1 to production, open, with several approvals
    node: Node  # model0@1's lineage node: several audit events name it


def world_build(n: int = SCALE) -> World:
    """Workspace `acme`, whose admin `ada` belongs to n other workspaces and is invited to n more;
    n reviewers; n datasets (with DP releases), models (of n versions each), policies, tokens,
    invitations and audit checkpoints; and on model0@1 n explanations, fairness assessments, reports,
    closed requests and the approvals on its open request."""
    ada = make_user("ada")
    acme = make_workspace("acme", admin=ada)
    alice = make_member(acme, Role.DATA_SCIENTIST, "alice")
    reviewers = [make_member(acme, Role.COMPLIANCE_REVIEWER, f"reviewer{i}") for i in range(n)]
    for i in range(n):
        make_workspace(f"ada-{i}", admin=ada)
        owner = make_user(f"owner{i}")
        elsewhere = make_workspace(f"elsewhere-{i}", admin=owner)
        invitation_create(workspace=elsewhere, actor=Actor(user=owner), username="ada", role=Role.AUDITOR)
        invitation_create(workspace=acme, actor=Actor(user=ada), username=f"invitee{i}", role=Role.AUDITOR)
        make_token(acme, ada, ["model:read"])
    # The production policy wants more approvals than there are reviewers: the request stays open.
    make_policy(
        acme,
        ada,
        "production-readiness",
        rules=[
            {"id": "reviewers", "type": "approvals", "count": n + 1, "role": "compliance_reviewer"},
            {"id": "lineage", "type": "lineage_contains", "kinds": ["DatasetVersion", "Run"]},
        ],
    )
    for i in range(1, n):
        make_policy(acme, ada, f"staging-{i}", stages=["staging"])
    datasets = [f"data{i}@v1" for i in range(n)]
    for key in datasets:
        node = make_private_dataset_version(acme, alice, key)
        make_privacy_budget(node, ada)
        for k in range(n):
            make_dp_release(node, alice, epsilon=0.1 * (k + 1))
        audit_checkpoint_create(workspace=acme)
    explained, assessed = explanation_result(), fairness_result()
    for m in range(n):
        for v in range(1, n + 1):
            version = make_model_version(acme, alice, f"model{m}", str(v), datasets=datasets)
            make_datasheet(acme, alice, name=f"model{m}", version=str(v))
            make_job(version, JobKind.EXPLANATION, result=explained, user=alice)
            make_job(version, JobKind.FAIRNESS, result=assessed, user=alice)
            make_gate_decision(version, reviewers[0])
            make_promotion_request(version, alice, "staging")
    first = ModelVersion.objects.get(registered_model__name="model0", version="1")
    for i in range(n):
        make_job(first, JobKind.EXPLANATION, result=explained, user=alice)
        make_job(first, JobKind.FAIRNESS, result=assessed, user=alice)
        make_report(first, alice)
        closed = make_promotion_request(first, alice, "archived")
        make_review(closed, reviewers[i], approve=False, comment="not yet")
    request = make_promotion_request(first, alice, "production")
    for reviewer in reviewers:
        make_review(request, reviewer, comment="read the evidence")
    return World(workspace=acme, admin=ada, request=request, node=first.node)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    """Built once for the module (the pages only read it), in a transaction rolled back at the end;
    each test's own transaction nests inside it."""
    root = str(tmp_path_factory.mktemp("artifacts"))
    storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}
    with (
        override_settings(ARTIFACT_ROOT=root, STORAGES={**settings.STORAGES, "default": storage}),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        yield world_build()
        transaction.set_rollback(True)


# --- the dashboard -----------------------------------------------------------------------------------

# page: (address, a marker that appears once per row, budget). The rows are checked to be there, so a
# page that lost its list cannot pass on a small count. Raise a budget only for a query that does not
# repeat per row; the failure lists the queries the page made.
DASHBOARD: dict[str, tuple[str, str, int]] = {
    "home": ("/", "/w/ada-", 4),
    "audit log": ("/w/acme/audit/", "<tr><td>", 11),
    "lineage search": ("/w/acme/lineage/?q=model", 'href="/w/acme/lineage/', 4),
    "lineage node": ("/w/acme/lineage/{node}/", "<li>#", 13),
    "jobs": ("/w/acme/jobs/", '<tr id="job-', 5),
    "model inventory": ("/w/acme/", '<span class="stage', 6),
    "review queue": ("/w/acme/reviews/", ">Review</a>", 5),
    # Constant in the number of reviews, assessments and budgets. (The gate's lineage check and the
    # provenance figure each walk the same upstream graph, and evidence jobs are read three times; the
    # reviews, with their reviewers, are one query, which also says whether the reader has reviewed.
    # Four more for what a reviewer reads beside the evidence: the rules as their policy revisions
    # wrote them, the version now in the stage, the training data's datasheets, and the lineage nodes
    # of the datasets the page links; three more when a version is in the stage, for its evidence, or,
    # when none is, one to find the version before, which the page compares with instead.)
    "promotion request": ("/w/acme/reviews/{request}/", "read the evidence", 31),
}


@pytest.mark.parametrize("page", DASHBOARD)
def test_dashboard_page_stays_within_its_query_budget(db, world, page, django_assert_max_num_queries):
    address, row, budget = DASHBOARD[page]
    client = Client()
    client.force_login(world.admin)
    url = address.format(node=world.node.pk, request=world.request.pk)
    with django_assert_max_num_queries(budget):
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count(row) >= SCALE, f"{page} shows fewer than {SCALE} rows"


# --- the API -----------------------------------------------------------------------------------------

# GET path (as /api/schema/ names it): budget. Raise one only for a query that does not repeat per row.
API: dict[str, int] = {
    "/api/v1/artifacts": 5,
    "/api/v1/audit/checkpoints": 5,
    "/api/v1/audit/events": 5,
    "/api/v1/datasets/{name}/versions/{version}/dp-releases": 6,
    "/api/v1/invitations": 4,
    "/api/v1/jobs": 5,
    "/api/v1/lineage/nodes": 5,
    "/api/v1/members": 5,
    "/api/v1/members/invitations": 5,
    "/api/v1/models": 8,
    "/api/v1/models/{name}/versions": 7,
    "/api/v1/models/{name}/versions/{version}/explanations": 6,
    "/api/v1/models/{name}/versions/{version}/fairness-assessments": 6,
    # The requests' reviews (with their reviewers) are one prefetch query for the whole page.
    "/api/v1/models/{name}/versions/{version}/promotion-requests": 7,
    "/api/v1/models/{name}/versions/{version}/reports": 6,
    "/api/v1/policies": 5,
    "/api/v1/promotion-requests": 6,
    "/api/v1/tokens": 5,
    "/api/v1/workspaces": 4,
}


def _address(path: str) -> str:
    """The path with the world's names: model0@1, data0@v1."""
    datasets = path.startswith("/api/v1/datasets/")
    values = {"name": "data0" if datasets else "model0", "version": "v1" if datasets else "1"}
    return re.sub(r"\{(\w+)\}", lambda match: values[match[1]], path)


def _lists(schema: dict[str, Any]) -> set[str]:
    """The GET operations documented as answering a page (tests/core/test_api_schema.py holds the
    documentation to the answers)."""
    return {
        path
        for path, item in schema["paths"].items()
        if "get" in item and set(_json_schema(schema, item["get"], "200").get("properties", {})) == PAGE_KEYS
    }


def test_every_api_list_has_a_budget(db):
    client = session(make_user("reader"))
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert _lists(response.json()) == set(API)


@pytest.mark.parametrize("path", API)
def test_api_list_stays_within_its_query_budget(db, world, path, django_assert_max_num_queries):
    client = session(world.admin, world.workspace)
    with django_assert_max_num_queries(API[path]):
        response = client.get(_address(path))
    assert response.status_code == 200, response.content
    page = response.json()
    assert len(page["results"]) >= SCALE, f"{path} lists {len(page['results'])}, fewer than {SCALE}"
