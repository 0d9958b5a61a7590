"""Row fingerprints find exactly the evaluation rows that are training rows (as pandas' merge on all
columns finds them), whatever the files' column order or number types."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from explain.fingerprints import columns_key, from_bytes, overlap, row_fingerprints, to_bytes


def test_the_same_row_has_the_same_fingerprint_however_the_file_is_laid_out():
    a = pd.DataFrame({"age": [39, 50, 38], "sex": ["Male", "Female", "Male"], "y": [0, 1, 0]})
    b = pd.DataFrame({"y": [0.0, 1.0, 0.0], "sex": ["Male", "Female", "Male"], "age": [39.0, 50.0, 38.0]})
    assert (row_fingerprints(a, ["age", "sex", "y"]) == row_fingerprints(b, ["y", "age", "sex"])).all()
    assert len(set(row_fingerprints(a, ["age", "sex", "y"]).tolist())) == 3
    # A value moved to another column is another row.
    swapped = pd.DataFrame({"p": [1, 2], "q": [2, 1]})
    fp = row_fingerprints(swapped, ["p", "q"])
    assert fp[0] != fp[1]
    assert columns_key(["b", "a"]) == columns_key(["a", "b", "a"])
    assert (from_bytes(to_bytes(fp)) == fp).all()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 60),
    st.integers(0, 60),
    st.integers(0, 2**31),
    st.sampled_from([2, 5, 100]),
)
def test_overlap_counts_what_a_merge_on_all_columns_counts(train_rows, eval_rows, seed, distinct):
    rng = np.random.default_rng(seed)

    def frame(n):
        return pd.DataFrame(
            {
                "x": rng.integers(0, distinct, n),
                "z": rng.choice([0.5, -0.0, 0.0, 1.25], n),
                "c": rng.choice(["a", "b", "ab"], n),
            }
        )

    training, evaluation = frame(train_rows), frame(eval_rows)
    columns = ["x", "z", "c"]
    ours = overlap(row_fingerprints(evaluation, columns), [row_fingerprints(training, columns)])
    merged = evaluation.merge(training.drop_duplicates(), on=columns, how="inner")
    assert ours == len(merged)
