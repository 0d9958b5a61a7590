"""A gate rule can require the evaluation data to be kept apart from the training data, proven from
the rows themselves: an assessment on the training data fails it naming the overlap, one on a
held-out split passes, and the training data's fingerprints are kept for the next check."""

from __future__ import annotations

import pytest
import skops.io as sio
from django.core.files.storage import default_storage
from django.urls import reverse
from sklearn.tree import DecisionTreeClassifier

from core.actors import Actor
from explain.models import Job
from governance import gates, services
from tests.conftest import bearer
from tests.explain.conftest import planted_bias, store_bytes
from tests.factories import make_token
from tests.lineage.helpers import record

pytestmark = pytest.mark.django_db
FEATURES = ["score", "sex"]


@pytest.fixture
def split(acme, alice):
    """income@1 trained on adult@train (1,500 rows); adult@holdout holds 500 other rows."""
    frame = planted_bias(2000, seed=11)
    train, holdout = frame.iloc[:1500], frame.iloc[1500:]
    for key, part in (("adult@train", train), ("adult@holdout", holdout)):
        data = store_bytes(acme, alice, part.to_csv(index=False).encode(), f"{key}.csv")
        record(acme, alice, {"type": "node", "kind": "DatasetVersion", "key": key, "artifact": str(data.pk)})
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(train[FEATURES], train["label"])
    return services.version_register(
        workspace=acme,
        actor=Actor(user=alice),
        name="income",
        version="1",
        artifact=str(store_bytes(acme, alice, sio.dumps(model), "income.skops").pk),
        metrics={"accuracy": 0.9},
        datasets=["adult@train"],
    )


def _assess(acme, alice, dataset, capture):
    client = bearer(make_token(acme, alice, ["explain:run", "model:read"]))
    url = reverse("model-fairness-assessments", kwargs={"name": "income", "version": "1"})
    body = {
        "dataset_version": dataset,
        "features": FEATURES,
        "target": "label",
        "sensitive_features": ["sex"],
    }
    with capture(execute=True):
        response = client.post(url, {**body, "resamples": 50}, format="json")
    job = Job.objects.get(pk=response.json()["id"])
    assert job.state == "succeeded", job.error
    return job


def _rule(result, rule_id):
    return next(r for r in result["rules"] if r["rule"] == rule_id)


def test_the_gate_proves_the_evaluation_data_disjoint_from_the_training_data(
    acme, ada, alice, split, eager_celery, django_capture_on_commit_callbacks
):
    services.policy_upload(
        workspace=acme,
        actor=Actor(user=ada),
        document={
            "name": "held-out",
            "stages": ["staging"],
            "rules": [
                {
                    "id": "parity",
                    "type": "fairness_bound",
                    "metric": "demographic_parity_difference",
                    "sensitive_feature": "sex",
                    "max": 1.0,
                    "max_training_overlap": 0,
                },
                {"id": "disjoint", "type": "evaluation_disjoint"},
            ],
        },
    )
    on_training = _assess(acme, alice, "adult@train", django_capture_on_commit_callbacks)
    assert on_training.result["data"]["overlap"] == {"rows": 1500, "of": 1500, "fraction": 1.0}
    result = gates.evaluate(split, "staging")
    parity, disjoint = _rule(result, "parity"), _rule(result, "disjoint")
    assert parity["passed"] is False
    assert parity["reason"] == (
        "1,500 of the 1,500 evaluation rows of adult@train are training rows (100.00%; at most 0.00% allowed)"
    )
    assert parity["evidence"]["dataset"] == "adult@train"
    assert parity["evidence"]["dataset_sha256"] == on_training.dataset_artifact.sha256
    assert parity["evidence"]["training_overlap_rows"] == 1500
    assert disjoint["passed"] is False
    # The training file's fingerprints are kept: the next check reads no training data again.
    train = next(t for t in on_training.result["data"]["training"] if t["dataset"] == "adult@train")
    kept = default_storage.listdir(f"fingerprints/{train['sha256']}")[1]
    assert len(kept) == 1

    held_out = _assess(acme, alice, "adult@holdout", django_capture_on_commit_callbacks)
    assert held_out.result["data"]["overlap"]["rows"] == 0
    result = gates.evaluate(split, "staging")
    assert _rule(result, "parity")["passed"] is True
    assert _rule(result, "parity")["evidence"]["dataset"] == "adult@holdout"
    assert _rule(result, "disjoint")["passed"] is True
    assert result["passed"] is True


def test_without_training_data_in_the_lineage_disjointness_cannot_be_proven(
    acme, ada, alice, eager_celery, django_capture_on_commit_callbacks
):
    frame = planted_bias(600, seed=2)
    data = store_bytes(acme, alice, frame.to_csv(index=False).encode(), "d.csv")
    record(
        acme,
        alice,
        {"type": "node", "kind": "DatasetVersion", "key": "adult@train", "artifact": str(data.pk)},
    )
    model = DecisionTreeClassifier(max_depth=3).fit(frame[FEATURES], frame["label"])
    version = services.version_register(
        workspace=acme,
        actor=Actor(user=alice),
        name="income",
        version="1",
        artifact=str(store_bytes(acme, alice, sio.dumps(model), "m.skops").pk),
    )
    services.policy_upload(
        workspace=acme,
        actor=Actor(user=ada),
        document={
            "name": "held-out",
            "stages": ["staging"],
            "rules": [{"id": "d", "type": "evaluation_disjoint"}],
        },
    )
    job = _assess(acme, alice, "adult@train", django_capture_on_commit_callbacks)
    assert job.result["data"]["overlap"] is None
    rule = _rule(gates.evaluate(version, "staging"), "d")
    assert rule["passed"] is False
    assert "cannot be shown disjoint" in rule["reason"]
    assert "records no training data for this model version" in rule["reason"]
