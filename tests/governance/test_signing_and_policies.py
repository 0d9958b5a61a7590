"""Signed decisions verify offline and fail when touched; policies are validated at upload."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.urls import reverse

from core import signing
from core.actors import Actor
from governance import gates, services
from mlgov.client import verify_decision
from tests.conftest import bearer, session
from tests.factories import make_token
from tests.governance.conftest import POLICY


@pytest.fixture
def decision(acme, ada, alice, registered):
    services.policy_upload(workspace=acme, actor=Actor(user=ada), document=POLICY)
    client = bearer(make_token(acme, alice, ["gate:check"]))
    return client.post(
        reverse("model-gate", kwargs={"name": "income", "version": "1"}),
        {"stage": "production"},
        format="json",
    ).json()


def test_a_decision_verifies_with_the_service_key(decision):
    assert verify_decision(decision, signing.public_key_document()["public_key"])
    assert len(decision["statement"]["rules"]) == len(POLICY["rules"])


def test_one_changed_byte_fails_verification(decision):
    key = signing.public_key_document()["public_key"]
    text = json.dumps(decision["statement"])
    flipped = text.replace('"passed": false', '"passed": true', 1)  # the verdict itself
    assert flipped != text
    assert not verify_decision({**decision, "statement": json.loads(flipped)}, key)
    # Any single character of a reason, too.
    tampered = copy.deepcopy(decision)
    reason = tampered["statement"]["rules"][0]["reason"]
    tampered["statement"]["rules"][0]["reason"] = reason[:-1] + chr(ord(reason[-1]) ^ 1)
    assert not verify_decision(tampered, key)
    # And the signature itself.
    raw = bytearray(base64.b64decode(decision["signature"]))
    raw[0] ^= 1
    assert not verify_decision({**decision, "signature": base64.b64encode(bytes(raw)).decode()}, key)


def test_a_decision_signed_with_another_key_fails(decision):
    other = Ed25519PrivateKey.generate()
    message = json.dumps(
        decision["statement"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    forged = {**decision, "signature": base64.b64encode(other.sign(message)).decode()}
    other_public = base64.b64encode(
        other.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    assert verify_decision(forged, other_public)  # consistent with its own key...
    assert not verify_decision(forged, signing.public_key_document()["public_key"])  # ...not with ours


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        ({**POLICY, "rules": [{"type": "vibes_check"}]}, "rules.0.type", "unknown check type 'vibes_check'"),
        ({**POLICY, "rules": [{"type": "metric_threshold"}]}, "rules.0", "'metric' is a required property"),
        ({**POLICY, "rules": [{"type": "approvals", "count": 0}]}, "rules.0.count", "less than the minimum"),
        (
            {**POLICY, "rules": [{"type": "approvals", "count": 1, "colour": "red"}]},
            "rules.0.colour",
            "unknown field",
        ),
        (
            {**POLICY, "rules": [{"type": "lineage_contains", "kinds": ["Spaceship"]}]},
            "rules.0.kinds.0",
            "is not one of",
        ),
        ({**POLICY, "stages": ["heaven"]}, "stages.0", "is not one of"),
        ({"name": "x", "stages": ["production"]}, "document", "'rules' is a required property"),
    ],
)
def test_bad_policies_are_400_at_upload_naming_the_field(acme, ada, document, field, message):
    response = session(ada, acme).post(reverse("policy-list"), {"document": document}, format="json")
    assert response.status_code == 400, response.content
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert field in errors, errors
    assert message in errors[field]


def test_policies_upload_as_yaml_and_are_versioned(acme, ada):
    text = "name: p\nstages: [staging]\nrules:\n  - type: approvals\n    count: 1\n"
    client = session(ada, acme)
    first = client.post(reverse("policy-list"), {"text": text}, format="json").json()
    second = client.post(
        reverse("policy-list"), {"text": text.replace("count: 1", "count: 2")}, format="json"
    ).json()
    assert (first["revision"], second["revision"]) == (1, 2)
    active = client.get(reverse("policy-list")).json()["results"]
    assert [(p["name"], p["revision"]) for p in active] == [("p", 2)]


def test_only_policy_writers_upload_policies(acme, alice):
    client = bearer(make_token(acme, alice, ["model:read"]))
    assert client.post(reverse("policy-list"), {"document": POLICY}, format="json").status_code == 403


def test_gate_evaluations_are_reused_only_while_the_evidence_is_unchanged(
    acme, ada, alice, registered, monkeypatch
):
    services.policy_upload(workspace=acme, actor=Actor(user=ada), document=POLICY)
    calls = []
    real = gates.evaluate
    monkeypatch.setattr(gates, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    client = bearer(make_token(acme, alice, ["gate:check", "datasheet:write"]))
    url = reverse("model-gate", kwargs={"name": "income", "version": "1"})
    first = client.post(url, {"stage": "production"}, format="json").json()["statement"]
    second = client.post(url, {"stage": "production"}, format="json").json()["statement"]
    assert len(calls) == 1  # a gate check is a read: the evidence sequence did not move
    assert first["evidence_seq"] == second["evidence_seq"]
    assert first["decision"] != second["decision"]  # each check is its own signed, stored decision
    card = next(r for r in second["rules"] if r["rule"] == "card")
    assert card["passed"] is False
    from tests.governance.conftest import FULL_CARD

    client.put(
        reverse("model-card", kwargs={"name": "income", "version": "1"}),
        {"content": FULL_CARD},
        format="json",
    )
    third = client.post(url, {"stage": "production"}, format="json").json()["statement"]
    assert len(calls) == 2
    assert third["evidence_seq"] > second["evidence_seq"]
    assert next(r for r in third["rules"] if r["rule"] == "card")["passed"] is True


def test_a_stage_no_policy_covers_fails_closed(acme, alice, registered):
    client = bearer(make_token(acme, alice, ["gate:check"]))
    decision = client.post(
        reverse("model-gate", kwargs={"name": "income", "version": "1"}), {"stage": "staging"}, format="json"
    ).json()
    assert decision["passed"] is False
    assert decision["statement"]["policies"] == []
    [rule] = decision["statement"]["rules"]
    assert (rule["policy"], rule["rule"], rule["passed"]) == ("gate", "policy-coverage", False)
    assert rule["reason"] == "no active policy covers the stage 'staging': upload one that lists it"
