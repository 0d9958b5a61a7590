"""Fairness assessment with bootstrap intervals: by-group metrics (two sensitive features, so
intersectional groups) with 200 bootstrap resamples on 1,000,000 rows, against the baseline of
calling fairlearn's MetricFrame once per resample on resampled rows.

    python benchmarks/fairness_bootstrap.py --quick     # 100,000 rows, < 1 minute
    python benchmarks/fairness_bootstrap.py             # 1,000,000 rows

The baseline is timed on a few resamples and scaled linearly to 200 (each resample is the same
amount of work); the script says how many it timed. Both use the same four metrics.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 100.0  # x the baseline
RESAMPLES = 200


def data(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], rows)
    race = rng.choice(["White", "Black", "Asian", "Other", "Native"], rows, p=[0.7, 0.12, 0.1, 0.05, 0.03])
    y_true = rng.random(rows) < 0.3
    bias = np.where(sex == "Male", 0.1, 0.0)
    y_pred = rng.random(rows) < np.where(y_true, 0.7, 0.1) + bias
    return y_true.astype(int), y_pred.astype(int), pd.DataFrame({"sex": sex, "race": race})


def baseline(y_true, y_pred, sensitive, resamples: int, seed: int) -> float:
    """fairlearn MetricFrame per resample (4 metrics, intersectional groups)."""
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate
    from sklearn.metrics import accuracy_score, recall_score

    metrics = {
        "selection_rate": selection_rate,
        "accuracy": accuracy_score,
        "recall": recall_score,
        "false_positive_rate": false_positive_rate,
    }
    rng = np.random.default_rng(seed)
    n = len(y_true)
    start = time.perf_counter()
    for _ in range(resamples):
        rows = rng.integers(0, n, n)
        frame = MetricFrame(
            metrics=metrics,
            y_true=y_true[rows],
            y_pred=y_pred[rows],
            sensitive_features=sensitive.iloc[rows].reset_index(drop=True),
        )
        if frame.by_group.empty:
            raise RuntimeError("MetricFrame returned no groups")
    return time.perf_counter() - start


def ours(y_true, y_pred, sensitive, seed: int) -> tuple[float, dict]:
    from explain.fairness import assess

    start = time.perf_counter()
    result = assess(y_true, y_pred, sensitive, resamples=RESAMPLES, seed=seed)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-resamples", type=int, default=3)
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows
    y_true, y_pred, sensitive = data(rows)
    timed = args.baseline_resamples
    seconds = baseline(y_true, y_pred, sensitive, timed, seed=1)
    scaled = seconds * RESAMPLES / timed
    print(
        f"# baseline: fairlearn MetricFrame per resample, {timed} resamples of {rows} rows "
        f"in {seconds:.2f} s; scaled linearly to {RESAMPLES}: {scaled:.1f} s",
        flush=True,
    )
    ours_s, result = ours(y_true, y_pred, sensitive, seed=1)
    groups = len(result["groups"])
    print(
        f"# ours: {RESAMPLES} multinomial resamples of the (group, cell) counts plus one MetricFrame for the "
        f"point estimates, {groups} groups, 7 metrics, 5 disparities: {ours_s:.2f} s",
        flush=True,
    )
    dp = result["disparities"]["demographic_parity_difference"]
    print(
        f"# demographic parity difference {dp['value']:.4f} [{dp['low']:.4f}, {dp['high']:.4f}]", flush=True
    )
    ratio = scaled / ours_s
    print(
        f"RESULT fairness_bootstrap_{rows}_rows_s {ours_s:.4g} s baseline=fairlearn-metricframe-per-resample "
        f"ratio={ratio:.4g}"
    )
    print(f"RESULT fairness_bootstrap_speedup {ratio:.4g} x baseline=target-100x ratio={ratio / TARGET:.4g}")


if __name__ == "__main__":
    main()
