"""Checking and loading models, and loading datasets, for jobs.

Models: skops files, whose types `skops.io` lists without loading them; each type skops does not
trust out of the box must be on ALLOWED_TYPES (or start with one of ALLOWED_PREFIXES), otherwise the
file is refused and the type named. Registration (`model_artifact_check`, in the web process) only
checks; workers load skops files in-process with that allow-list (`load_model_bytes`).

Pickle and joblib files run code when they are loaded. They are refused unless the operator turned
them on for the server (MODELS_ALLOW_PICKLE) and for the workspace (`manage.py
workspace_allow_pickle`); no API can. Even then no process of the service unpickles one: registration
accepts the file without opening it, and workers hand it to a sandboxed child process
(explain/sandbox.py), which `load_model_bytes` returns as a SandboxedModel.

Datasets: CSV or Parquet, with the target and feature columns the request declares. Problems are
reported as DataError naming the column (missing, not numeric, with missing values) or the file
(empty, unreadable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

from core import media_types
from core.artifacts import artifact_open
from core.models import Artifact, Workspace
from core.tables import DataError, cached_table, read_table, read_table_bytes
from explain.sandbox import SandboxedModel

__all__ = [
    "DataError",
    "Dataset",
    "ModelLoadError",
    "cached_table",
    "load_model_bytes",
    "model_artifact_check",
    "model_bytes_check",
    "pickle_allowed",
    "read_table",
    "read_table_bytes",
    "select",
]

# Types skops does not trust by default that scikit-learn estimators we explain are made of.
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
PICKLE_FORMATS = (media_types.PICKLE, media_types.JOBLIB)


class ModelLoadError(ValueError):
    """The model file cannot be used safely; the message says why (and names refused types)."""


def _allowed(type_name: str) -> bool:
    return type_name in ALLOWED_TYPES or type_name.startswith(ALLOWED_PREFIXES)


def pickle_allowed(workspace: Workspace) -> bool:
    """Pickle models are accepted in this workspace: the operator allows them on the server and for it."""
    return bool(settings.MODELS_ALLOW_PICKLE and workspace.allow_pickle_models)


def _pickle_refused(media_type: str) -> ModelLoadError:
    return ModelLoadError(
        f"the model is a {media_type} file: pickle and joblib files run code when they are loaded, so "
        "they are not accepted here. Save the model with skops.io.dump(model, 'model.skops') and upload "
        "that file. (Pickle models are the operator's decision, per server and workspace, and even then "
        "they run only in a sandbox.)"
    )


def _skops_trusted(data: bytes) -> list[str]:
    """The untrusted types of a skops file, all on our allow-list (else ModelLoadError), read from the
    file's schema without loading any object."""
    import skops.io as sio  # noqa: PLC0415 - 2 s to import: only when a model file is checked or loaded

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as error:
        raise ModelLoadError(f"the skops file cannot be read: {error}") from error
    refused = sorted(t for t in untrusted if not _allowed(t))
    if refused:
        shown = ", ".join(refused[:MAX_ERROR_TYPES]) + (" ..." if len(refused) > MAX_ERROR_TYPES else "")
        raise ModelLoadError(f"the skops file contains types that are not trusted: {shown}")
    return list(untrusted)


def model_bytes_check(data: bytes, *, media_type: str, allow_pickle: bool) -> None:
    """Check a model file without deserialising anything (for the web process): a skops file's types
    against the allow-list; a pickle or joblib file only where `allow_pickle`."""
    if media_type in PICKLE_FORMATS:
        if not allow_pickle:
            raise _pickle_refused(media_type)
        return
    if media_type != media_types.SKOPS:
        raise ModelLoadError(f"the model artifact is {media_type}, not a skops file ({media_types.SKOPS})")
    _skops_trusted(data)


def model_artifact_check(artifact: Artifact, workspace: Workspace) -> None:
    """Registration's check of the model stored in `artifact`; nothing in it is loaded or run."""
    if artifact.media_type in PICKLE_FORMATS:
        model_bytes_check(b"", media_type=artifact.media_type, allow_pickle=pickle_allowed(workspace))
        return
    with artifact_open(artifact) as handle:
        data = handle.read()
    model_bytes_check(data, media_type=artifact.media_type, allow_pickle=False)


def load_model_bytes(data: bytes, *, media_type: str, allow_pickle: bool) -> Any:
    """The model, for a worker: a skops file loaded here with the allow-list; a pickle or joblib file
    (only where `allow_pickle`) as a SandboxedModel, which runs it in a confined child process."""
    if media_type in PICKLE_FORMATS:
        if not allow_pickle:
            raise _pickle_refused(media_type)
        return SandboxedModel(data, media_type=media_type)
    if media_type != media_types.SKOPS:
        raise ModelLoadError(f"the model artifact is {media_type}, not a skops file ({media_types.SKOPS})")
    import skops.io as sio  # noqa: PLC0415 - 2 s to import: only when a model file is checked or loaded

    trusted = _skops_trusted(data)
    try:
        return sio.loads(data, trusted=trusted)
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
