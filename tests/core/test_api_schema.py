"""The OpenAPI schema says what the API answers: every list is documented as the page it answers
({count, next, previous, results}), with its page parameters; downloads name the media types they
come in. Checked against the live answers for a workspace with one of everything (demo/sample.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.models import Artifact
from demo.sample import DATASET, DATASET_VERSION, MODEL, MODEL_VERSION, sample_workspace_create
from tests.conftest import session

PAGE_KEYS = {"count", "next", "previous", "results"}
NO_SUCH_ID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def sample(db):
    return sample_workspace_create(slug="sample", admin_username="sam")


@pytest.fixture
def sam(sample):
    """The sample workspace's admin, signed in: every scope, and the session-only endpoints too."""
    return session(sample.workspace.memberships.get(role="admin").user, sample.workspace)


@pytest.fixture
def schema(sam) -> dict[str, Any]:
    response = sam.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_every_list_is_documented_as_the_page_it_answers(sam, schema):
    documented, answered = set(), set()
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if operation is None:
            continue
        body = _json_schema(schema, operation, "200")
        assert body.get("type") != "array", f"GET {path} is documented as a bare list, not a page"
        if set(body.get("properties", {})) == PAGE_KEYS:
            documented.add(path)
            assert set(body["required"]) == PAGE_KEYS
            assert body["properties"]["results"]["type"] == "array"
            query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            assert {"page", "page_size"} <= query, f"GET {path} does not document its page parameters"
        response = sam.get(_address(path))
        if response.status_code == 200 and response["Content-Type"] == "application/json":
            answer = response.json()
            if isinstance(answer, dict) and set(answer) == PAGE_KEYS:
                answered.add(path)
    assert documented == answered
    # The lists of every app, so a list that failed to answer cannot go unnoticed.
    assert {
        "/api/v1/workspaces",
        "/api/v1/invitations",
        "/api/v1/tokens",
        "/api/v1/audit/events",
        "/api/v1/lineage/nodes",
        "/api/v1/jobs",
        "/api/v1/models/{name}/versions/{version}/explanations",
        "/api/v1/models/{name}/versions/{version}/fairness-assessments",
        "/api/v1/datasets/{name}/versions/{version}/dp-releases",
        "/api/v1/models/{name}/versions",
        "/api/v1/policies",
        "/api/v1/promotion-requests",
        "/api/v1/models/{name}/versions/{version}/reports",
    } <= answered


def test_a_page_answers_with_the_documented_links(sam):
    response = sam.get("/api/v1/audit/events?page_size=2")
    assert response.status_code == 200
    page = response.json()
    assert page["count"] > 2
    assert re.fullmatch(r"http://testserver/api/v1/audit/events\?page=2&page_size=2", page["next"])
    assert page["previous"] is None
    assert len(page["results"]) == 2


def test_a_download_comes_in_a_media_type_its_schema_allows(sam, sample, schema):
    documented = schema["paths"]["/api/v1/artifacts/{artifact_id}/content"]["get"]["responses"]["200"]
    artifact = Artifact.objects.get(workspace=sample.workspace, filename=f"{DATASET}.csv")
    response = sam.get(f"/api/v1/artifacts/{artifact.pk}/content")
    assert response.status_code == 200
    received = response["Content-Type"].split(";")[0]
    assert received == "text/csv"
    assert any(_matches(media_range, received) for media_range in documented["content"]), (
        f"{received} is not among {sorted(documented['content'])}"
    )


def _json_schema(schema: dict[str, Any], operation: dict[str, Any], status: str) -> dict[str, Any]:
    content = operation["responses"].get(status, {}).get("content", {})
    body = content.get("application/json", {}).get("schema", {})
    while "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    return body


def _address(path: str) -> str:
    """The path with its parameters filled: the sample's model and dataset, ids that match nothing."""
    models = path.startswith("/api/v1/models/")
    values = {
        "name": MODEL if models else DATASET,
        "version": MODEL_VERSION if models else DATASET_VERSION,
        "fmt": "prov",
        "node_id": "0",
        "seq": "0",
    }
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match[1], NO_SUCH_ID), path)


def _matches(media_range: str, media_type: str) -> bool:
    expected, received = media_range.split("/"), media_type.split("/")
    return all(e in ("*", r) for e, r in zip(expected, received, strict=True))
