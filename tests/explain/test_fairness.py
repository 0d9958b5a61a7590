"""Fairness metrics: the counts-based metrics and intervals agree with fairlearn, and the bootstrap
intervals behave like intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
)

from explain.fairness import assess, groups_of, metricframe_by_group


@pytest.fixture
def sample():
    rng = np.random.default_rng(5)
    n = 6000
    sex = rng.choice(["Female", "Male"], n)
    race = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])
    y_true = (rng.random(n) < 0.4).astype(int)
    y_pred = (rng.random(n) < np.where(sex == "Male", 0.55, 0.35)).astype(int)
    return y_true, y_pred, pd.DataFrame({"sex": sex, "race": race})


def test_by_group_metrics_equal_fairlearn_metricframe_on_every_row(sample):
    y_true, y_pred, sensitive = sample
    result = assess(y_true, y_pred, sensitive, resamples=0)
    full = metricframe_by_group(y_true, y_pred, sensitive, "classification")
    for (sex, race), row in full.iterrows():
        label = f"sex={sex}, race={race}"
        ours = next(g for g in result["groups"] if g["group"] == label)["metrics"]
        for name, value in row.items():
            assert ours[name]["value"] == pytest.approx(value, abs=1e-12), (label, name)


def test_disparities_equal_fairlearn(sample):
    y_true, y_pred, sensitive = sample
    result = assess(y_true, y_pred, sensitive[["sex"]], resamples=0)["disparities"]
    sex = sensitive["sex"]
    expected = {
        "demographic_parity_difference": demographic_parity_difference(
            y_true, y_pred, sensitive_features=sex
        ),
        "demographic_parity_ratio": demographic_parity_ratio(y_true, y_pred, sensitive_features=sex),
        "equalized_odds_difference": equalized_odds_difference(y_true, y_pred, sensitive_features=sex),
        "equalized_odds_ratio": equalized_odds_ratio(y_true, y_pred, sensitive_features=sex),
    }
    for name, value in expected.items():
        assert result[name]["value"] == pytest.approx(value, abs=1e-12), name


def test_bootstrap_intervals_cover_the_population_value():
    """Population selection rates 0.55 / 0.35: over 40 independent samples, the 95% interval of the
    difference covers 0.2 in most of them (a calibrated interval: about 38 of 40)."""
    covered = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        n = 2000
        sex = rng.integers(0, 2, n)
        y_pred = (rng.random(n) < np.where(sex == 1, 0.55, 0.35)).astype(int)
        result = assess(np.ones(n, dtype=int), y_pred, pd.DataFrame({"sex": sex}), resamples=300, seed=seed)
        parity = result["disparities"]["demographic_parity_difference"]
        covered += parity["low"] <= 0.2 <= parity["high"]
    assert 34 <= covered <= 40


def test_interval_width_shrinks_with_more_rows():
    widths = []
    for n in (1000, 16000):
        rng = np.random.default_rng(0)
        sex = rng.integers(0, 2, n)
        y_pred = (rng.random(n) < 0.5).astype(int)
        parity = assess(y_pred, y_pred, pd.DataFrame({"sex": sex}), resamples=200)["disparities"][
            "demographic_parity_difference"
        ]
        widths.append(parity["high"] - parity["low"])
    assert widths[1] < widths[0] / 2.5  # about 1/sqrt(16) = 1/4


def test_groups_are_intersectional_and_missing_values_refused():
    frame = pd.DataFrame({"sex": ["F", "M", "F"], "race": ["b", "a", "b"]})
    groups = groups_of(frame)
    assert groups.labels == ["sex=F, race=b", "sex=M, race=a"]
    assert groups.index.tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="'sex' has missing values"):
        groups_of(pd.DataFrame({"sex": ["F", None]}))


def test_regression_metrics_by_group():
    rng = np.random.default_rng(2)
    n = 3000
    group = rng.integers(0, 2, n)
    y = rng.normal(size=n)
    noise = np.where(group == 1, 0.5, 0.1)
    result = assess(
        y, y + rng.normal(size=n) * noise, pd.DataFrame({"g": group}), task="regression", resamples=50
    )
    full = metricframe_by_group(y, y + 0, pd.DataFrame({"g": group}), "regression")
    assert set(full.columns) == {"mean_absolute_error", "root_mean_squared_error", "r2"}
    rmse = {g["group"]: g["metrics"]["root_mean_squared_error"] for g in result["groups"]}
    assert rmse["g=0"]["value"] == pytest.approx(0.1, rel=0.1)
    assert rmse["g=1"]["value"] == pytest.approx(0.5, rel=0.1)
    assert rmse["g=1"]["low"] <= rmse["g=1"]["value"] <= rmse["g=1"]["high"]
