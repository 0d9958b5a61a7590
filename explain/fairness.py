"""Fairness assessments: by-group metrics with fairlearn's MetricFrame, disparity measures, and
bootstrap confidence intervals computed from counts rather than from copies of the data.

Classification metrics are functions of each group's confusion counts (TP, FP, TN, FN). Resampling
n rows with replacement gives every (group, cell) a count that is multinomial with the observed
cell shares, so one bootstrap replicate is one multinomial draw over a few dozen cells, whatever
the number of rows: exactly the row bootstrap, without touching the rows again. Regression metrics
are not functions of counts; they use the Poisson bootstrap (each row weighted by a Poisson(1) draw)
with per-group weighted sums.

Several sensitive features at once give intersectional groups ("sex=Female, race=Black").
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# The names are the result's contract, defined once in explain.evidence (which reads results back).
from explain.evidence import (
    CLASSIFICATION_DISPARITIES,
    CLASSIFICATION_METRICS,
    REGRESSION_DISPARITIES,
    REGRESSION_METRICS,
)


@dataclass
class Groups:
    labels: list[str]  # "sex=Female, race=White"
    index: np.ndarray  # int (rows,): each row's group
    columns: list[str]
    values: list[tuple]  # each group's value of every sensitive column


def groups_of(sensitive: pd.DataFrame) -> Groups:
    """Intersectional groups of the sensitive columns, numbered in sorted order of their values."""
    columns = [str(c) for c in sensitive.columns]
    codes, uniques = [], []
    for column in sensitive.columns:
        code, unique = pd.factorize(sensitive[column], sort=True)
        if (code < 0).any():
            raise ValueError(f"sensitive feature {column!r} has missing values")
        codes.append(code.astype(np.int64))
        uniques.append(list(unique))
    combined = np.zeros(len(sensitive), dtype=np.int64)
    for code, unique in zip(codes, uniques, strict=True):
        combined = combined * len(unique) + code
    present, index = np.unique(combined, return_inverse=True)
    values = []
    for key in present:
        parts = []
        for unique in reversed(uniques):
            key, position = divmod(int(key), len(unique))
            parts.append(unique[position])
        values.append(tuple(reversed(parts)))
    labels = [", ".join(f"{c}={v}" for c, v in zip(columns, vs, strict=True)) for vs in values]
    return Groups(labels=labels, index=index.astype(np.int64), columns=columns, values=values)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def classification_metrics(counts: np.ndarray) -> dict[str, np.ndarray]:
    """counts (..., groups, 4) holding TP, FP, TN, FN -> metric arrays (..., groups)."""
    tp, fp, tn, fn = (counts[..., i].astype(np.float64) for i in range(4))
    n = tp + fp + tn + fn
    tpr = _safe_div(tp, tp + fn)
    tnr = _safe_div(tn, tn + fp)
    return {
        "selection_rate": _safe_div(tp + fp, n),
        "accuracy": _safe_div(tp + tn, n),
        "balanced_accuracy": (tpr + tnr) / 2,
        "precision": _safe_div(tp, tp + fp),
        "recall": tpr,
        "false_positive_rate": _safe_div(fp, fp + tn),
        "false_negative_rate": _safe_div(fn, tp + fn),
    }


def _between(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max - min, min / max) across groups (last axis), ignoring undefined groups."""
    with np.errstate(divide="ignore", invalid="ignore"):
        top = np.nanmax(values, axis=-1)
        bottom = np.nanmin(values, axis=-1)
        ratio = np.where(top > 0, bottom / np.where(top > 0, top, 1), np.nan)
    return top - bottom, ratio


def classification_disparities(metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The fairlearn definitions (between groups), from by-group metrics, named as
    CLASSIFICATION_DISPARITIES."""
    dp_diff, dp_ratio = _between(metrics["selection_rate"])
    tpr_diff, tpr_ratio = _between(metrics["recall"])
    fpr_diff, fpr_ratio = _between(metrics["false_positive_rate"])
    measured = (
        dp_diff,  # demographic parity: selection rates
        dp_ratio,
        np.maximum(tpr_diff, fpr_diff),  # equalized odds: true and false positive rates
        np.minimum(tpr_ratio, fpr_ratio),
        tpr_diff,  # equal opportunity: true positive rates
    )
    return dict(zip(CLASSIFICATION_DISPARITIES, measured, strict=True))


def regression_disparities(metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each regression metric's largest difference between groups, named as REGRESSION_DISPARITIES."""
    differences = (_between(metrics[m])[0] for m in REGRESSION_METRICS)
    return dict(zip(REGRESSION_DISPARITIES, differences, strict=True))


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """(groups, 4): TP, FP, TN, FN per group, for boolean labels."""
    cell = np.where(y_pred, np.where(y_true, 0, 1), np.where(y_true, 3, 2))
    flat = np.bincount(group * 4 + cell, minlength=n_groups * 4)
    return flat.reshape(n_groups, 4)


def bootstrap_counts(counts: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, groups, 4): the (group, cell) counts of `resamples` row bootstraps."""
    flat = counts.ravel().astype(np.float64)
    total = int(flat.sum())
    draws = rng.multinomial(total, flat / total, size=resamples)
    return draws.reshape(resamples, *counts.shape)


def _interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1 - level) / 2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups stay NaN
        return np.nanquantile(samples, alpha, axis=0), np.nanquantile(samples, 1 - alpha, axis=0)


def _clean(value: Any) -> Any:
    """JSON-safe values: NaN and infinities become None, NumPy scalars and arrays Python ones."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        # fairlearn answers some metrics of a group made of one weighted row as a one-element array
        return _clean(value.item() if value.size == 1 else value.tolist())
    return value


def metricframe_by_group(
    y_true, y_pred, sensitive: pd.DataFrame, task: str, sample_weight: np.ndarray | None = None
) -> pd.DataFrame:
    """fairlearn's MetricFrame over the same metrics: the point estimates the report shows."""
    from fairlearn.metrics import (
        MetricFrame,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
    )
    from sklearn import metrics as skm

    if task == "classification":
        fns = {
            "selection_rate": selection_rate,
            "accuracy": skm.accuracy_score,
            "balanced_accuracy": skm.balanced_accuracy_score,
            "precision": functools.partial(skm.precision_score, zero_division=np.nan),
            "recall": functools.partial(skm.recall_score, zero_division=np.nan),
            "false_positive_rate": false_positive_rate,
            "false_negative_rate": false_negative_rate,
        }
    else:
        fns = {
            "mean_absolute_error": skm.mean_absolute_error,
            "root_mean_squared_error": skm.root_mean_squared_error,
            "r2": skm.r2_score,
        }
    params = None
    if sample_weight is not None:
        params = {name: {"sample_weight": sample_weight} for name in fns}
    with warnings.catch_warnings():
        # A group with one class only makes some metrics undefined (NaN); sklearn says so per group.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        frame = MetricFrame(
            metrics=fns, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive, sample_params=params
        )
        return frame.by_group


def assess(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sensitive: pd.DataFrame,
    *,
    task: str = "classification",
    positive_label: Any = 1,
    resamples: int = 200,
    level: float = 0.95,
    min_group_size: int = 30,
    seed: int = 0,
) -> dict[str, Any]:
    """The whole assessment as a JSON-ready dict (groups, metrics with intervals, disparities,
    warnings, plotly figure)."""
    groups = groups_of(sensitive)
    n_groups = len(groups.labels)
    sizes = np.bincount(groups.index, minlength=n_groups)
    rng = np.random.default_rng(seed)
    warnings = [
        f"group {label!r} has {int(size)} rows, fewer than {min_group_size}: its metrics are unreliable"
        for label, size in zip(groups.labels, sizes, strict=True)
        if size < min_group_size
    ]
    if n_groups < 2:
        warnings.append("only one group is present: no disparity can be measured")

    if task == "classification":
        truth = np.asarray(y_true) == positive_label
        predicted = np.asarray(y_pred) == positive_label
        counts = confusion_counts(truth, predicted, groups.index, n_groups)
        point = classification_metrics(counts)
        disparities = classification_disparities(point)
        boot_counts = bootstrap_counts(counts, resamples, rng) if resamples else None
        boot = classification_metrics(boot_counts) if boot_counts is not None else None
        boot_disp = classification_disparities(boot) if boot is not None else None
        names = CLASSIFICATION_METRICS
        frame = _metricframe_on_counts(counts, groups)
    else:
        y_t = np.asarray(y_true, dtype=np.float64)
        y_p = np.asarray(y_pred, dtype=np.float64)
        point = _regression_metrics(y_t, y_p, groups.index, n_groups, np.ones(len(y_t)))
        disparities = regression_disparities(point)
        boot = None
        if resamples:
            samples = [
                _regression_metrics(y_t, y_p, groups.index, n_groups, rng.poisson(1.0, len(y_t)))
                for _ in range(resamples)
            ]
            boot = {m: np.stack([s[m] for s in samples]) for m in REGRESSION_METRICS}
        boot_disp = regression_disparities(boot) if boot is not None else None
        names = REGRESSION_METRICS
        frame = metricframe_by_group(y_t, y_p, sensitive, task)

    by_group = []
    for g, label in enumerate(groups.labels):
        entry: dict[str, Any] = {"group": label, "size": int(sizes[g]), "metrics": {}}
        for name in names:
            item = {"value": point[name][g]}
            if boot is not None:
                low, high = _interval(boot[name][:, g], level)
                item.update(low=low, high=high)
            entry["metrics"][name] = item
        by_group.append(entry)
    # Between one group and itself every difference is 0, which would read as "no disparity": the
    # disparities stay unmeasured (null) instead, as the warning says, so no policy bound passes on it.
    measurable = n_groups > 1
    disparity_out: dict[str, dict[str, float | None]] = {}
    for name, value in disparities.items():
        item = {"value": float(value) if measurable else None}
        if boot_disp is not None:
            low, high = _interval(boot_disp[name], level)
            item["low"], item["high"] = (float(low), float(high)) if measurable else (None, None)
        disparity_out[name] = item
    result = {
        "task": task,
        "sensitive_features": groups.columns,
        "rows": len(groups.index),
        "groups": by_group,
        "disparities": disparity_out,
        "bootstrap": {
            "resamples": resamples,
            "level": level,
            "seed": seed,
            "method": "multinomial cell counts" if task == "classification" else "poisson",
        },
        "metricframe": {
            ", ".join(
                f"{c}={v}"
                for c, v in zip(groups.columns, key if isinstance(key, tuple) else (key,), strict=True)
            ): dict(row)
            for key, row in frame.to_dict(orient="index").items()
        },
        "warnings": warnings,
        # Key order is lost where the result is stored as jsonb (PostgreSQL): readers print in this one.
        "order": {"metrics": list(names), "disparities": list(disparity_out)},
    }
    result["figure"] = fairness_figure(result)
    return _clean(result)


def _metricframe_on_counts(counts: np.ndarray, groups: Groups) -> pd.DataFrame:
    """fairlearn's MetricFrame over one weighted row per (group, confusion cell): the same by-group
    values as over every row (each metric takes sample weights), without touching the rows again."""
    group, cell = np.nonzero(counts)
    y_true = np.isin(cell, (0, 3)).astype(int)  # TP, FN
    y_pred = np.isin(cell, (0, 1)).astype(int)  # TP, FP
    sensitive = pd.DataFrame([groups.values[g] for g in group], columns=groups.columns)
    return metricframe_by_group(y_true, y_pred, sensitive, "classification", counts[group, cell])


def _regression_metrics(y_t, y_p, group, n_groups, w) -> dict[str, np.ndarray]:
    err = y_p - y_t
    n = np.bincount(group, weights=w, minlength=n_groups)
    abs_sum = np.bincount(group, weights=w * np.abs(err), minlength=n_groups)
    sq_sum = np.bincount(group, weights=w * err * err, minlength=n_groups)
    y_sum = np.bincount(group, weights=w * y_t, minlength=n_groups)
    y_sq = np.bincount(group, weights=w * y_t * y_t, minlength=n_groups)
    total_ss = y_sq - _safe_div(y_sum * y_sum, n)
    return {
        "mean_absolute_error": _safe_div(abs_sum, n),
        "root_mean_squared_error": np.sqrt(_safe_div(sq_sum, n)),
        "r2": 1 - _safe_div(sq_sum, total_ss),
    }


def fairness_figure(result: dict[str, Any]) -> dict[str, Any]:
    """A plotly figure (as JSON): each metric by group, with its confidence interval as error bars."""
    labels = [g["group"] for g in result["groups"]]
    traces = []
    metrics = list(result["groups"][0]["metrics"]) if result["groups"] else []
    for name in metrics:
        values = [g["metrics"][name]["value"] for g in result["groups"]]
        trace: dict[str, Any] = {"type": "bar", "name": name, "x": labels, "y": values}
        if "low" in result["groups"][0]["metrics"][name]:
            trace["error_y"] = {
                "type": "data",
                "symmetric": False,
                "array": [g["metrics"][name]["high"] - g["metrics"][name]["value"] for g in result["groups"]],
                "arrayminus": [
                    g["metrics"][name]["value"] - g["metrics"][name]["low"] for g in result["groups"]
                ],
            }
        traces.append(trace)
    return {
        "data": traces,
        "layout": {
            "barmode": "group",
            "title": {"text": "Metrics by group (" + ", ".join(result["sensitive_features"]) + ")"},
            "yaxis": {"title": {"text": "value"}},
        },
    }
