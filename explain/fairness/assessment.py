"""A fairness assessment: by-group metrics with intervals, each group against a reference group, and
the headline disparities over the groups large enough to count.

Bootstrap replicates come from counts, not copies of the data. Unweighted classification: resampling
n rows with replacement gives every (group, confusion cell) a multinomial count with the observed
cell shares, so a replicate is one multinomial draw over a few dozen cells whatever the number of
rows (exactly the row bootstrap). With sample weights, or for regression, each row is weighted by a
Poisson(1) draw (the Poisson bootstrap) and the per-group sums are taken again.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from explain.fairness import metrics as m
from explain.fairness.groups import FairnessInputError, Groups, groups_of, reference_index
from explain.fairness.intervals import METHOD, OUTSIDE, bc_intervals


def _weights(sample_weight: Any, rows: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight, dtype=np.float64)
    if weight.shape != (rows,) or not np.all(np.isfinite(weight)) or np.any(weight < 0):
        raise FairnessInputError("sample weights must be one finite, non-negative number per row")
    return weight


def _replicates(
    task: str,
    truth: np.ndarray,
    predicted: np.ndarray,
    groups: Groups,
    weight: np.ndarray | None,
    resamples: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray] | None:
    """Each metric (resamples, groups) over bootstrap replicates of the rows."""
    n_groups = len(groups.labels)
    if not resamples:
        return None
    if task == "classification" and weight is None:
        counts = m.confusion_counts(truth, predicted, groups.index, n_groups)
        flat = counts.ravel()
        draws = rng.multinomial(int(flat.sum()), flat / flat.sum(), size=resamples)
        return m.classification_metrics(draws.reshape(resamples, n_groups, 4).astype(np.float64))
    base = np.ones(len(truth)) if weight is None else weight
    samples = []
    for _ in range(resamples):
        w = base * rng.poisson(1.0, len(truth))
        if task == "classification":
            samples.append(
                m.classification_metrics(m.confusion_counts(truth, predicted, groups.index, n_groups, w))
            )
        else:
            samples.append(m.regression_metrics(truth, predicted, groups.index, n_groups, w))
    return {name: np.stack([s[name] for s in samples]) for name in samples[0]}


class _Estimates:
    """Point values with their replicates, turned into {value, low, high} with the BC method."""

    def __init__(self, level: float):
        self.level = level

    def items(self, value: np.ndarray, replicates: np.ndarray | None) -> list[dict[str, Any]]:
        value = np.atleast_1d(np.asarray(value, dtype=np.float64))
        if replicates is None:
            return [{"value": v} for v in value]
        low, high, contains = bc_intervals(replicates.reshape(len(replicates), -1), value, self.level)
        out = []
        for v, lo, hi, ok in zip(value, low, high, contains, strict=True):
            item: dict[str, Any] = {"value": v, "low": lo, "high": hi}
            if not ok:
                item["interval_note"] = OUTSIDE
            out.append(item)
        return out


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
    reference_group: Mapping[str, Any] | str | None = None,
    sample_weight: Any = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The whole assessment as a JSON-ready dict: groups (size, positives, metrics with intervals,
    the difference and ratio to the reference group, the disparities between the pair), the headline
    disparities over the groups with at least `min_group_size` rows, the groups left out and why,
    warnings and a plotly figure. Every number agrees with fairlearn's for the same rows."""
    groups = groups_of(sensitive)
    n_groups = len(groups.labels)
    weight = _weights(sample_weight, len(groups.index))
    sizes = np.bincount(groups.index, minlength=n_groups)
    eligible = sizes >= min_group_size
    ref = reference_index(groups, sizes, reference_group)
    names = m.metric_names(task)
    rng = np.random.default_rng(seed)

    if task == "classification":
        truth = np.asarray(y_true) == positive_label
        predicted = np.asarray(y_pred) == positive_label
        counts = m.confusion_counts(truth, predicted, groups.index, n_groups, weight)
        point = m.classification_metrics(counts)
        undefined = m.undefined_rates(counts)
        disparities_of = m.classification_disparities
    else:
        truth = np.asarray(y_true, dtype=np.float64)
        predicted = np.asarray(y_pred, dtype=np.float64)
        point = m.regression_metrics(
            truth, predicted, groups.index, n_groups, np.ones(len(truth)) if weight is None else weight
        )
        undefined = {}
        disparities_of = m.regression_disparities
    boot = _replicates(task, truth, predicted, groups, weight, resamples, rng)
    estimates = _Estimates(level)

    warnings_out = [
        f"group {label!r} has {int(size)} rows, fewer than {min_group_size} (min_group_size): it is left out "
        "of the headline disparities, and its metrics are unreliable"
        for label, size in zip(groups.labels, sizes, strict=True)
        if size < min_group_size
    ]
    if eligible.sum() < 2:
        warnings_out.append(
            f"fewer than two groups have at least {min_group_size} rows: no disparity can be measured"
        )
    if not eligible[ref]:
        warnings_out.append(
            f"the reference group {groups.labels[ref]!r} has fewer than {min_group_size} rows"
        )

    headline = disparities_of(point, eligible)
    boot_headline = disparities_of(boot, eligible) if boot is not None else None
    disparities = {
        name: estimates.items(
            headline[name], None if boot_headline is None else boot_headline[name][:, None]
        )[0]
        for name in headline
    }

    by_group = _by_group(
        task, groups, sizes, eligible, ref, point, boot, undefined, estimates, truth, predicted
    )
    result = {
        "task": task,
        "sensitive_features": groups.columns,
        "rows": len(groups.index),
        "weighted": weight is not None,
        "min_group_size": min_group_size,
        "reference": {
            "group": groups.labels[ref],
            "chosen": "given" if reference_group not in (None, "", {}) else "largest group",
            "eligible": bool(eligible[ref]),
        },
        "groups": by_group,
        "excluded": [
            {
                "group": label,
                "size": int(size),
                "reason": f"fewer than {min_group_size} rows (min_group_size)",
            }
            for label, size in zip(groups.labels, sizes, strict=True)
            if size < min_group_size
        ],
        "disparities": disparities,
        "bootstrap": {
            "resamples": resamples,
            "level": level,
            "seed": seed,
            "method": (
                "multinomial cell counts"
                if task == "classification" and weight is None
                else "poisson weights"
            ),
            "interval": METHOD,
        },
        "warnings": warnings_out,
        # Key order is lost where the result is stored as jsonb (PostgreSQL): readers print in this one.
        "order": {"metrics": list(names), "disparities": list(disparities)},
    }
    result["figure"] = fairness_figure(result)
    return clean(result)


def _by_group(task, groups, sizes, eligible, ref, point, boot, undefined, estimates, truth, predicted):
    """Each group's entry: size, positives, metrics with intervals (and why a rate is undefined),
    and, but for the reference group, how it compares with the reference."""
    names = m.metric_names(task)
    metric_items = {
        name: estimates.items(point[name], None if boot is None else boot[name]) for name in names
    }
    versus = _versus_reference(names, ref, point, boot, estimates)
    pairwise = _pairwise(task, ref, point, boot, estimates)
    out = []
    value_maps = groups.value_maps()
    for g, label in enumerate(groups.labels):
        entry: dict[str, Any] = {
            "group": label,
            "values": value_maps[g],
            "size": int(sizes[g]),
            "eligible": bool(eligible[g]),
            "reference": g == ref,
            "metrics": {name: _metric_item(name, metric_items[name][g], undefined, g) for name in names},
        }
        if task == "classification":
            members = groups.index == g
            entry["positives"] = int(np.count_nonzero(truth[members]))
            entry["predicted_positives"] = int(np.count_nonzero(predicted[members]))
        if g != ref:
            entry["versus_reference"] = {
                name: {"difference": versus[name][0][g], "ratio": versus[name][1][g]} for name in versus
            }
            if pairwise:
                entry["pairwise"] = {name: pairwise[name][g] for name in pairwise}
        out.append(entry)
    return out


def _metric_item(name: str, item: Mapping[str, Any], undefined, g: int) -> dict[str, Any]:
    """One group's value of one metric, saying why it is undefined where it is."""
    out = dict(item)
    if name in undefined and undefined[name][g]:
        out["undefined"] = m.UNDEFINED_BY[name]
    return out


def _versus_reference(names, ref, point, boot, estimates) -> dict[str, tuple[list, list]]:
    """Each group against the reference: per metric the difference and the ratio, with intervals."""
    versus: dict[str, tuple[list, list]] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name in names:
            diff = point[name] - point[name][ref]
            ratio = np.where(point[name][ref] != 0, point[name] / point[name][ref], np.nan)
            boot_diff = boot_ratio = None
            if boot is not None:
                boot_diff = boot[name] - boot[name][:, ref : ref + 1]
                reference = boot[name][:, ref : ref + 1]
                boot_ratio = np.where(
                    reference != 0, boot[name] / np.where(reference != 0, reference, 1), np.nan
                )
            versus[name] = (estimates.items(diff, boot_diff), estimates.items(ratio, boot_ratio))
    return versus


def _pairwise(task, ref, point, boot, estimates) -> dict[str, list]:
    """Classification only: the disparities between each group and the reference (what fairlearn
    says of the two groups' rows alone)."""
    if task != "classification":
        return {}
    values = m.pair_disparities(point, ref)
    boot_values = m.pair_disparities(boot, ref) if boot is not None else None
    return {
        name: estimates.items(value, None if boot_values is None else boot_values[name])
        for name, value in values.items()
    }


def metricframe_by_group(
    y_true, y_pred, sensitive: pd.DataFrame, task: str, sample_weight: np.ndarray | None = None
) -> pd.DataFrame:
    """fairlearn's MetricFrame over the same metrics, with fairlearn's and scikit-learn's own
    functions and defaults: the reference the assessment's numbers are checked against."""
    from fairlearn import metrics as flm  # noqa: PLC0415 - 0.5 s to import; only this reference uses it

    if task == "classification":
        fns = {
            "selection_rate": flm.selection_rate,
            "accuracy": skm.accuracy_score,
            "balanced_accuracy": skm.balanced_accuracy_score,
            "precision": skm.precision_score,
            "recall": skm.recall_score,
            "false_positive_rate": flm.false_positive_rate,
            "false_negative_rate": flm.false_negative_rate,
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
        # Rates without a denominator: scikit-learn warns and answers 0, per group.
        warnings.simplefilter("ignore")
        frame = flm.MetricFrame(
            metrics=fns, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive, sample_params=params
        )
        return frame.by_group


def clean(value: Any) -> Any:
    """JSON-safe values: NaN and infinities become None, NumPy scalars and arrays Python ones."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        # fairlearn answers some metrics of a group made of one weighted row as a one-element array
        return clean(value.item() if value.size == 1 else value.tolist())
    return value


def fairness_figure(result: dict[str, Any]) -> dict[str, Any]:
    """A plotly figure (as JSON): each metric by group with its interval as error bars, and each
    group's size in its label."""
    labels = [f"{g['group']} (n={g['size']})" for g in result["groups"]]
    traces = []
    names = result["order"]["metrics"]
    for name in names:
        items = [g["metrics"][name] for g in result["groups"]]
        trace: dict[str, Any] = {"type": "bar", "name": name, "x": labels, "y": [i["value"] for i in items]}
        if items and "low" in items[0]:
            trace["error_y"] = {
                "type": "data",
                "symmetric": False,
                "array": [_gap(i.get("high"), i["value"]) for i in items],
                "arrayminus": [_gap(i["value"], i.get("low")) for i in items],
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


def _gap(a: Any, b: Any) -> float | None:
    if a is None or b is None or not (np.isfinite(a) and np.isfinite(b)):
        return None
    return max(float(a) - float(b), 0.0)
