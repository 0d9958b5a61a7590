"""Reads of a version's evidence: only succeeded jobs on the version's file count, newest first, and
the request page gets the newest assessment for each set of sensitive features."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from django.utils import timezone
from sklearn.tree import DecisionTreeClassifier

from explain.fairness import assess
from explain.models import Job, JobKind, JobState
from explain.selectors import (
    fairness_assessments_of,
    latest_explanation,
    latest_fairness_assessment,
    latest_fairness_assessments,
)
from lineage.models import Node
from tests.explain.conftest import planted_bias, register, store_bytes

pytestmark = pytest.mark.django_db

FEATURES = ["score", "sex"]


@pytest.fixture
def version(acme, alice):
    """income@1 (a tree on planted-bias data) and its dataset adult@v1, both with their files."""
    frame = planted_bias(600)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame[FEATURES], frame["label"])
    register(acme, alice, model, frame)
    return Node.objects.get(workspace=acme, kind="ModelVersion", key="income@1"), frame


def _job(node, kind, result, *, minutes_ago, state=JobState.SUCCEEDED, artifact_id=None):
    data = Node.objects.get(workspace=node.workspace, kind="DatasetVersion", key="adult@v1")
    return Job.objects.create(
        workspace=node.workspace,
        kind=kind,
        state=state,
        model_node=node,
        dataset_node=data,
        model_artifact_id=artifact_id or node.artifact_id,
        dataset_artifact_id=data.artifact_id,
        result=result,
        finished_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def _assessment(frame: pd.DataFrame, *features: str) -> dict:
    return assess(frame["label"].to_numpy(), frame["label"].to_numpy(), frame[list(features)], resamples=0)


def test_the_newest_assessment_for_each_set_of_sensitive_features(acme, alice, version):
    node, frame = version
    older = _job(node, JobKind.FAIRNESS, _assessment(frame, "sex"), minutes_ago=30)
    newer = _job(node, JobKind.FAIRNESS, _assessment(frame, "sex"), minutes_ago=20)
    both = _job(node, JobKind.FAIRNESS, _assessment(frame, "sex", "race"), minutes_ago=10)
    _job(node, JobKind.FAIRNESS, _assessment(frame, "race"), minutes_ago=1, state=JobState.FAILED)
    decoy = store_bytes(acme, alice, b"other bytes", "decoy.skops")
    _job(node, JobKind.FAIRNESS, _assessment(frame, "race"), minutes_ago=0, artifact_id=decoy.pk)

    assert [a.job_id for a in fairness_assessments_of(model_node=node)] == [
        str(both.pk),
        str(newer.pk),
        str(older.pk),
    ]
    latest = latest_fairness_assessments(model_node=node)
    assert [(a.sensitive_features, a.job_id) for a in latest] == [
        (("sex",), str(newer.pk)),
        (("sex", "race"), str(both.pk)),
    ]
    assert latest[0].dataset == "adult@v1"
    by_race = latest_fairness_assessment(model_node=node, sensitive_feature="race")
    assert by_race is not None
    assert by_race.job_id == str(both.pk)  # the failed one and the one on other bytes do not count
    newest = latest_fairness_assessment(model_node=node)
    assert newest is not None
    assert newest.job_id == str(both.pk)
    assert latest_fairness_assessment(model_node=node, sensitive_feature="age") is None


def test_the_latest_explanation_carries_its_backend(version):
    node, _ = version
    assert latest_explanation(model_node=node) is None
    _job(node, JobKind.EXPLANATION, {"rows": 10, "top_features": ["sex"]}, minutes_ago=5)
    job = _job(node, JobKind.EXPLANATION, {"rows": 600, "top_features": ["score", "sex"]}, minutes_ago=1)
    Job.objects.filter(pk=job.pk).update(backend="cpu", backend_detail="shap.TreeExplainer")
    found = latest_explanation(model_node=node)
    assert found is not None
    assert (found.job_id, found.rows, found.top(1)) == (str(job.pk), 600, ("score",))
    assert (found.backend, found.backend_detail, found.dataset) == ("cpu", "shap.TreeExplainer", "adult@v1")
