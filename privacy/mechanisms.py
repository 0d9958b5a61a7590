"""Differentially private statistics with OpenDP (its list-based API).

Each statistic is an OpenDP measurement built from the query and the dataset's privacy metadata;
the noise scale is the smallest that keeps the measurement's privacy map at the privacy unit within
the requested epsilon (and delta), found with OpenDP's binary search. The accuracy statement comes
from OpenDP's scale-to-accuracy functions.

- count: rows (integer noise).
- sum: clamped to the column's bounds.
- mean, variance: clamped, resized to the dataset's public row count (OpenDP's sized mean and
  variance need a known size; rows are dropped or imputed with the bounds' midpoint to reach it).
- histogram: counts of a categorical column's public categories (plus one for everything else).
- quantile: OpenDP's private quantile over a grid of candidates within the bounds (exponential
  mechanism, pure DP; no noise scale in value units, so the accuracy statement is the grid step).

Laplace mechanisms give pure epsilon-DP (delta 0). Gaussian mechanisms are zCDP, converted to
(epsilon, delta)-DP at the requested delta.

Group-by: the rows are partitioned on a column whose categories are public (metadata), and the
statistic is released per group with the same scale. The cost is that of one release: each person's
rows change at most privacy_unit rows in total across the groups, and the Laplace privacy map is
linear in that change (and the Gaussian's zCDP map superadditive), so the per-group losses add up to
at most the loss of one release at the privacy unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

STATISTICS = ("count", "sum", "mean", "variance", "histogram", "quantile")
MECHANISMS = ("laplace", "gaussian")
ALPHA = 0.05  # accuracy statements are at 95% confidence
QUANTILE_CANDIDATES = 201


class QueryError(ValueError):
    """The query does not fit the data or its metadata; `field` names what to fix."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass
class Released:
    value: Any
    scale: float | None
    epsilon: float  # the measurement's privacy map at the privacy unit (<= the requested epsilon)
    delta: float
    accuracy: dict[str, Any]


def _dp():
    import opendp.prelude as dp  # noqa: PLC0415 - 0.7 s to import: loaded by the first release

    dp.enable_features("contrib", "floating-point")
    return dp


def _numeric_space(dp):
    return dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()


def _builder(query: dict[str, Any], rows: int | None):
    """A function scale -> measurement for the query (before the output-measure conversion)."""
    dp = _dp()
    statistic, mechanism = query["statistic"], query["mechanism"]
    noise = dp.m.then_laplace if mechanism == "laplace" else dp.m.then_gaussian
    if statistic == "histogram":
        space = dp.vector_domain(dp.atom_domain(T=str)), dp.symmetric_distance()
        categories = [str(c) for c in query["categories"]]
        return lambda s: space >> dp.t.then_count_by_categories(categories=categories) >> noise(scale=s)
    if statistic == "count":
        return lambda s: _numeric_space(dp) >> dp.t.then_count() >> noise(scale=s)
    if statistic == "quantile":
        low, high = query["bounds"]
        candidates = [float(c) for c in np.linspace(low, high, QUANTILE_CANDIDATES)]
        measure = dp.max_divergence() if mechanism == "laplace" else dp.zero_concentrated_divergence()
        return lambda s: (
            _numeric_space(dp)
            >> dp.m.then_private_quantile(measure, candidates=candidates, alpha=float(query["q"]), scale=s)
        )
    low, high = (float(b) for b in query["bounds"])
    clamp = dp.t.then_clamp((low, high))
    if statistic == "sum":
        return lambda s: _numeric_space(dp) >> clamp >> dp.t.then_sum() >> noise(scale=s)
    if rows is None:
        raise QueryError(
            f"{statistic} needs the dataset's public row count: "
            "declare `public_rows` in its privacy metadata",
            "statistic",
        )
    resize = dp.t.then_resize(size=int(rows), constant=(low + high) / 2)
    step = dp.t.then_mean() if statistic == "mean" else dp.t.then_variance()
    return lambda s: _numeric_space(dp) >> clamp >> resize >> step >> noise(scale=s)


def _approx(measurement, delta: float):
    dp = _dp()
    return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(measurement), delta)


def _privacy_loss(measurement, mechanism: str, unit: int, delta: float) -> tuple[float, float]:
    if mechanism == "gaussian":
        epsilon, spent_delta = _approx(measurement, delta).map(unit)
        return float(epsilon), float(spent_delta)
    return float(measurement.map(unit)), 0.0


def _pure_scale(build, unit: int, epsilon: float) -> float | None:
    """Pure-DP maps here are inversely proportional to the scale (Laplace: sensitivity / scale; the
    exponential mechanism likewise), so one probe gives the scale; OpenDP's own map then confirms it,
    nudged up past rounding. None if that does not hold (the caller falls back to a binary search)."""
    try:
        at_one = float(build(1.0).map(unit))
    except Exception:
        return None
    if not at_one > 0:
        return None
    scale = at_one / epsilon
    for _ in range(8):
        if float(build(scale).map(unit)) <= epsilon:
            return scale
        scale *= 1 + 1e-12
    return None


def calibrate(query: dict[str, Any], unit: int, rows: int | None):
    """(measurement, scale, epsilon, delta) meeting the query's epsilon (and delta) at `unit`."""
    dp = _dp()
    build = _builder(query, rows)
    epsilon, delta = float(query["epsilon"]), float(query.get("delta") or 0.0)
    if query["mechanism"] == "gaussian":
        scale = dp.binary_search_param(lambda s: _approx(build(s), delta), d_in=unit, d_out=(epsilon, delta))
    else:
        scale = _pure_scale(build, unit, epsilon) or dp.binary_search_param(build, d_in=unit, d_out=epsilon)
    measurement = build(scale)
    spent_epsilon, spent_delta = _privacy_loss(measurement, query["mechanism"], unit, delta)
    return measurement, float(scale), spent_epsilon, spent_delta


def accuracy(query: dict[str, Any], scale: float) -> dict[str, Any]:
    dp = _dp()
    statistic, mechanism = query["statistic"], query["mechanism"]
    level = 1 - ALPHA
    if statistic == "quantile":
        low, high = query["bounds"]
        return {
            "confidence": None,
            "statement": "exponential mechanism over a grid of candidates; the answer is one of them "
            f"(grid step {(high - low) / (QUANTILE_CANDIDATES - 1):g})",
        }
    integer = statistic in ("count", "histogram")
    if mechanism == "laplace":
        to_accuracy = dp.discrete_laplacian_scale_to_accuracy if integer else dp.laplacian_scale_to_accuracy
    else:
        to_accuracy = dp.discrete_gaussian_scale_to_accuracy if integer else dp.gaussian_scale_to_accuracy
    half_width = float(to_accuracy(scale, ALPHA))
    per = " per category" if statistic == "histogram" else ""
    return {
        "confidence": level,
        "half_width": half_width,
        "statement": f"with probability {level:.0%}, the noise added{per} is at most {half_width:.6g} "
        "in absolute value (for bounded statistics, on the clamped data)",
    }


def published(query: dict[str, Any], raw: Any) -> Any:
    """What is shown of a release: counts (and a histogram's counts, and counts per group) clamped at
    zero, since no count is negative. Post-processing of a DP output keeps its guarantee."""
    if query["statistic"] not in ("count", "histogram"):
        return raw
    if isinstance(raw, dict):
        return {key: published(query, value) for key, value in raw.items()}
    return max(int(raw), 0) if isinstance(raw, (int, float)) else raw


def projected(given: np.ndarray, total: float) -> np.ndarray:
    """The nearest point to `given` (Euclidean) with non-negative entries that add up to `total` > 0:
    every entry moved down (or up) by one shift, none below zero."""
    ordered = np.sort(given)[::-1]
    excess = np.cumsum(ordered) - total
    index = np.arange(1, len(ordered) + 1)
    keep = ordered - excess / index > 0
    shift = excess[keep][-1] / index[keep][-1]
    return np.maximum(given - shift, 0.0)


def consistent_counts(counts: dict[str, int], total: int) -> dict[str, int]:
    """A histogram's published counts made to add up to a published total (both DP releases, so this
    is post-processing, at no privacy cost): the nearest non-negative counts with that sum
    (`projected`), rounded to integers by largest remainder so that the sum is exact. Labels keep
    their order; ties in the remainders go to the earlier label."""
    labels = list(counts)
    total = max(int(total), 0)
    if not labels or total == 0:
        return dict.fromkeys(labels, 0)
    exact = projected(np.array([max(float(counts[k]), 0.0) for k in labels]), total)
    rounded = np.floor(exact).astype(int)
    short = total - int(rounded.sum())
    by_remainder = sorted(range(len(labels)), key=lambda i: (-(exact[i] - rounded[i]), i))
    for i in by_remainder[:short]:
        rounded[i] += 1
    return {label: int(n) for label, n in zip(labels, rounded, strict=True)}


def release(query: dict[str, Any], values: list, unit: int, rows: int | None) -> Released:
    """Make one release over `values` (the column as a list, restricted to the group if any)."""
    measurement, scale, epsilon, delta = calibrate(query, unit, rows)
    if query["mechanism"] == "gaussian":
        measurement = _approx(measurement, float(query.get("delta") or 0.0))
    value = measurement(values)
    if query["statistic"] == "histogram":
        labels = [*(str(c) for c in query["categories"]), "(other)"]
        value = dict(zip(labels, (int(v) for v in value), strict=True))
    elif isinstance(value, (int, np.integer)):
        value = int(value)
    else:
        value = float(value)
    return Released(value=value, scale=scale, epsilon=epsilon, delta=delta, accuracy=accuracy(query, scale))
