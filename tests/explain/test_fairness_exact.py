"""The assessment's numbers are fairlearn's, to 1e-12, wherever fairlearn gives a number: on random
labels, predictions, weights and group layouts (empty confusion cells, single-row groups, groups
with no positives or no negatives), by group and between groups; reference groups, minimum group
sizes, and intervals that keep their estimate."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explain.evidence import CLASSIFICATION_METRICS, REGRESSION_METRICS
from explain.fairness import assess, metricframe_by_group

FAIRLEARN_DISPARITIES = {
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": demographic_parity_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
    "equal_opportunity_difference": equal_opportunity_difference,
    "equal_opportunity_ratio": equal_opportunity_ratio,
}
EXAMPLES = 500


@st.composite
def cases(draw, task: str = "classification"):
    """Rows in 2 to 6 groups of 1 to 40 rows (single-row groups included), labels and predictions
    skewed so that groups with no positives, no negatives or nothing predicted are common, with or
    without positive sample weights. (With one group fairlearn reports a difference of 0; the
    assessment reports none: nothing was compared. Tested on its own below.)"""
    sizes = draw(st.lists(st.integers(1, 40), min_size=2, max_size=6))
    rows = sum(sizes)
    group = np.repeat(np.arange(len(sizes)), sizes)
    if task == "classification":
        truth_rate = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
        pred_rate = draw(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]))
        seed = draw(st.integers(0, 2**31))
        rng = np.random.default_rng(seed)
        y_true = (rng.random(rows) < truth_rate).astype(int)
        y_pred = (rng.random(rows) < pred_rate).astype(int)
        # Flip a few so that not every group is uniform.
        flips = draw(st.lists(st.integers(0, rows - 1), max_size=5))
        y_pred[flips] = 1 - y_pred[flips]
    else:
        seed = draw(st.integers(0, 2**31))
        rng = np.random.default_rng(seed)
        y_true = rng.normal(size=rows).round(draw(st.sampled_from([0, 2, 6])))
        y_pred = y_true + rng.normal(size=rows) * draw(st.sampled_from([0.0, 0.1, 1.0]))
    weights = None
    if draw(st.booleans()):
        weights = np.random.default_rng(seed + 1).uniform(0.1, 5.0, rows)
    return y_true, y_pred, pd.DataFrame({"g": [f"g{i}" for i in group]}), weights


def _close(ours, theirs) -> bool:
    if isinstance(theirs, np.ndarray):  # fairlearn answers some one-row groups as a 1-element array
        theirs = theirs.item()
    if theirs is None or (isinstance(theirs, float) and not math.isfinite(theirs)):
        return True  # fairlearn gives no number here
    return ours is not None and abs(ours - float(theirs)) <= 1e-12


@pytest.mark.pure
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_by_group_metrics_and_disparities_equal_fairlearns(case):
    y_true, y_pred, sensitive, weights = case
    result = assess(y_true, y_pred, sensitive, resamples=0, min_group_size=1, sample_weight=weights)
    frame = metricframe_by_group(y_true, y_pred, sensitive, "classification", weights)
    groups = {g["group"]: g for g in result["groups"]}
    for label, row in frame.iterrows():
        ours = groups[f"g={label}"]["metrics"]
        for name in CLASSIFICATION_METRICS:
            assert _close(ours[name]["value"], row[name]), (label, name, ours[name], row[name])
    if frame.map(lambda v: isinstance(v, np.ndarray)).to_numpy().any():
        # fairlearn 0.13 answers a weighted one-row group's rate as a one-element array, and its
        # differences then leave that group out: its between-group number is not the groups' own.
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fairlearn in FAIRLEARN_DISPARITIES.items():
            theirs = fairlearn(y_true, y_pred, sensitive_features=sensitive["g"], sample_weight=weights)
            assert _close(result["disparities"][name]["value"], theirs), (
                name,
                result["disparities"][name],
                theirs,
            )


@pytest.mark.pure
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases("regression"))
def test_regression_metrics_by_group_equal_scikit_learns(case):
    y_true, y_pred, sensitive, weights = case
    result = assess(
        y_true, y_pred, sensitive, task="regression", resamples=0, min_group_size=1, sample_weight=weights
    )
    frame = metricframe_by_group(y_true, y_pred, sensitive, "regression", weights)
    groups = {g["group"]: g for g in result["groups"]}
    for label, row in frame.iterrows():
        for name in REGRESSION_METRICS:
            ours = groups[f"g={label}"]["metrics"][name]["value"]
            theirs = row[name]
            if theirs is not None and math.isfinite(theirs):
                assert ours is not None
                assert abs(ours - theirs) <= 1e-12 * max(1.0, abs(theirs)), (label, name, ours, theirs)


def test_a_rate_without_a_denominator_says_so_for_its_group():
    y_true = np.array([1, 1, 0, 0, 0, 0])
    y_pred = np.array([1, 0, 1, 0, 0, 0])
    sensitive = pd.DataFrame({"g": ["a", "a", "a", "b", "b", "b"]})  # b: no positives, nothing predicted
    result = assess(y_true, y_pred, sensitive, resamples=0, min_group_size=1)
    b = next(g for g in result["groups"] if g["group"] == "g=b")
    assert b["metrics"]["recall"]["value"] == 0.0  # fairlearn's number...
    assert "no actual positives" in b["metrics"]["recall"]["undefined"]  # ...and why
    assert "no actual positives" in b["metrics"]["false_negative_rate"]["undefined"]
    assert "nothing predicted positive" in b["metrics"]["precision"]["undefined"]
    assert "undefined" not in b["metrics"]["false_positive_rate"]
    assert (b["positives"], b["predicted_positives"], b["size"]) == (0, 0, 3)
    # fairlearn's equalized odds counts b's true-positive rate as 0: the gap is a's 0.5.
    assert result["disparities"]["equalized_odds_difference"]["value"] == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive["g"]), abs=1e-12
    )


def _two_large_two_tiny(seed: int = 0):
    """Two groups of 4,000 with selection rates 0.40 and 0.30 (true parity gap 0.10), and two groups
    of 3 rows whose rates are 1.0 and 0.0."""
    rng = np.random.default_rng(seed)
    n = 4000
    groups = np.array(["a"] * n + ["b"] * n + ["tiny1"] * 3 + ["tiny2"] * 3)
    rate = np.where(groups == "a", 0.40, np.where(groups == "b", 0.30, np.where(groups == "tiny1", 1.0, 0.0)))
    y_pred = (rng.random(len(groups)) < rate).astype(int)
    y_true = (rng.random(len(groups)) < 0.5).astype(int)
    return y_true, y_pred, pd.DataFrame({"g": groups})


def test_small_groups_are_left_out_of_the_headline_and_listed():
    y_true, y_pred, sensitive = _two_large_two_tiny()
    result = assess(y_true, y_pred, sensitive, resamples=400, min_group_size=30, seed=1)
    parity = result["disparities"]["demographic_parity_difference"]
    assert parity["low"] <= 0.10 <= parity["high"]
    assert parity["low"] <= parity["value"] <= parity["high"]
    assert abs(parity["value"] - 0.10) < 0.04
    assert {(e["group"], e["size"]) for e in result["excluded"]} == {("g=tiny1", 3), ("g=tiny2", 3)}
    large = sensitive["g"].isin(["a", "b"]).to_numpy()
    assert parity["value"] == pytest.approx(
        demographic_parity_difference(y_true[large], y_pred[large], sensitive_features=sensitive["g"][large]),
        abs=1e-12,
    )
    # Counting every group, the tiny ones decide the number (1.0 - 0.0).
    everyone = assess(y_true, y_pred, sensitive, resamples=0, min_group_size=1)
    assert everyone["disparities"]["demographic_parity_difference"]["value"] == 1.0
    assert result["reference"] == {"group": "g=a", "chosen": "largest group", "eligible": True}


def test_pairwise_differences_with_the_reference_equal_fairlearns_on_the_two_groups():
    y_true, y_pred, sensitive = _two_large_two_tiny()
    result = assess(y_true, y_pred, sensitive, resamples=100, min_group_size=30, reference_group={"g": "b"})
    assert result["reference"]["group"] == "g=b"
    for entry in result["groups"]:
        if entry["reference"]:
            assert "pairwise" not in entry
            continue
        pair = sensitive["g"].isin(["b", entry["values"]["g"]]).to_numpy()
        for name, fairlearn in FAIRLEARN_DISPARITIES.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = fairlearn(y_true[pair], y_pred[pair], sensitive_features=sensitive["g"][pair])
            assert _close(entry["pairwise"][name]["value"], theirs), (entry["group"], name)
        selection = entry["versus_reference"]["selection_rate"]["difference"]
        own = entry["metrics"]["selection_rate"]["value"]
        reference = next(g for g in result["groups"] if g["reference"])["metrics"]["selection_rate"]["value"]
        assert selection["value"] == pytest.approx(own - reference, abs=1e-12)
        assert selection["low"] <= selection["value"] <= selection["high"] or "interval_note" in selection


def test_intersectional_reference_groups_and_a_missing_one():
    rng = np.random.default_rng(3)
    n = 600
    sensitive = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "race": rng.choice(["x", "y"], n)})
    y = rng.integers(0, 2, n)
    result = assess(y, y, sensitive, resamples=0, reference_group={"sex": "M", "race": "y"})
    assert result["reference"]["group"] == "sex=M, race=y"
    assert (
        assess(y, y, sensitive, resamples=0, reference_group="sex=F, race=x")["reference"]["group"]
        == "sex=F, race=x"
    )
    from explain.fairness import FairnessInputError

    with pytest.raises(FairnessInputError, match="is not among the groups"):
        assess(y, y, sensitive, resamples=0, reference_group={"sex": "X", "race": "y"})
    with pytest.raises(FairnessInputError, match="a value for each sensitive feature"):
        assess(y, y, sensitive, resamples=0, reference_group={"sex": "M"})


def _intervals(result):
    yield from result["disparities"].values()
    for group in result["groups"]:
        yield from group["metrics"].values()
        for pair in group.get("versus_reference", {}).values():
            yield pair["difference"]
            yield pair["ratio"]
        yield from group.get("pairwise", {}).values()


def test_every_interval_contains_its_estimate_or_says_why_in_200_random_assessments():
    checked = flagged = 0
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        n = int(rng.integers(40, 400))
        k = int(rng.integers(2, 5))
        sensitive = pd.DataFrame(
            {"g": rng.choice([f"g{i}" for i in range(k)], n, p=rng.dirichlet(np.ones(k)))}
        )
        y_true = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(int)
        y_pred = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(int)
        weights = rng.uniform(0.5, 2, n) if seed % 4 == 0 else None
        result = assess(
            y_true, y_pred, sensitive, resamples=100, min_group_size=10, seed=seed, sample_weight=weights
        )
        for item in _intervals(result):
            if item["value"] is None or item.get("low") is None:
                continue
            checked += 1
            inside = item["low"] - 1e-12 <= item["value"] <= item["high"] + 1e-12
            assert inside or "interval_note" in item, item
            flagged += not inside
    assert checked > 10_000
    assert flagged < checked * 0.01  # the note is for the rare edge, not the rule


def test_one_group_measures_no_disparity():
    y = np.array([1, 0, 1, 1])
    result = assess(y, y, pd.DataFrame({"g": ["a"] * 4}), resamples=0, min_group_size=1)
    assert all(item["value"] is None for item in result["disparities"].values())
    assert "no disparity can be measured" in " ".join(result["warnings"])
