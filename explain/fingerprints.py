"""Row fingerprints: a 64-bit hash of each row's values over chosen columns, to prove from the data
itself whether evaluation rows also appear in the training data.

Each column becomes one 64-bit word per row — numbers (integers, floats, booleans) by the bits of
their float64 value, so that 1 read from one file and 1.0 from another agree (-0.0 counts as 0.0,
every NaN as one NaN); anything else by pandas' hash of its text — and the words of the columns, in
the order of the columns' names, are folded together with the SplitMix64 finaliser. Two rows with
the same values in those columns have the same fingerprint; two different rows share one with
probability about 2^-64 per pair (for a million rows against a million, about 5e-8 in all).
Vectorised over rows: each column costs a multiply, a rotation and an exclusive-or per row (xxHash's
round), and the finaliser runs once.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_CANONICAL_NAN = np.float64("nan").view(np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit reaches every output bit."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _column_words(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan) + 0.0  # -0.0 + 0.0 is 0.0
        words = values.view(np.uint64).copy()
        words[np.isnan(values)] = _CANONICAL_NAN
        return words
    # Text and categories: hash each distinct value once, then look the rows' values up.
    codes, uniques = pd.factorize(series.astype("string"), use_na_sentinel=False)
    hashed = pd.util.hash_pandas_object(pd.Series(uniques, dtype="string"), index=False).to_numpy(np.uint64)
    return hashed[codes]


def row_fingerprints(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One uint64 per row of `frame` over `columns` (order of the names does not matter)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"no column {', '.join(repr(c) for c in missing)}")
    digest = np.full(len(frame), _GOLDEN, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for position, column in enumerate(sorted(set(columns))):
            salt = np.uint64(position + 1) * _GOLDEN  # the same value in another column differs
            digest ^= _column_words(frame[column]) + salt
            digest *= _M1
            digest = (digest << np.uint64(31)) | (digest >> np.uint64(33))
        return _mix(digest)


def columns_key(columns: Sequence[str]) -> str:
    """A short, stable name for a set of columns (where its fingerprints are kept)."""
    return hashlib.sha256("\x1f".join(sorted(set(columns))).encode()).hexdigest()[:16]


def overlap(evaluation: np.ndarray, training: Sequence[np.ndarray]) -> int:
    """How many evaluation rows have a fingerprint that occurs in any of the training data sets."""
    if not len(training):
        return 0
    seen = np.unique(np.concatenate(list(training)))
    if not len(seen):
        return 0
    at = np.minimum(np.searchsorted(seen, evaluation), len(seen) - 1)
    return int(np.count_nonzero(seen[at] == evaluation))


def to_bytes(fingerprints: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, fingerprints.astype(np.uint64), allow_pickle=False)
    return buffer.getvalue()


def from_bytes(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False).astype(np.uint64)
