"""The groups of a fairness assessment: one per combination of the sensitive features' values
(intersectional: "sex=Female, race=Black"), which of them are large enough to count, and the
reference group the others are compared with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


class FairnessInputError(ValueError):
    """The assessment cannot be made as asked (a reference group that is not there, bad weights);
    the message says why, for the job's error."""


@dataclass
class Groups:
    labels: list[str]  # "sex=Female, race=White"
    index: np.ndarray  # int (rows,): each row's group
    columns: list[str]
    values: list[tuple]  # each group's value of every sensitive column

    def value_maps(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, values, strict=True)) for values in self.values]


def groups_of(sensitive: pd.DataFrame) -> Groups:
    """Intersectional groups of the sensitive columns, numbered in sorted order of their values."""
    columns = [str(c) for c in sensitive.columns]
    codes, uniques = [], []
    for column in sensitive.columns:
        code, unique = pd.factorize(sensitive[column], sort=True)
        if (code < 0).any():
            raise FairnessInputError(f"sensitive feature {column!r} has missing values")
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


def reference_index(groups: Groups, sizes: np.ndarray, reference: Mapping[str, Any] | str | None) -> int:
    """The reference group: the one named (by its label, "sex=Male, race=White", or by a value for
    every sensitive feature, {"sex": "Male", "race": "White"}), or else the largest (the first of
    equals in label order)."""
    if reference is None or reference == "" or reference == {}:
        return int(np.argmax(sizes))
    if isinstance(reference, str):
        if reference in groups.labels:
            return groups.labels.index(reference)
    elif isinstance(reference, Mapping):
        missing = [c for c in groups.columns if c not in reference]
        extra = [str(k) for k in reference if k not in groups.columns]
        if missing or extra:
            raise FairnessInputError(
                f"reference_group must give a value for each sensitive feature ({', '.join(groups.columns)})"
                + (f"; {', '.join(extra)} is not one" if extra else "")
            )
        for position, values in enumerate(groups.values):
            if all(str(reference[c]) == str(v) for c, v in zip(groups.columns, values, strict=True)):
                return position
    shown = ", ".join(repr(label) for label in groups.labels[:10])
    raise FairnessInputError(f"reference_group {reference!r} is not among the groups: {shown}")
