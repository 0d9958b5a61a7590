"""Tables stored as artifacts (CSV or Parquet), read into pandas once per process.

Used by explanations, fairness and differential privacy alike; problems are reported as DataError
naming the file's problem (empty, unreadable, no rows).
"""

from __future__ import annotations

import functools
import io

import pandas as pd

from core import media_types
from core.artifacts import artifact_open
from core.models import Artifact


class DataError(ValueError):
    """The dataset does not fit the request; the message names the column or the problem."""


@functools.lru_cache(maxsize=4)
def cached_table(artifact_id: str) -> pd.DataFrame:
    """The table of an artifact, read once per process (artifacts never change: content-addressed).
    Callers must not modify it."""
    return read_table(Artifact.objects.get(pk=artifact_id))


def read_table(artifact: Artifact) -> pd.DataFrame:
    with artifact_open(artifact) as handle:
        data = handle.read()
    return read_table_bytes(data, artifact.media_type)


def read_table_bytes(data: bytes, media_type: str) -> pd.DataFrame:
    if not data:
        raise DataError("the dataset file is empty")
    try:
        if media_type == media_types.PARQUET:
            frame = pd.read_parquet(io.BytesIO(data))
        elif media_type in (media_types.CSV, media_types.TEXT):
            frame = pd.read_csv(io.BytesIO(data), compression="infer", skipinitialspace=True)
        else:
            raise DataError(f"the dataset artifact is {media_type}; expected CSV or Parquet")
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"the dataset file cannot be read: {error}") from error
    if frame.empty:
        raise DataError("the dataset has no rows")
    return frame
