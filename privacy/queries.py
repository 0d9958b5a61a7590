"""Differentially private queries, before anything is spent: the dataset version's public privacy
metadata checked, and a release request completed from it and checked against the data
(`normalise_query`), so that a malformed request is a 400 naming the field, never a crash halfway
through a release. `query_hash` is a normalised query's identity in the ledger.

The metadata lives on the DatasetVersion lineage node, under properties["privacy"]:

    {"unit": 1,                      # rows one person may contribute (the privacy unit)
     "neighbouring": "add_remove",   # what a person's participation changes: their rows added or
                                     # removed, or "substitute": their rows replaced (twice the distance)
     "public_rows": 48842,           # the row count, if it is public (needed for mean and variance)
     "bounds": {"age": [17, 90]},    # default bounds of numeric columns
     "categories": {"sex": ["Female", "Male"]}}   # public categories (histograms, group-by)
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pandas as pd

from core import tables as loading
from core.canonical_json import canonical_bytes
from core.errors import ApplicationError, FieldError
from lineage.models import Node

NUMERIC_STATISTICS = ("sum", "mean", "variance", "quantile")
ADD_REMOVE, SUBSTITUTE = "add_remove", "substitute"


def metadata(node: Node) -> dict[str, Any]:
    """The dataset version's public facts (`properties.privacy`), checked: a malformed entry is a 400
    naming it (`dataset.privacy.bounds.age`), never a crash halfway through a release."""
    meta = node.properties.get("privacy") or {}
    if not isinstance(meta, dict):
        raise ApplicationError("dataset.privacy must be an object", field="dataset.privacy")
    errors: list[FieldError] = []
    for section in ("bounds", "categories"):
        value = meta.get(section)
        if value is not None and not isinstance(value, dict):
            errors.append(FieldError(f"dataset.privacy.{section}", "must be an object keyed by column"))
    for column, bounds in (meta.get("bounds") or {}).items() if not errors else ():
        if not _valid_bounds(bounds):
            errors.append(
                FieldError(
                    f"dataset.privacy.bounds.{column}", "must be [lower, upper] numbers with lower < upper"
                )
            )
    for column, categories in (meta.get("categories") or {}).items() if not errors else ():
        problem = _categories_problem(categories)
        if problem:
            errors.append(FieldError(f"dataset.privacy.categories.{column}", problem))
    errors += _scalar_problems(meta)
    if errors:
        raise ApplicationError(
            f"the dataset version's privacy metadata is not valid ({errors[0].field}: {errors[0].message})",
            errors=errors,
        )
    return meta


def _scalar_problems(meta: dict[str, Any]) -> list[FieldError]:
    """The metadata's single-valued entries: `neighbouring` and `public_rows`."""
    errors = []
    if meta.get("neighbouring", ADD_REMOVE) not in (ADD_REMOVE, SUBSTITUTE):
        errors.append(FieldError("dataset.privacy.neighbouring", f"must be {ADD_REMOVE} or {SUBSTITUTE}"))
    rows = meta.get("public_rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        errors.append(FieldError("dataset.privacy.public_rows", "must be a whole number of rows"))
    return errors


def _categories_problem(categories: Any) -> str:
    if not isinstance(categories, list) or not categories:
        return "must be a non-empty list of values"
    if not all(isinstance(c, (str, int, float, bool)) for c in categories):
        return "values must be strings or numbers"
    labels = [str(c) for c in categories]
    if len(set(labels)) != len(labels):
        return "values must be distinct"
    return ""


def privacy_unit(meta: dict[str, Any]) -> int:
    """How many rows one person may contribute, from the checked metadata (default 1)."""
    unit = meta.get("unit", 1)
    return int(unit) if isinstance(unit, int) and unit >= 1 else 1


def input_distance(query: dict[str, Any]) -> int:
    """The distance between neighbouring datasets the noise is calibrated at (OpenDP's symmetric
    distance, which counts rows added or removed): the unit when a person's rows are added or removed,
    twice it when they are replaced (a substitution removes and adds)."""
    return query["unit"] * (2 if query.get("neighbouring") == SUBSTITUTE else 1)


def _valid_bounds(bounds: Any) -> bool:
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        return False
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds):
        return False
    return bounds[0] < bounds[1]


def dataset_frame(node: Node) -> pd.DataFrame:
    """The dataset version's table (read once per process: datasets are content-addressed); 400 when
    it has no data or cannot be read."""
    if node.artifact_id is None:
        raise ApplicationError(f"dataset version {node.key} has no data attached", field="dataset")
    try:
        return loading.cached_table(str(node.artifact_id))
    except loading.DataError as error:
        raise ApplicationError(f"dataset version {node.key}: {error}", field="dataset") from error


def normalise_query(node: Node, request: dict[str, Any]) -> dict[str, Any]:
    """Complete the request from the metadata and check it against the data; 400 on any problem."""
    meta = metadata(node)
    frame = dataset_frame(node)
    query = {k: v for k, v in request.items() if v is not None}
    errors = [
        *_column_problems(query, frame),
        *_numeric_problems(query, meta, frame),
        *_histogram_problems(query, meta, frame),
        *_group_problems(query, meta, frame),
    ]
    statistic = query["statistic"]
    if statistic in ("mean", "variance") and meta.get("public_rows") is None:
        errors.append(
            FieldError(
                "statistic", f"{statistic} needs the dataset's public row count (metadata `public_rows`)"
            )
        )
    if errors:
        raise ApplicationError("the release cannot be made as asked", errors=errors)
    query["unit"] = privacy_unit(meta)
    if meta.get("neighbouring") == SUBSTITUTE:  # (add_remove, the default, is left implicit)
        query["neighbouring"] = SUBSTITUTE
    return query


# Each of the checks below returns what is wrong with one part of the query, and completes that part
# of `query` (bounds, categories) from the metadata where nothing is.


def _column_problems(query: dict[str, Any], frame: pd.DataFrame) -> list[FieldError]:
    statistic, column = query["statistic"], query.get("column")
    if statistic != "count" and not column:
        return [FieldError("column", f"{statistic} needs a column")]
    if column and column not in frame.columns:
        return [FieldError("column", f"the dataset has no column {column!r}")]
    return []


def _numeric_problems(query: dict[str, Any], meta: dict[str, Any], frame: pd.DataFrame) -> list[FieldError]:
    """A numeric statistic's column is numeric and has bounds (the request's, else the metadata's)."""
    statistic, column = query["statistic"], query.get("column")
    if not column or column not in frame.columns or statistic not in NUMERIC_STATISTICS:
        return []
    errors = []
    if not pd.api.types.is_numeric_dtype(frame[column]):
        errors.append(FieldError("column", f"column {column!r} is not numeric; {statistic} needs numbers"))
    bounds = query.get("bounds") or (meta.get("bounds") or {}).get(column)
    if bounds is None:
        errors.append(
            FieldError("bounds", f"{statistic} of {column!r} needs bounds (in the request or the metadata)")
        )
    elif not _valid_bounds(bounds):
        errors.append(
            FieldError(
                "bounds", f"the bounds of {column!r} must be [lower, upper] numbers with lower < upper"
            )
        )
    else:
        query["bounds"] = [float(bounds[0]), float(bounds[1])]
    return errors


def _histogram_problems(query: dict[str, Any], meta: dict[str, Any], frame: pd.DataFrame) -> list[FieldError]:
    """A histogram's column has public categories (the request's, else the metadata's)."""
    column = query.get("column")
    if query["statistic"] != "histogram" or not column or column not in frame.columns:
        return []
    categories = query.get("categories") or (meta.get("categories") or {}).get(column)
    if not categories:
        return [FieldError("categories", f"a histogram of {column!r} needs its public categories")]
    problem = _categories_problem(categories)
    if problem:
        return [FieldError("categories", problem)]
    query["categories"] = [str(c) for c in categories]
    return []


def _group_problems(query: dict[str, Any], meta: dict[str, Any], frame: pd.DataFrame) -> list[FieldError]:
    """Group keys are a column whose categories are public; mean and variance cannot be grouped."""
    statistic, group_by = query["statistic"], query.get("group_by")
    if not group_by:
        return []
    errors = []
    if group_by not in frame.columns:
        errors.append(FieldError("group_by", f"the dataset has no column {group_by!r}"))
    elif not (meta.get("categories") or {}).get(group_by):
        errors.append(
            FieldError("group_by", f"group keys must be public: declare the categories of {group_by!r}")
        )
    else:
        query["group_categories"] = [str(c) for c in meta["categories"][group_by]]
    if statistic in ("mean", "variance"):
        errors.append(
            FieldError("group_by", f"{statistic} by group needs public group sizes; use sum and count")
        )
    return errors


# How a release is shown, not what is released: not part of its identity in the ledger.
PRESENTATION_KEYS = frozenset({"consistent_total"})


def query_hash(query: dict[str, Any]) -> str:
    """The normalised query's identity in the ledger: a query asked again is answered, not spent again."""
    released = {k: v for k, v in query.items() if k not in PRESENTATION_KEYS}
    return hashlib.sha256(canonical_bytes(released)).hexdigest()
