"""What a job runs on, as a worker reads it: the model (cached per worker process), the declared
columns of the dataset, the rows the job covers, and the background sample for SHAP. A problem with
any of them is a `JobFailure`: the job fails saying what is wrong (no retry helps)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from core.artifacts import artifact_open
from core.models import Artifact
from core.work import WorkFailure
from explain import loading
from explain.models import Job
from explain.sandbox import SandboxError


class JobFailure(WorkFailure):
    """A problem with the job's inputs: the job fails with this message (no retry helps)."""


@functools.lru_cache(maxsize=4)
def _model_cached(artifact_id: str, allow_pickle: bool) -> Any:
    """A skops model loaded here, or a pickle as a SandboxedModel (never unpickled in this process)."""
    artifact = Artifact.objects.get(pk=artifact_id)
    with artifact_open(artifact) as handle:
        data = handle.read()
    return loading.load_model_bytes(data, media_type=artifact.media_type, allow_pickle=allow_pickle)


def job_inputs(job: Job) -> tuple[Any, loading.Dataset]:
    """The job's model and the declared columns of its dataset (cached per worker process)."""
    try:
        model = _model_cached(str(job.model_artifact_id), loading.pickle_allowed(job.workspace))
    except (loading.ModelLoadError, SandboxError) as error:
        raise JobFailure(f"model: {error}") from error
    try:
        frame = loading.cached_table(str(job.dataset_artifact_id))
        features = job.params.get("features") or [str(c) for c in getattr(model, "feature_names_in_", [])]
        if not features:
            raise loading.DataError("declare `features`: the model does not record its feature names")
        n_in = getattr(model, "n_features_in_", len(features))
        if n_in != len(features):
            raise loading.DataError(f"the model takes {n_in} features; the request declares {len(features)}")
        data = loading.select(
            frame,
            features=features,
            target=job.params.get("target") or None,
            extra=[
                *job.params.get("sensitive_features", []),
                *filter(None, [job.params.get("weight_column")]),
            ],
        )
    except loading.DataError as error:
        raise JobFailure(f"dataset {job.dataset_node.key}: {error}") from error
    return model, data


def job_rows(job: Job, n: int) -> np.ndarray:
    """Which of the dataset's `n` rows the job covers: all, or a seeded sample of `rows`."""
    wanted = job.params.get("rows")
    if not wanted or wanted >= n:
        return np.arange(n)
    rng = np.random.default_rng(job.params.get("seed", 0))
    return np.sort(rng.choice(n, size=wanted, replace=False))


def job_background(job: Job, X: np.ndarray) -> np.ndarray:
    """The seeded background sample (`background_rows`, default 100) for explainers that need one."""
    size = min(job.params.get("background_rows", 100), len(X))
    rng = np.random.default_rng(job.params.get("seed", 0) + 1)
    return X[rng.choice(len(X), size=size, replace=False)]
