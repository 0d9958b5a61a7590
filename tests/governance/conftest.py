"""Governance fixtures: a registered model version with its artifacts and lineage, and a policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.tree import DecisionTreeClassifier

from core.actors import Actor
from core.roles import Role
from governance import services
from tests.explain.conftest import store_bytes
from tests.factories import make_member
from tests.lineage.helpers import record

FULL_CARD = {
    "model_details": {
        "name": "income",
        "version": "1",
        "owners": ["alice"],
        "date": "2026-11-25",
        "type": "decision tree",
        "license": "Apache-2.0",
        "description": "income above 50K",
    },
    "intended_use": {"primary_uses": "triage", "primary_users": "analysts", "out_of_scope_uses": "credit"},
    "factors": {"relevant_factors": ["sex"], "evaluation_factors": ["sex"]},
    "metrics": {
        "performance_measures": ["accuracy"],
        "decision_thresholds": "0.5",
        "variation_approaches": "bootstrap",
    },
    "evaluation_data": {"datasets": ["adult@v1"], "motivation": "held out", "preprocessing": "none"},
    "training_data": {"datasets": ["adult@v1"], "description": "census"},
    "quantitative_analyses": {"unitary_results": "see fairness", "intersectional_results": "see fairness"},
    "ethical_considerations": {"sensitive_data": "sex", "risks_and_harms": "bias", "mitigations": "review"},
    "caveats_and_recommendations": {"caveats": "old data", "recommendations": "retrain yearly"},
}

POLICY = {
    "name": "production-readiness",
    "stages": ["production"],
    "rules": [
        {"id": "card", "type": "datasheet_complete"},
        {"id": "accuracy", "type": "metric_threshold", "metric": "accuracy", "min": 0.7},
        {
            "id": "lineage",
            "type": "lineage_contains",
            "kinds": ["DatasetVersion", "Commit", "Environment", "Run"],
        },
        {"id": "explained", "type": "explanation_present", "forbidden_top_features": ["sex"], "top_k": 1},
        {"id": "reviewers", "type": "approvals", "count": 2, "role": "compliance_reviewer"},
        {"id": "budget", "type": "dp_budget_not_exhausted"},
    ],
}


def training_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    sex = rng.integers(0, 2, n)
    return pd.DataFrame({"score": score, "sex": sex, "label": (score > 0.5).astype(int)})


@pytest.fixture
def reviewers(acme):
    return make_member(acme, Role.COMPLIANCE_REVIEWER, "rita"), make_member(
        acme, Role.COMPLIANCE_REVIEWER, "ravi"
    )


@pytest.fixture
def registered(acme, alice):
    """income@1 registered by alice with its run, commit, environment and training data."""
    frame = training_frame()
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame[["score", "sex"]], frame["label"])
    data = store_bytes(acme, alice, frame.to_csv(index=False).encode(), "adult.csv")
    record(
        acme, alice, {"type": "node", "kind": "DatasetVersion", "key": "adult@v1", "artifact": str(data.pk)}
    )
    weights = store_bytes(acme, alice, sio.dumps(model), "income.skops")
    return services.version_register(
        workspace=acme,
        actor=Actor(user=alice),
        name="income",
        version="1",
        artifact=str(weights.pk),
        metrics={"accuracy": 0.9},
        run={"key": "train-1", "job": "train"},
        datasets=["adult@v1"],
        commit={"key": "3f2a9c1"},
        environment={"key": "py311"},
    )
