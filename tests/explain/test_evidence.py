"""The typed evidence contract: what explain.fairness writes reads back as a FairnessAssessment with
the same numbers, in the order the result gives (PostgreSQL's jsonb loses the keys' order), and older
or partial results read with empty defaults."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from explain.evidence import (
    CLASSIFICATION_DISPARITIES,
    CLASSIFICATION_METRICS,
    REGRESSION_DISPARITIES,
    REGRESSION_METRICS,
    Estimate,
    Explanation,
    FairnessAssessment,
)
from explain.fairness import assess


@pytest.fixture
def sample():
    """Predictions that select men at 0.55 and women at 0.35, labels independent of both."""
    rng = np.random.default_rng(5)
    n = 3000
    sex = rng.choice(["Female", "Male"], n)
    y_true = (rng.random(n) < 0.4).astype(int)
    y_pred = (rng.random(n) < np.where(sex == "Male", 0.55, 0.35)).astype(int)
    return y_true, y_pred, pd.DataFrame({"sex": sex})


def _as_jsonb(result: dict) -> dict:
    """The result as PostgreSQL hands it back: JSON whose objects' keys come in another order."""
    return json.loads(json.dumps(result, sort_keys=True))


def test_an_assessment_reads_back_with_the_numbers_it_was_written_with(sample):
    result = assess(*sample, resamples=100)
    read = FairnessAssessment.from_result(_as_jsonb(result), job_id="j1", dataset="adult@v1")
    assert (read.job_id, read.dataset, read.task, read.rows) == ("j1", "adult@v1", "classification", 3000)
    assert read.sensitive_features == ("sex",)
    assert read.metric_names == CLASSIFICATION_METRICS  # the result's order, not alphabetical
    assert tuple(read.disparities) == CLASSIFICATION_DISPARITIES
    for name, item in result["disparities"].items():
        assert read.disparities[name] == Estimate(item["value"], item["low"], item["high"])
    assert [g.label for g in read.groups] == ["sex=Female", "sex=Male"]
    female = read.groups[0]
    assert female.size == result["groups"][0]["size"]
    assert tuple(female.metrics) == CLASSIFICATION_METRICS
    assert female.metrics["selection_rate"].value == result["groups"][0]["metrics"]["selection_rate"]["value"]
    assert read.bootstrap is not None
    assert (read.bootstrap.resamples, read.bootstrap.level) == (100, 0.95)
    assert read.figure == result["figure"]
    assert read.values_by_group()["sex=Male"]["recall"] == result["groups"][1]["metrics"]["recall"]["value"]
    assert read.disparity_values() == {k: v["value"] for k, v in result["disparities"].items()}


def test_the_summary_line_gives_the_headline_disparity_and_its_interval(sample):
    read = FairnessAssessment.from_result(assess(*sample, resamples=100))
    name, parity = read.headline
    assert name == "demographic_parity_difference"
    assert parity.value == pytest.approx(0.2, abs=0.05)
    assert parity.has_interval
    assert read.summary() == (
        f"3,000 rows by sex: demographic parity difference {parity.value:.3f} "
        f"[{parity.low:.3f}, {parity.high:.3f}]"
    )
    without = FairnessAssessment.from_result(assess(*sample, resamples=0))
    assert not without.disparities["demographic_parity_difference"].has_interval
    assert without.summary().endswith(f"demographic parity difference {parity.value:.3f}")


def test_a_regression_assessment_names_its_metrics_differences():
    rng = np.random.default_rng(1)
    group = rng.choice(["a", "b"], 500)
    y_true = rng.normal(size=500)
    y_pred = y_true + rng.normal(scale=np.where(group == "a", 0.1, 0.5))
    read = FairnessAssessment.from_result(
        _as_jsonb(assess(y_true, y_pred, pd.DataFrame({"g": group}), task="regression", resamples=20))
    )
    assert read.task == "regression"
    assert read.metric_names == REGRESSION_METRICS
    assert tuple(read.disparities) == REGRESSION_DISPARITIES
    assert read.headline is not None
    assert read.headline[0] == "mean_absolute_error_difference"
    assert read.disparity("demographic_parity_difference") is None


def test_one_group_has_no_measurable_disparity():
    read = FairnessAssessment.from_result(
        assess(np.array([1, 0, 1]), np.array([1, 1, 0]), pd.DataFrame({"sex": ["F"] * 3}))
    )
    parity = read.disparity("demographic_parity_difference")
    assert parity is not None
    assert parity.value is None
    assert read.summary() == "3 rows by sex: demographic parity difference not measurable"
    assert any("fewer than two groups" in w for w in read.warnings)


def test_a_partial_result_reads_with_empty_defaults():
    read = FairnessAssessment.from_result(
        {
            "sensitive_features": ["sex", "race"],
            "disparities": {"demographic_parity_difference": {"value": 0.3}},
        }
    )
    assert read.covers("race")
    assert not read.covers("age")
    assert read.features_label == "sex, race"
    assert read.disparities == {"demographic_parity_difference": Estimate(0.3)}
    assert (read.groups, read.warnings, read.bootstrap, read.figure) == ((), (), None, None)


def test_an_explanation_reads_its_importance_and_top_features():
    result = {
        "rows": 2000,
        "features": ["score", "sex", "age"],
        "outputs": 2,
        "output_names": ["0", "1"],
        "expected_value": [0.7, 0.3],
        "additivity_residual": 3.1e-15,
        "importance": {"score": [0.2, 0.2], "sex": [0.05, 0.05], "age": [0.1, 0.1]},
        "top_features": ["score", "age", "sex"],
        "plot_output": 1,
        "figures": {"importance": {"data": []}, "beeswarm": {"data": []}},
    }
    read = Explanation.from_result(_as_jsonb(result), job_id="j2", backend="cpu", backend_detail="shap")
    assert read.top(2) == ("score", "age")
    assert read.importance["age"] == (0.1, 0.1)
    assert (read.plot_output, read.expected_value, read.output_names) == (1, (0.7, 0.3), ("0", "1"))
    assert set(read.figures) == {"importance", "beeswarm"}
    assert read.summary() == "2,000 rows, residual 3.1e-15; top: score, age, sex"
    assert (
        Explanation.from_result({"top_features": ["score"]}).summary()
        == "0 rows, residual unknown; top: score"
    )
