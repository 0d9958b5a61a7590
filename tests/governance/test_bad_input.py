"""Malformed input is a 400 (or 415) naming the problem, never a 500, and nothing is written."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from core.models import AuditEvent
from governance.models import Alias, Datasheet, ModelVersion, Policy
from lineage.models import Node
from tests.conftest import bearer, session
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def _fields(response) -> set[str]:
    return {e["field"] for e in response.json().get("errors", [])}


def test_kinds_and_event_types_that_are_not_strings_are_400(acme, alice):
    writer = bearer(make_token(acme, alice, ["lineage:write"]))
    for event in (
        {"type": "node", "kind": [], "key": "x"},
        {
            "type": "edge",
            "kind": {},
            "src": {"kind": "Dataset", "key": "a"},
            "dst": {"kind": "Dataset", "key": "b"},
        },
    ):
        response = writer.post(reverse("lineage-events"), {"events": [event]}, format="json")
        assert response.status_code == 400, response.content
        assert _fields(response) == {"events[0].kind"}
    response = writer.post(
        reverse("openlineage"),
        {"eventType": ["COMPLETE"], "eventTime": "2026-11-26T00:00:00Z", "run": {"runId": "r"}},
        format="json",
    )
    assert response.status_code == 400
    assert "eventType" in _fields(response)
    assert not Node.objects.exists()


def test_json_nested_too_deeply_and_form_bodies_are_refused_clearly(acme, alice):
    writer = bearer(make_token(acme, alice, ["lineage:write"]))
    deep = "[" * 100_000 + "]" * 100_000
    response = writer.generic("POST", reverse("lineage-events"), deep, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    form = writer.post(
        reverse("lineage-events"), "events=x", content_type="application/x-www-form-urlencoded"
    )
    assert form.status_code == 415
    assert "application/x-www-form-urlencoded" in form.json()["detail"]
    assert form.json()["detail"].endswith("Send JSON with the header Content-Type: application/json.")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page": "abc"}, "page"),
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page_size": "-5"}, "page_size"),
    ],
)
def test_bad_page_parameters_are_400_naming_them(acme, alice, query, field):
    client = bearer(make_token(acme, alice, ["artifact:read"]))
    response = client.get(reverse("artifact-list"), query)
    assert response.status_code == 400, response.content
    assert _fields(response) == {field}
    assert client.get(reverse("artifact-list"), {"page": "7"}).status_code == 404  # past the end


def test_yaml_documents_become_json_or_are_refused_naming_where(acme, ada, alice, registered):
    admin = session(ada, acme)
    mixed_keys = "name: p\nstages: [staging]\nrules:\n - type: approvals\n   count: 1\n   1: x\n"
    response = admin.post(reverse("policy-list"), {"text": mixed_keys}, format="json")
    assert response.status_code == 400
    assert "the key 1 is not a string" in response.json()["detail"]
    infinite = "name: p\nstages: [staging]\nrules:\n - type: metric_threshold\n   metric: a\n   min: .inf\n"
    response = admin.post(reverse("policy-list"), {"text": infinite}, format="json")
    assert response.status_code == 400
    assert "text.rules[0].min: inf is not a finite number" in response.json()["detail"]
    assert _fields(response) == {"text.rules[0].min"}
    assert not Policy.objects.exists()

    # An unquoted date is the date's text, as it would be in JSON.
    text = "model_details:\n  date: 2026-01-15\n  name: income\n  version: '1'\n"
    author = session(alice, acme)
    url = reverse("model-card", kwargs={"name": "income", "version": "1"})
    response = author.put(url, {"document": text, "format": "yaml"}, format="json")
    assert response.status_code == 200, response.content
    assert Datasheet.objects.get().content["model_details"]["date"] == "2026-01-15"


def test_register_and_alias_names_and_properties_are_checked(acme, alice, registered):
    author = bearer(make_token(acme, alice, ["model:write", "model:read"]))
    body = {"version": "2", "artifact": str(registered.artifact_id)}
    long_name = author.post(reverse("model-versions", kwargs={"name": "a" * 300}), body, format="json")
    assert long_name.status_code == 400
    assert _fields(long_name) == {"name"}
    spaced = author.post(reverse("model-versions", kwargs={"name": "has space"}), body, format="json")
    assert spaced.status_code == 400
    infinite = author.generic(
        "POST",
        reverse("model-versions", kwargs={"name": "income"}),
        json.dumps({"version": "2", "artifact": str(registered.artifact_id), "run": {"key": "t"}})[:-2]
        + ', "properties": {"lr": 1e400}}}',
        content_type="application/json",
    )
    assert infinite.status_code == 400
    assert _fields(infinite) == {"run.properties"}
    assert ModelVersion.objects.count() == 1
    alias = author.put(
        reverse("model-alias", kwargs={"name": "income", "alias": "z" * 150}), {"version": "1"}, format="json"
    )
    assert alias.status_code == 400
    assert _fields(alias) == {"alias"}
    assert not Alias.objects.exists()
    assert not AuditEvent.objects.filter(action="model.alias").exists()


def test_nul_characters_are_refused_naming_where_except_in_lineage(acme, alice, registered):
    author = bearer(
        make_token(acme, alice, ["model:write", "model:read", "datasheet:write", "lineage:write"])
    )
    card = author.put(
        reverse("model-card", kwargs={"name": "income", "version": "1"}),
        {"content": {"model_details": {"name": "a\x00b"}}},
        format="json",
    )
    assert card.status_code == 400
    assert card.json()["detail"] == "content.model_details.name: text must not contain NUL (\\u0000)"
    metrics = author.post(
        reverse("model-versions", kwargs={"name": "income"}),
        {"version": "2", "artifact": str(registered.artifact_id), "metrics": {"acc\x00": 0.5}},
        format="json",
    )
    assert metrics.status_code == 400
    assert metrics.json()["detail"].startswith("metrics: text must not contain NUL")
    # A name in the address with a NUL names nothing.
    assert author.get(reverse("model-versions", kwargs={"name": "a\x00b"})).status_code == 404
    # Lineage keeps NUL verbatim (its own storage escapes it).
    kept = author.post(
        reverse("lineage-events"),
        {"events": [{"type": "node", "kind": "Dataset", "key": "nul\x00key", "properties": {"p": "\x00"}}]},
        format="json",
    )
    assert kept.status_code == 200, kept.content
    assert Node.objects.get(workspace=acme, kind="Dataset").key == "nul\x00key"


# Nine levels of nine aliases: 342 bytes that stand for 9**9 (387 million) strings.
ALIAS_BOMB = "\n".join(
    ["a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    + [f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)]
)


def test_a_yaml_alias_bomb_is_refused_as_a_policy_and_as_a_model_card(acme, ada, alice, registered):
    assert len(ALIAS_BOMB) < 400
    admin = session(ada, acme)
    before = AuditEvent.objects.count()
    policy = admin.post(reverse("policy-list"), {"text": ALIAS_BOMB}, format="json")
    assert policy.status_code == 400, policy.content
    assert _fields(policy) == {"text"}
    assert "expands to more than" in policy.json()["detail"]
    card = session(alice, acme).put(
        reverse("model-card", kwargs={"name": "income", "version": "1"}),
        {"document": f"---\n{ALIAS_BOMB}\n---\nbody", "format": "markdown"},
        format="json",
    )
    assert card.status_code == 400, card.content
    assert _fields(card) == {"document"}
    assert not Policy.objects.exists()
    assert not Datasheet.objects.exists()
    assert AuditEvent.objects.count() == before


def test_yaml_nesting_and_self_reference_are_refused_but_small_aliases_work(acme, ada):
    admin = session(ada, acme)
    deep = "name: p\nstages: [staging]\nrules: " + "[" * 5000 + "]" * 5000 + "\n"
    response = admin.post(reverse("policy-list"), {"text": deep}, format="json")
    assert response.status_code == 400
    assert "nested more than" in response.json()["detail"]
    cycle = admin.post(reverse("policy-list"), {"text": "a: &x [1, *x]\n"}, format="json")
    assert cycle.status_code == 400
    assert _fields(cycle) == {"text"}
    # A policy that shares a rule's settings through an anchor is fine.
    shared = (
        "name: p\nstages: [staging, production]\nrules:\n"
        " - &rule {id: acc, type: metric_threshold, metric: accuracy, min: 0.5}\n"
        " - {<<: *rule, id: acc2}\n"
    )
    response = admin.post(reverse("policy-list"), {"text": shared}, format="json")
    assert response.status_code == 201, response.content
    assert [r["id"] for r in Policy.objects.get().document["rules"]] == ["acc", "acc2"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"document": 'model_details:\n  name: "a\\0b"\n', "format": "yaml"}, "document.model_details.name"),
        (
            {"document": '---\nmodel_details: {"k\\0": 1}\n---\n', "format": "markdown"},
            "document.model_details",
        ),
    ],
)
def test_nul_written_as_a_yaml_escape_is_a_400_naming_the_field(acme, alice, registered, body, field):
    response = session(alice, acme).put(
        reverse("model-card", kwargs={"name": "income", "version": "1"}), body, format="json"
    )
    assert response.status_code == 400, response.content
    assert _fields(response) == {field}
    assert not Datasheet.objects.exists()


def test_nul_in_a_yaml_policy_is_a_400_naming_the_field(acme, ada):
    text = 'name: "p\\0"\nstages: [staging]\nrules: []\n'
    response = session(ada, acme).post(reverse("policy-list"), {"text": text}, format="json")
    assert response.status_code == 400, response.content
    assert _fields(response) == {"text.name"}
    assert not Policy.objects.exists()


def test_json_bodies_past_the_size_or_depth_limit_are_refused(acme, alice, settings):
    writer = bearer(make_token(acme, alice, ["lineage:write"]))
    settings.API_MAX_JSON_BYTES = 1000
    big = writer.post(
        reverse("lineage-events"),
        {"events": [{"type": "node", "kind": "Dataset", "key": "k" * 2000}]},
        format="json",
    )
    assert big.status_code == 413, big.content
    assert "API_MAX_JSON_BYTES" in big.json()["detail"]
    settings.API_MAX_JSON_BYTES = 10**6
    nested: dict = {}
    inner = nested
    for _ in range(100):
        inner["x"] = {}
        inner = inner["x"]
    deep = writer.post(
        reverse("lineage-events"),
        {"events": [{"type": "node", "kind": "Dataset", "key": "k", "properties": nested}]},
        format="json",
    )
    assert deep.status_code == 400, deep.content
    assert "nested more than 64 levels" in deep.json()["detail"]
    assert not Node.objects.exists()


def test_control_characters_in_yaml_are_a_400_naming_the_field(acme, ada):
    response = session(ada, acme).post(reverse("policy-list"), {"text": "a: \x87\x15"}, format="json")
    assert response.status_code == 400, response.content
    assert _fields(response) == {"text"}
    assert "cannot be parsed as YAML" in response.json()["detail"]
