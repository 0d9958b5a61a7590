"""A model version with every kind of evidence a report carries: a model card in two revisions, a
datasheet of its training data (its composition from a DP summary), a fairness assessment by sex
(with bootstrap intervals), an explanation, a gate decision under a policy with thresholds, and a
promotion request with a review."""

from __future__ import annotations

import copy

import pytest

from core.actors import Actor
from explain import fairness
from explain.models import JobKind
from governance import services, techfile
from governance.models import DatasheetKind
from lineage.models import Node
from privacy import services as privacy
from tests.factories import (
    explanation_result,
    make_datasheet,
    make_gate_decision,
    make_job,
    make_policy,
    make_promotion_request,
    make_review,
)
from tests.governance.conftest import FULL_CARD, POLICY, training_frame

CARD_TEXT = "Predicts whether a household's income exceeds 50K from census records"
DATASHEET_TEXT = "Census extract collected to study income inequality"
REVIEW_COMMENT = "Selection rates differ by 0.02 — within the ≤ 0.1 bound; approved for production"
PARITY_MAX = 0.1


@pytest.fixture
def evidenced(acme, ada, alice, bob, registered):
    """income@1 with all its evidence; returns the version."""
    frame = training_frame()
    card = copy.deepcopy(FULL_CARD)
    make_datasheet(acme, alice, content={"model_details": {"name": "income", "version": "1"}})
    card["model_details"]["description"] = CARD_TEXT
    make_datasheet(acme, alice, content=card)
    make_datasheet(
        acme,
        alice,
        DatasheetKind.DATASET,
        "adult",
        "v1",
        content={"motivation": {"purpose": DATASHEET_TEXT, "creators": "the census bureau"}},
    )
    assessed = fairness.assess(
        frame["label"].to_numpy(), (frame["score"] > 0.45).to_numpy(), frame[["sex"]], resamples=50
    )
    make_job(registered, JobKind.FAIRNESS, result=assessed, user=alice)
    make_job(registered, JobKind.EXPLANATION, result=explanation_result(frame=frame), user=alice)
    rules = [
        *POLICY["rules"],
        {
            "id": "parity",
            "type": "fairness_bound",
            "metric": "demographic_parity_difference",
            "sensitive_feature": "sex",
            "max": PARITY_MAX,
        },
    ]
    make_policy(acme, ada, POLICY["name"], stages=POLICY["stages"], rules=rules)
    request = make_promotion_request(registered, alice, comment="ready for production")
    make_review(request, bob, approve=True, comment=REVIEW_COMMENT)
    # A DP summary of the training data fills its datasheet's composition, with the note on its noise.
    node = Node.objects.get(key="adult@v1")
    node.properties = {**node.properties, "privacy": {"unit": 1, "categories": {"sex": [0, 1]}}}
    node.save(update_fields=["properties"])
    privacy.budget_set(workspace=acme, actor=Actor(user=ada), node=node, epsilon=2.0, delta=0.0)
    privacy.summary_request(workspace=acme, actor=Actor(user=alice), node=node, epsilon=1.0, consistent=True)
    make_gate_decision(registered, alice)
    registered.refresh_from_db()
    return registered


@pytest.fixture
def document(evidenced, acme, ada, alice):
    services.model_update(
        workspace=acme,
        actor=Actor(user=ada),
        name="income",
        risk_tier="high",
        annex_iii_area="essential-services",
        intended_purpose="One input to a credit officer's assessment.",
        owner="credit-analytics",
    )
    make_datasheet(
        acme,
        alice,
        DatasheetKind.ANNEX_IV,
        content={
            "human_oversight": {"measures": "A loan officer reviews every score."},
            "risk_management": {"known_risks": "Lower approval rates for women."},
        },
    )
    return techfile.bundle(evidenced)
