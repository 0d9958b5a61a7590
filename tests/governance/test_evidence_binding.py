"""Evidence is about the exact model file that is promoted: a job records the bytes it ran on, the gate
reads only jobs on the version's file, and a node's file cannot be swapped after the fact."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.actors import Actor
from core.errors import Conflict
from core.models import AuditEvent
from explain.models import Job, JobKind, JobState
from governance import gates, services
from lineage.models import Node
from tests.conftest import bearer
from tests.explain.conftest import store_bytes
from tests.factories import make_token
from tests.lineage.helpers import record

pytestmark = pytest.mark.django_db

FAIRNESS_POLICY = {
    "name": "fair",
    "stages": ["staging"],
    "rules": [
        {
            "id": "parity",
            "type": "fairness_bound",
            "metric": "demographic_parity_difference",
            "sensitive_feature": "sex",
            "max": 0.1,
        },
        {"id": "explained", "type": "explanation_present"},
    ],
}


def _succeeded(workspace, version, kind, model_artifact_id, result):
    data = Node.objects.get(workspace=workspace, key="adult@v1")
    return Job.objects.create(
        workspace=workspace,
        kind=kind,
        state=JobState.SUCCEEDED,
        model_node=version.node,
        dataset_node=data,
        model_artifact_id=model_artifact_id,
        dataset_artifact_id=data.artifact_id,
        result=result,
    )


def test_jobs_on_other_bytes_are_not_evidence_for_the_version(acme, ada, alice, registered):
    services.policy_upload(workspace=acme, actor=Actor(user=ada), document=FAIRNESS_POLICY)
    decoy = store_bytes(acme, alice, b"another model's bytes", "decoy.skops")
    fair = {"sensitive_features": ["sex"], "disparities": {"demographic_parity_difference": {"value": 0.01}}}
    _succeeded(acme, registered, JobKind.FAIRNESS, decoy.pk, fair)
    _succeeded(acme, registered, JobKind.EXPLANATION, decoy.pk, {"top_features": ["score"]})

    outcome = gates.evaluate(registered, "staging")
    reasons = {r["rule"]: (r["passed"], r["reason"]) for r in outcome["rules"]}
    assert reasons["parity"] == (False, "no fairness assessment of this version covers 'sex'")
    assert reasons["explained"] == (False, "the model version has no explanation")

    # The same results computed on the registered file count.
    biased = {"sensitive_features": ["sex"], "disparities": {"demographic_parity_difference": {"value": 0.3}}}
    job = _succeeded(acme, registered, JobKind.FAIRNESS, registered.artifact_id, biased)
    _succeeded(acme, registered, JobKind.EXPLANATION, registered.artifact_id, {"top_features": ["score"]})
    outcome = gates.evaluate(registered, "staging")
    rules = {r["rule"]: r for r in outcome["rules"]}
    assert rules["parity"]["passed"] is False
    assert rules["parity"]["evidence"]["job"] == str(job.id)
    assert rules["explained"]["passed"] is True


def test_a_registered_versions_file_cannot_be_replaced_through_lineage(acme, alice, registered):
    author = bearer(make_token(acme, alice, ["lineage:write", "artifact:write"]))
    decoy = store_bytes(acme, alice, b"another model's bytes", "decoy.skops")
    before = Node.objects.get(pk=registered.node_id)
    response = author.post(
        reverse("lineage-events"),
        {
            "events": [
                {"type": "node", "kind": "Dataset", "key": "would-be-written"},
                {"type": "node", "kind": "ModelVersion", "key": "income@1", "artifact": str(decoy.pk)},
            ]
        },
        format="json",
    )
    assert response.status_code == 409, response.content
    problem = response.json()
    assert problem["errors"][0]["field"] == "artifact"
    assert "ModelVersion 'income@1' already holds artifact" in problem["errors"][0]["message"]
    after = Node.objects.get(pk=registered.node_id)
    assert after.artifact_id == before.artifact_id == registered.artifact_id
    assert not Node.objects.filter(workspace=acme, key="would-be-written").exists()  # all or nothing
    refused = AuditEvent.objects.get(
        workspace=acme, action="lineage.record.refuse"
    )  # one, naming who and why
    assert refused.actor.endswith(alice.username)
    assert "already holds artifact" in refused.payload["reason"]

    # The same file again, or properties only, is still an ordinary idempotent write.
    same = {
        "type": "node",
        "kind": "ModelVersion",
        "key": "income@1",
        "artifact": str(registered.artifact_id),
    }
    assert author.post(reverse("lineage-events"), {"events": [same]}, format="json").status_code == 200
    tagged = {"type": "node", "kind": "ModelVersion", "key": "income@1", "properties": {"note": "ok"}}
    assert author.post(reverse("lineage-events"), {"events": [tagged]}, format="json").status_code == 200


def test_a_version_cannot_be_registered_over_a_node_holding_other_bytes(acme, alice, registered):
    decoy = store_bytes(acme, alice, b"decoy", "decoy.skops")
    record(
        acme, alice, {"type": "node", "kind": "ModelVersion", "key": "income@2", "artifact": str(decoy.pk)}
    )
    with pytest.raises(Conflict, match="ModelVersion 'income@2' already holds artifact"):
        services.version_register(
            workspace=acme,
            actor=Actor(user=alice),
            name="income",
            version="2",
            artifact=str(registered.artifact_id),
        )
    assert registered.registered_model.versions.count() == 1


def test_a_node_without_a_file_can_be_given_one(acme, alice):
    data = store_bytes(acme, alice, b"a,b\n1,2\n", "d.csv")
    record(acme, alice, {"type": "node", "kind": "DatasetVersion", "key": "d@1"})
    record(acme, alice, {"type": "node", "kind": "DatasetVersion", "key": "d@1", "artifact": str(data.pk)})
    assert Node.objects.get(workspace=acme, key="d@1").artifact_id == data.pk
