"""Loading models and datasets for jobs, safely.

Models: skops files only, by default. `skops.io` lists the types a file would instantiate that it
does not trust out of the box; each must be on ALLOWED_TYPES (or a prefix in ALLOWED_PREFIXES),
otherwise the file is refused and the type is named. Pickle and joblib files run arbitrary code
when loaded, so they are refused unless the workspace has opted in (Workspace.allow_pickle_models).

Datasets: CSV or Parquet, with the target and feature columns the request declares. Problems are
reported as DataError naming the column (missing, not numeric, with missing values) or the file
(empty, unreadable).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core import media_types
from core.artifacts import artifact_open
from core.models import Artifact, Workspace
from core.tables import DataError, cached_table, read_table, read_table_bytes

# Types skops does not trust by default that scikit-learn estimators we explain are made of.
__all__ = [
    "DataError",
    "Dataset",
    "ModelLoadError",
    "cached_table",
    "load_model",
    "load_model_bytes",
    "read_table",
    "read_table_bytes",
    "select",
]

ALLOWED_TYPES = frozenset(
    {
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.LogLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss.loss.AbsoluteError",
        "sklearn._loss.loss.HuberLoss",
        "sklearn._loss.loss.PinballLoss",
        "sklearn.ensemble._gb.VerboseReporter",
        "sklearn.dummy.DummyClassifier",
        "sklearn.dummy.DummyRegressor",
        "collections.OrderedDict",
        "numpy.ndarray",
        "numpy.dtype",
    }
)
ALLOWED_PREFIXES = (
    "sklearn.ensemble._hist_gradient_boosting.",
    "sklearn.metrics._dist_metrics.",  # nearest-neighbour models' distance objects
    "sklearn.neighbors._kd_tree.",
    "sklearn.neighbors._ball_tree.",
)
MAX_ERROR_TYPES = 5


class ModelLoadError(ValueError):
    """The model file cannot be loaded safely; the message says why (and names refused types)."""


def _allowed(type_name: str) -> bool:
    return type_name in ALLOWED_TYPES or type_name.startswith(ALLOWED_PREFIXES)


def load_model(artifact: Artifact, workspace: Workspace) -> Any:
    """Load the model stored in `artifact`, refusing anything not known to be safe."""
    with artifact_open(artifact) as handle:
        data = handle.read()
    return load_model_bytes(data, media_type=artifact.media_type, allow_pickle=workspace.allow_pickle_models)


def load_model_bytes(data: bytes, *, media_type: str, allow_pickle: bool) -> Any:
    if media_type in (media_types.PICKLE, media_types.JOBLIB):
        if not allow_pickle:
            raise ModelLoadError(
                f"the model is a {media_type} file; pickle and joblib files can run arbitrary code when "
                "loaded, so they are refused unless the workspace allows them (allow_pickle_models). "
                "Save the model with skops.io.dump instead."
            )
        import joblib

        return joblib.load(io.BytesIO(data))
    if media_type != media_types.SKOPS:
        raise ModelLoadError(f"the model artifact is {media_type}, not a skops file ({media_types.SKOPS})")
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as error:
        raise ModelLoadError(f"the skops file cannot be read: {error}") from error
    refused = sorted(t for t in untrusted if not _allowed(t))
    if refused:
        shown = ", ".join(refused[:MAX_ERROR_TYPES]) + (" ..." if len(refused) > MAX_ERROR_TYPES else "")
        raise ModelLoadError(f"the skops file contains types that are not trusted: {shown}")
    try:
        return sio.loads(data, trusted=list(untrusted))
    except Exception as error:
        raise ModelLoadError(f"the skops file cannot be loaded: {error}") from error


@dataclass
class Dataset:
    X: np.ndarray  # float64 (rows, features)
    features: list[str]
    target: np.ndarray | None
    frame: pd.DataFrame  # the declared columns as read (for sensitive features)


def select(
    frame: pd.DataFrame,
    *,
    features: list[str],
    target: str | None = None,
    extra: list[str] | tuple[str, ...] = (),
    numeric_target: bool = False,
) -> Dataset:
    """Pick and check the declared columns: present, feature columns numeric without gaps."""
    wanted = list(dict.fromkeys([*features, *([target] if target else []), *extra]))
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            f"the dataset has no column {', '.join(repr(c) for c in missing)}; "
            f"its columns are {', '.join(map(str, frame.columns[:30]))}"
        )
    for column in features:
        series = frame[column]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            sample = series.dropna().astype(str).head(1).tolist()
            raise DataError(
                f"column {column!r} must be numeric (it holds values such as {sample[0]!r}); "
                "encode it before uploading"
                if sample
                else f"column {column!r} must be numeric"
            )
        gaps = int(series.isna().sum())
        if gaps:
            raise DataError(f"column {column!r} has {gaps} missing values")
    target_values = None
    if target:
        series = frame[target]
        if series.isna().any():
            raise DataError(f"target column {target!r} has {int(series.isna().sum())} missing values")
        if numeric_target and not pd.api.types.is_numeric_dtype(series):
            raise DataError(f"target column {target!r} must be numeric")
        target_values = series.to_numpy()
    X = frame[features].to_numpy(dtype=np.float64)
    return Dataset(X=X, features=list(features), target=target_values, frame=frame[wanted])
