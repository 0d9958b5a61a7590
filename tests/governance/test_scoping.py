"""Policies govern the models they select (by name or glob, tag, risk tier); a rule that does not
apply is reported as not applicable, not failed; a stage whose policies select no rule for a model
still fails closed. A model's tags and tier are a policy writer's change, audited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.actors import Actor
from core.models import AuditEvent
from governance import gates, services
from tests.conftest import bearer, session
from tests.factories import make_token

pytestmark = pytest.mark.django_db

ACCURACY = {"id": "accuracy", "type": "metric_threshold", "metric": "accuracy", "min": 0.7}
RACE = {
    "id": "race",
    "type": "fairness_bound",
    "metric": "demographic_parity_difference",
    "sensitive_feature": "race",
    "max": 0.1,
}


def _upload(acme, ada, document):
    return services.policy_upload(workspace=acme, actor=Actor(user=ada), document=document)


def _rules(result):
    return {r["rule"]: r for r in result["rules"]}


def test_a_policy_scoped_to_credit_models_does_not_apply_to_income(acme, ada, registered):
    _upload(
        acme,
        ada,
        {"name": "credit", "stages": ["staging"], "rules": [RACE], "applies_to": {"models": ["credit-*"]}},
    )
    _upload(acme, ada, {"name": "everyone", "stages": ["staging"], "rules": [ACCURACY]})
    result = gates.evaluate(registered, "staging")
    rules = _rules(result)
    assert rules["race"]["applicable"] is False
    assert rules["race"]["passed"] is None
    assert (
        rules["race"]["reason"] == "not applicable: it governs the models credit-*, and 'income' is not one"
    )
    assert rules["accuracy"]["passed"] is True  # the unscoped policy as before
    assert result["passed"] is True


def test_a_stage_whose_policies_select_no_rule_for_the_model_fails_closed(acme, ada, registered):
    _upload(
        acme,
        ada,
        {"name": "credit", "stages": ["staging"], "rules": [RACE], "applies_to": {"models": ["credit-*"]}},
    )
    result = gates.evaluate(registered, "staging")
    assert result["passed"] is False
    coverage = _rules(result)["policy-coverage"]
    assert coverage["passed"] is False
    assert (
        "no rule of the active policies covering the stage 'staging' applies to 'income'"
        in coverage["reason"]
    )


def test_rules_and_policies_select_by_tag_and_risk_tier(acme, ada, registered):
    high_only = {**ACCURACY, "id": "high-accuracy", "min": 0.95, "applies_to": {"risk_tiers": ["high"]}}
    tagged = {**ACCURACY, "id": "tagged", "applies_to": {"tags": ["hr"]}}
    _upload(acme, ada, {"name": "tiers", "stages": ["staging"], "rules": [ACCURACY, high_only, tagged]})
    rules = _rules(gates.evaluate(registered, "staging"))
    assert rules["high-accuracy"]["applicable"] is False
    assert "governs risk tiers high ('income' is not set)" in rules["high-accuracy"]["reason"]
    assert rules["tagged"]["applicable"] is False
    services.model_update(
        workspace=acme, actor=Actor(user=ada), name="income", risk_tier="high", tags=["hr", "census"]
    )
    registered.registered_model.refresh_from_db()
    result = gates.evaluate(registered, "staging")
    rules = _rules(result)
    assert rules["high-accuracy"]["passed"] is False  # 0.9 < 0.95: now it applies, and fails
    assert rules["tagged"]["passed"] is True
    assert result["passed"] is False


def test_tags_and_risk_tier_are_a_policy_writers_change_and_audited(acme, ada, alice, registered):
    url = reverse("model-detail", kwargs={"name": "income"})
    scientist = bearer(make_token(acme, alice, ["model:read", "model:write"]))
    assert scientist.get(url).json()["risk_tier"] == ""
    assert (
        scientist.patch(url, {"risk_tier": "minimal"}, format="json").status_code == 403
    )  # not theirs to lower
    admin = session(ada, acme)
    response = admin.patch(url, {"risk_tier": "high", "tags": ["hr", "hr", "census"]}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["risk_tier"], response.json()["tags"]) == ("high", ["census", "hr"])
    event = AuditEvent.objects.get(workspace=acme, action="model.update")
    assert event.payload["changes"]["risk_tier"] == {"from": "", "to": "high"}
    assert admin.patch(url, {"risk_tier": "high"}, format="json").status_code == 200
    assert AuditEvent.objects.filter(workspace=acme, action="model.update").count() == 1  # nothing changed
    bad = admin.patch(url, {"risk_tier": "extreme", "tags": ["no spaces"]}, format="json")
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"risk_tier", "tags[0]"}


def test_applies_to_is_validated_at_upload_naming_the_field(acme, ada):
    admin = session(ada, acme)

    def upload(**document):
        return admin.post(
            reverse("policy-list"),
            {"document": {"name": "p", "stages": ["staging"], **document}},
            format="json",
        )

    policy = upload(applies_to={"risk_tiers": ["extreme"]}, rules=[ACCURACY])
    assert policy.status_code == 400
    assert {e["field"] for e in policy.json()["errors"]} == {"applies_to.risk_tiers.0"}
    rule = upload(rules=[{**ACCURACY, "applies_to": {"colours": ["red"]}}])
    assert rule.status_code == 400
    assert {e["field"] for e in rule.json()["errors"]} == {"rules.0.applies_to"}
