"""Gate rules on real evidence: a fairness assessment (explain.fairness, as the worker runs it) of a
model fitted to data with a planted selection-rate gap, read by the `fairness_bound` rule through
the typed evidence contract (explain.evidence, explain.selectors)."""

from __future__ import annotations

import pytest
import skops.io as sio
from django.utils import timezone
from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio
from sklearn.tree import DecisionTreeClassifier

from core.actors import Actor
from explain.fairness import assess
from explain.models import Job, JobKind, JobState
from explain.selectors import latest_fairness_assessment
from governance import gates, services
from lineage.models import Node
from tests.explain.conftest import planted_bias, store_bytes
from tests.lineage.helpers import record

pytestmark = pytest.mark.django_db

FEATURES = ["score", "sex"]


@pytest.fixture
def assessed(acme, alice):
    """income@1, a tree fitted to data whose selection rate is planted at 0.6 for sex=1 and 0.3 for
    sex=0, registered by alice, and a fairness assessment of it by sex stored as a worker stores one."""
    frame = planted_bias(4000)
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(frame[FEATURES], frame["label"])
    data = store_bytes(acme, alice, frame.to_csv(index=False).encode(), "adult.csv")
    record(
        acme, alice, {"type": "node", "kind": "DatasetVersion", "key": "adult@v1", "artifact": str(data.pk)}
    )
    version = services.version_register(
        workspace=acme,
        actor=Actor(user=alice),
        name="income",
        version="1",
        artifact=str(store_bytes(acme, alice, sio.dumps(model), "income.skops").pk),
        datasets=["adult@v1"],
    )
    predicted = model.predict(frame[FEATURES])
    job = _store_assessment(version, frame, predicted, ["sex"])
    # What fairlearn itself measures on the model's predictions: the gate must report these numbers.
    measured = {
        "demographic_parity_difference": demographic_parity_difference(
            frame["label"], predicted, sensitive_features=frame["sex"]
        ),
        "demographic_parity_ratio": demographic_parity_ratio(
            frame["label"], predicted, sensitive_features=frame["sex"]
        ),
    }
    return {"version": version, "job": job, "measured": measured, "frame": frame, "predicted": predicted}


def _store_assessment(version, frame, predicted, sensitive: list[str]) -> Job:
    """The worker's fairness step (explain.services): the model's predictions assessed with fairlearn's
    metrics and bootstrap intervals, stored as a succeeded job's result."""
    result = assess(frame["label"].to_numpy(), predicted, frame[sensitive], resamples=200, seed=0)
    dataset = Node.objects.get(workspace=version.node.workspace, kind="DatasetVersion", key="adult@v1")
    return Job.objects.create(
        workspace=version.node.workspace,
        kind=JobKind.FAIRNESS,
        state=JobState.SUCCEEDED,
        model_node=version.node,
        dataset_node=dataset,
        model_artifact_id=version.node.artifact_id,
        dataset_artifact_id=dataset.artifact_id,
        params={"features": FEATURES, "target": "label", "sensitive_features": sensitive},
        backend="cpu",
        result={**result, "compute_s": 0.1},
        finished_at=timezone.now(),
    )


def _gate(workspace, admin, version, *rules: dict) -> dict[str, dict]:
    """Upload a staging policy of `rules` and evaluate the gate: each rule's outcome by its id."""
    document = {"name": "fairness", "stages": ["staging"], "rules": list(rules)}
    services.policy_upload(workspace=workspace, actor=Actor(user=admin), document=document)
    return {r["rule"]: r for r in gates.evaluate(version, "staging")["rules"]}


def _bound(rule_id: str, metric: str, **bound) -> dict:
    return {"id": rule_id, "type": "fairness_bound", "metric": metric, "sensitive_feature": "sex", **bound}


def test_the_evidence_read_back_is_what_fairlearn_measures(assessed):
    gap = assessed["measured"]["demographic_parity_difference"]
    assert gap == pytest.approx(0.3, abs=0.05)  # the tree learnt the planted rates
    found = latest_fairness_assessment(model_node=assessed["version"].node, sensitive_feature="sex")
    assert found is not None
    assert found.job_id == str(assessed["job"].pk)
    assert found.dataset == "adult@v1"
    parity = found.disparity("demographic_parity_difference")
    assert parity is not None
    assert parity.value == pytest.approx(gap, abs=1e-12)
    assert parity.low < gap < parity.high
    assert [g.label for g in found.groups] == ["sex=0", "sex=1"]


def test_a_disparity_within_its_bound_passes(acme, ada, assessed):
    gap = assessed["measured"]["demographic_parity_difference"]
    rules = _gate(acme, ada, assessed["version"], _bound("parity", "demographic_parity_difference", max=0.4))
    parity = rules["parity"]
    assert parity["passed"] is True
    assert parity["reason"] == f"demographic_parity_difference for sex is {gap:.4g}"
    assert parity["evidence"]["job"] == str(assessed["job"].pk)
    assert parity["evidence"]["value"] == pytest.approx(gap, abs=1e-12)
    assert parity["evidence"]["low"] < gap < parity["evidence"]["high"]
    assert parity["evidence"]["sensitive_features"] == ["sex"]


def test_a_disparity_beyond_its_bound_fails_naming_the_value_and_the_bound(acme, ada, assessed):
    gap = assessed["measured"]["demographic_parity_difference"]
    ratio = assessed["measured"]["demographic_parity_ratio"]
    rules = _gate(
        acme,
        ada,
        assessed["version"],
        _bound("parity", "demographic_parity_difference", max=0.1),
        _bound("ratio", "demographic_parity_ratio", min=0.8),
    )
    assert rules["parity"]["passed"] is False
    assert rules["parity"]["reason"] == f"demographic_parity_difference for sex is {gap:.4g}, above 0.1"
    assert rules["ratio"]["passed"] is False
    assert rules["ratio"]["reason"] == f"demographic_parity_ratio for sex is {ratio:.4g}, below 0.8"
    assert rules["ratio"]["evidence"]["value"] == pytest.approx(ratio, abs=1e-12)


def test_with_use_interval_the_whole_interval_must_be_within_the_bound(acme, ada, assessed):
    evidence = _gate(
        acme, ada, assessed["version"], _bound("probe", "demographic_parity_difference", max=1.0)
    )["probe"]["evidence"]
    value, high = evidence["value"], evidence["high"]
    between = (value + high) / 2  # the point estimate is within it, the interval's top is not
    rules = _gate(
        acme,
        ada,
        assessed["version"],
        _bound("point", "demographic_parity_difference", max=between),
        _bound("interval", "demographic_parity_difference", max=between, use_interval=True),
    )
    assert rules["point"]["passed"] is True
    assert rules["interval"]["passed"] is False
    assert rules["interval"]["reason"].startswith(
        f"demographic_parity_difference for sex is {high:.4g}, above"
    )


def test_a_bound_needs_an_assessment_by_its_feature_and_of_its_kind(acme, ada, assessed):
    rules = _gate(
        acme,
        ada,
        assessed["version"],
        {
            "id": "by-race",
            "type": "fairness_bound",
            "metric": "demographic_parity_difference",
            "sensitive_feature": "race",
            "max": 0.1,
        },
        _bound("regression", "mean_absolute_error_difference", max=0.1),
    )
    assert (rules["by-race"]["passed"], rules["by-race"]["reason"]) == (
        False,
        "no fairness assessment of this version covers 'race'",
    )
    assert (rules["regression"]["passed"], rules["regression"]["reason"]) == (
        False,
        "the classification assessment does not measure mean_absolute_error_difference",
    )


def test_an_assessment_of_a_single_group_cannot_pass_a_bound(acme, ada, assessed):
    frame = assessed["frame"].assign(country="NL")  # everyone in one group: no gap can be measured
    job = _store_assessment(assessed["version"], frame, assessed["predicted"], ["country"])
    rule = _bound("country", "demographic_parity_difference", max=0.1) | {"sensitive_feature": "country"}
    outcome = _gate(acme, ada, assessed["version"], rule)["country"]
    assert (outcome["passed"], outcome["reason"]) == (
        False,
        "the assessment could not measure demographic_parity_difference (too few groups)",
    )
    assert outcome["evidence"] == {"job": str(job.pk)}


def test_passed_through_requires_an_earlier_promotion_to_each_named_stage(
    acme, ada, alice, registered, reviewers
):
    """Nothing goes from no stage straight to production when a policy says staging comes first."""
    reviewer = reviewers[0]
    production = {
        "name": "production",
        "stages": ["production"],
        "rules": [{"id": "via-staging", "type": "passed_through", "stages": ["staging"]}],
    }
    services.policy_upload(workspace=acme, actor=Actor(user=ada), document=production)
    staging = {"name": "staging", "stages": ["staging"], "rules": [{"type": "approvals", "count": 1}]}
    services.policy_upload(workspace=acme, actor=Actor(user=ada), document=staging)

    rule = {r["rule"]: r for r in gates.evaluate(registered, "production")["rules"]}["via-staging"]
    assert rule["passed"] is False
    assert rule["reason"] == "it has not been promoted to staging before"
    assert rule["evidence"]["missing"] == ["staging"]

    request = services.promotion_request(
        workspace=acme, actor=Actor(user=alice), version=registered, stage="staging"
    )
    reviewed, _ = services.review(
        workspace=acme, actor=Actor(user=reviewer), request_id=request.pk, approve=True, comment="fine"
    )
    assert reviewed.state == "completed"
    registered.refresh_from_db()
    rule = {r["rule"]: r for r in gates.evaluate(registered, "production")["rules"]}["via-staging"]
    assert rule["passed"] is True
    assert rule["evidence"]["entered_by_request"] == {"staging": str(request.pk)}


def test_passed_through_names_only_real_stages(acme, ada):
    from core.errors import ApplicationError

    bad = {"name": "p", "stages": ["production"], "rules": [{"type": "passed_through", "stages": ["qa"]}]}
    with pytest.raises(ApplicationError) as error:
        services.policy_upload(workspace=acme, actor=Actor(user=ada), document=bad)
    assert error.value.errors[0].field.startswith("rules.0.stages")
