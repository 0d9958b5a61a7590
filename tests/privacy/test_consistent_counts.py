"""A histogram adjusted to its count (privacy.mechanisms.consistent_counts): the real-valued step is
the Euclidean projection onto the non-negative counts with that sum, checked against scipy's
non-negative least squares on random inputs; the rounded counts are non-negative, add up exactly,
and lie within one of the projection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls

from privacy.mechanisms import consistent_counts, projected

noisy = st.lists(st.integers(min_value=-50, max_value=400), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(noisy, st.integers(min_value=1, max_value=2000))
def test_the_adjustment_is_the_projection_scipy_finds(counts, total):
    given_ = np.clip(np.array(counts, dtype=float), 0, None)
    ours = projected(given_, total)
    # The sum constraint as a heavily weighted extra row of a non-negative least-squares problem.
    weight = 1e4
    system = np.vstack([np.eye(len(given_)), weight * np.ones((1, len(given_)))])
    reference, _ = nnls(system, np.append(given_, weight * total), maxiter=1000)
    np.testing.assert_allclose(ours, reference, atol=1e-3)


@settings(max_examples=200, deadline=None)
@given(noisy, st.integers(min_value=-20, max_value=2000))
def test_rounded_counts_add_up_and_stay_within_one_of_the_projection(counts, total):
    labels = [f"c{i}" for i in range(len(counts))]
    adjusted = consistent_counts(dict(zip(labels, counts, strict=True)), total)
    assert list(adjusted) == labels
    assert all(n >= 0 for n in adjusted.values())
    assert sum(adjusted.values()) == max(total, 0)
    if total > 0:
        exact = projected(np.clip(np.array(counts, dtype=float), 0, None), total)
        assert np.all(np.abs(np.array(list(adjusted.values())) - exact) < 1)


def test_counts_that_already_add_up_are_left_alone_and_negatives_go():
    assert consistent_counts({"a": 5, "b": 3}, 8) == {"a": 5, "b": 3}
    assert consistent_counts({"a": -8, "b": 10, "c": 2}, 12) == {"a": 0, "b": 10, "c": 2}
    assert consistent_counts({"a": 1, "b": 1}, 3) == {"a": 2, "b": 1}  # a tie: the earlier label
    assert consistent_counts({"a": 4}, 0) == {"a": 0}


@pytest.mark.parametrize("total", [1, 7, 100])
def test_a_histogram_of_zero_true_counts_never_shows_a_negative(total):
    assert min(consistent_counts({"x": -13, "y": -8, "z": 0}, total).values()) >= 0
