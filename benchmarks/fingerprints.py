"""Proving evaluation data disjoint from training data: row fingerprints (explain/fingerprints.py) of
1,000,000 rows x 20 columns (18 numeric, one text, the label), against the baseline of pandas'
`merge` on all columns, which answers the same question (which evaluation rows are training rows).

    python benchmarks/fingerprints.py --quick     # 100,000 rows, a few seconds
    python benchmarks/fingerprints.py             # 1,000,000 rows

The issue's target: fingerprints at >= 1,000,000 rows/s on this machine. Both sides count the
evaluation rows that occur in the training data; the script checks that they agree. One process,
one thread: the figures are per core.
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

TARGET_ROWS_PER_S = 1_000_000


def data(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(18):
        columns[f"x{i}"] = rng.integers(0, 90, rows) if i % 3 == 0 else rng.normal(size=rows).round(4)
    columns["workclass"] = rng.choice(["Private", "Self-emp", "Federal-gov", "Local-gov", "?"], rows)
    columns["label"] = rng.integers(0, 2, rows)
    return pd.DataFrame(columns)


def best_of(repeats: int, run):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = run()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--rows", type=int)
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)

    from explain.fingerprints import overlap, row_fingerprints

    training = data(rows, seed=0)
    # Evaluation data: a held-out half and, leaked into it, a tenth of the training rows.
    evaluation = pd.concat([data(rows // 2, seed=1), training.sample(rows // 10, random_state=2)])
    evaluation = evaluation.reset_index(drop=True)
    columns = list(training.columns)

    fp_s, _ = best_of(3, lambda: row_fingerprints(training, columns))
    check_s, ours = best_of(
        3, lambda: overlap(row_fingerprints(evaluation, columns), [row_fingerprints(training, columns)])
    )
    merge_s, theirs = best_of(
        1,
        lambda: len(evaluation.merge(training.drop_duplicates(), on=columns, how="inner")),
    )
    if ours != theirs:
        print(f"MISMATCH: fingerprints found {ours} overlapping rows, merge {theirs}")
        return 1
    rate = rows / fp_s
    merge_rate = len(evaluation) / merge_s
    print(
        f"{rows:,} rows x {len(columns)} columns; {len(evaluation):,} evaluation rows, "
        f"{ours:,} of them training rows"
    )
    print(
        f"fingerprints: {fp_s * 1000:.0f} ms ({rate:,.0f} rows/s); the whole check: {check_s * 1000:.0f} ms"
    )
    print(f"pandas merge on all columns: {merge_s * 1000:.0f} ms ({merge_rate:,.0f} evaluation rows/s)")
    print(
        f"RESULT fingerprint_rows_per_s {rate:.0f} rows/s baseline=pandas-merge ratio={rate / merge_rate:.2f}"
    )
    print(
        f"RESULT fingerprint_rows_per_s_target {rate:.0f} rows/s baseline=target-{TARGET_ROWS_PER_S} "
        f"ratio={rate / TARGET_ROWS_PER_S:.2f}"
    )
    print(f"RESULT disjointness_check_s {check_s:.3f} s baseline=pandas-merge ratio={merge_s / check_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
