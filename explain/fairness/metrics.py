"""Fairness metrics as fairlearn and scikit-learn define them, computed from per-group sums.

Classification metrics are functions of each group's (weighted) confusion counts TP, FP, TN, FN, so
they are computed from those counts, for the data and for each bootstrap replicate alike. They follow
fairlearn and scikit-learn exactly, including where a rate has no denominator: fairlearn's
true- and false-positive rates, scikit-learn's recall and precision all count such a rate as 0 (with
a warning). The value is kept as fairlearn gives it, so that disparities equal fairlearn's, and
`undefined` says for which groups and why. Regression metrics use per-group weighted sums.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from explain.evidence import (
    CLASSIFICATION_DISPARITIES,
    CLASSIFICATION_METRICS,
    REGRESSION_DISPARITIES,
    REGRESSION_METRICS,
)

TP, FP, TN, FN = range(4)

# Why a rate has no denominator in a group (the rate is then 0, as fairlearn and scikit-learn say).
NO_POSITIVES = "no actual positives in this group: the rate has no denominator (fairlearn counts it as 0)"
NO_NEGATIVES = "no actual negatives in this group: the rate has no denominator (fairlearn counts it as 0)"
NO_PREDICTED = (
    "nothing predicted positive in this group: precision has no denominator (scikit-learn counts it as 0)"
)
UNDEFINED_BY: dict[str, str] = {
    "recall": NO_POSITIVES,
    "false_negative_rate": NO_POSITIVES,
    "false_positive_rate": NO_NEGATIVES,
    "precision": NO_PREDICTED,
}


def confusion_counts(
    y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, n_groups: int, weight: np.ndarray | None = None
) -> np.ndarray:
    """(groups, 4): the (weighted) TP, FP, TN, FN of each group, for boolean labels."""
    cell = np.where(y_pred, np.where(y_true, TP, FP), np.where(y_true, FN, TN))
    flat = np.bincount(group * 4 + cell, weights=weight, minlength=n_groups * 4)
    return flat.reshape(n_groups, 4).astype(np.float64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, empty: float) -> np.ndarray:
    """numerator / denominator, and `empty` where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), empty)


def classification_metrics(counts: np.ndarray) -> dict[str, np.ndarray]:
    """counts (..., groups, 4) -> each metric (..., groups), as fairlearn / scikit-learn compute it."""
    tp, fp, tn, fn = (counts[..., i] for i in range(4))
    positives, negatives, predicted = tp + fn, fp + tn, tp + fp
    total = positives + negatives
    tpr = _ratio(tp, positives, 0.0)
    tnr = _ratio(tn, negatives, 0.0)
    # scikit-learn's balanced accuracy averages the recall of the classes present in y_true.
    classes = (positives > 0).astype(np.float64) + (negatives > 0)
    balanced = _ratio(tpr * (positives > 0) + tnr * (negatives > 0), classes, np.nan)
    return {
        "selection_rate": _ratio(predicted, total, np.nan),
        "accuracy": _ratio(tp + tn, total, np.nan),
        "balanced_accuracy": balanced,
        "precision": _ratio(tp, predicted, 0.0),
        "recall": tpr,
        "false_positive_rate": _ratio(fp, negatives, 0.0),
        "false_negative_rate": _ratio(fn, positives, 0.0),
    }


def undefined_rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """For each rate that can lack a denominator: a boolean (groups,) of the groups where it does."""
    tp, fp, tn, fn = (counts[..., i] for i in range(4))
    return {
        "recall": (tp + fn) <= 0,
        "false_negative_rate": (tp + fn) <= 0,
        "false_positive_rate": (fp + tn) <= 0,
        "precision": (tp + fp) <= 0,
    }


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, n_groups: int, weight: np.ndarray
) -> dict[str, np.ndarray]:
    """Each regression metric by group (groups,), as scikit-learn computes it with sample weights."""
    err = y_pred - y_true
    w_sum = np.bincount(group, weights=weight, minlength=n_groups)
    mean_true = _ratio(np.bincount(group, weights=weight * y_true, minlength=n_groups), w_sum, np.nan)
    sq_err = np.bincount(group, weights=weight * err * err, minlength=n_groups)
    centred = y_true - np.nan_to_num(mean_true)[group]
    total_ss = np.bincount(group, weights=weight * centred * centred, minlength=n_groups)
    rows = np.bincount(group, weights=(weight > 0).astype(np.float64), minlength=n_groups)
    # r2_score: undefined under two samples; with no variance, 1 for a perfect fit and 0 otherwise.
    r2 = np.where(total_ss > 0, 1 - _ratio(sq_err, total_ss, np.nan), np.where(sq_err == 0, 1.0, 0.0))
    return {
        "mean_absolute_error": _ratio(
            np.bincount(group, weights=weight * np.abs(err), minlength=n_groups), w_sum, np.nan
        ),
        "root_mean_squared_error": np.sqrt(_ratio(sq_err, w_sum, np.nan)),
        "r2": np.where(rows >= 2, r2, np.nan),
    }


def between(values: np.ndarray, included: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(largest - smallest, smallest / largest) over the included groups (last axis), as fairlearn's
    MetricFrame.difference() and .ratio() compute them ("between_groups"); NaN with fewer than two."""
    chosen = np.where(included, values, np.nan)
    enough = np.sum(~np.isnan(chosen), axis=-1) >= 2
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: fewer than two groups
        top = np.nanmax(chosen, axis=-1)
        bottom = np.nanmin(chosen, axis=-1)
        ratio = np.where(top > 0, bottom / np.where(top > 0, top, 1), np.nan)
    return np.where(enough, top - bottom, np.nan), np.where(enough, ratio, np.nan)


def _fairlearn_disparities(
    compare: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], metrics: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The five-plus-one fairlearn disparities, from `compare` (a rate -> its difference and ratio):
    demographic parity (selection rates), equalized odds (the worse of the true- and false-positive
    rates, skipping one that is undefined, as fairlearn does) and equal opportunity (true-positive
    rates), named as CLASSIFICATION_DISPARITIES."""
    dp_diff, dp_ratio = compare(metrics["selection_rate"])
    tpr_diff, tpr_ratio = compare(metrics["recall"])
    fpr_diff, fpr_ratio = compare(metrics["false_positive_rate"])
    measured = (
        dp_diff,
        dp_ratio,
        np.fmax(tpr_diff, fpr_diff),
        np.fmin(tpr_ratio, fpr_ratio),
        tpr_diff,
        tpr_ratio,
    )
    return dict(zip(CLASSIFICATION_DISPARITIES, measured, strict=True))


def classification_disparities(metrics: dict[str, np.ndarray], included: np.ndarray) -> dict[str, np.ndarray]:
    """fairlearn's disparities between the included groups."""
    return _fairlearn_disparities(lambda rate: between(rate, included), metrics)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|a - b|, min / max) elementwise: `between` for two groups, without stacking them."""
    top, bottom = np.maximum(a, b), np.minimum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return top - bottom, np.where(top > 0, bottom / np.where(top > 0, top, 1), np.nan)


def pair_disparities(metrics: dict[str, np.ndarray], reference: int) -> dict[str, np.ndarray]:
    """The disparities between each group and the reference group (..., groups): what fairlearn
    reports for the rows of those two groups alone."""
    return _fairlearn_disparities(lambda rate: _pair(rate, rate[..., reference : reference + 1]), metrics)


def regression_disparities(metrics: dict[str, np.ndarray], included: np.ndarray) -> dict[str, np.ndarray]:
    """Each regression metric's largest difference between the included groups."""
    return {
        name: between(metrics[metric], included)[0]
        for name, metric in zip(REGRESSION_DISPARITIES, REGRESSION_METRICS, strict=True)
    }


def metric_names(task: str) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
