"""Tables stored as artifacts (CSV or Parquet), read into pandas once per process.

Used by explanations, fairness and differential privacy alike; problems are reported as DataError
naming the file's problem (empty, unreadable, no rows, past a limit).

A small file can stand for a huge table (Parquet's run-length encoding put 60 million rows in 545 KB;
gzip shrinks repetitive CSV a thousandfold), so the table's size is known before it is loaded: a
Parquet file's row and column counts come from its metadata, a CSV file's from a streaming count of
its lines, and a table past DATA_MAX_ROWS, DATA_MAX_COLUMNS or DATA_MAX_CELLS is refused naming the
limit.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import zlib

import pandas as pd
import pyarrow.parquet as pq
from django.conf import settings

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


def _check_shape(rows: int, columns: int, *, at_least: bool = False) -> None:
    more = "at least " if at_least else ""
    for count, limit, what, setting in (
        (rows, settings.DATA_MAX_ROWS, "rows", "DATA_MAX_ROWS"),
        (columns, settings.DATA_MAX_COLUMNS, "columns", "DATA_MAX_COLUMNS"),
        (rows * columns, settings.DATA_MAX_CELLS, "cells", "DATA_MAX_CELLS"),
    ):
        if count > limit:
            raise DataError(
                f"the dataset has {more}{count:,} {what}; the limit is {limit:,} ({setting}), "
                "checked before loading it"
            )


def _parquet_shape(data: bytes) -> None:
    try:
        metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    except Exception as error:
        raise DataError(f"the dataset file cannot be read as Parquet: {error}") from error
    _check_shape(metadata.num_rows, metadata.num_columns)


def _csv_shape(data: bytes) -> None:
    """Count a CSV file's lines as a stream (decompressing gzip as it goes), stopping past the limit."""
    stream = gzip.GzipFile(fileobj=io.BytesIO(data)) if data[:2] == b"\x1f\x8b" else io.BytesIO(data)
    header = stream.readline(1024 * 1024)
    columns = len(next(csv.reader([header.decode("utf-8", errors="replace")]), [])) or 1
    rows_limit = min(settings.DATA_MAX_ROWS, settings.DATA_MAX_CELLS // columns)
    rows = 0
    try:
        while chunk := stream.read(8 * 1024 * 1024):
            rows += chunk.count(b"\n")
            if rows > rows_limit:
                _check_shape(rows, columns, at_least=True)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"the dataset file cannot be decompressed: {error}") from error
    _check_shape(rows, columns)


def read_table_bytes(data: bytes, media_type: str) -> pd.DataFrame:
    if not data:
        raise DataError("the dataset file is empty")
    if media_type == media_types.PARQUET:
        _parquet_shape(data)
    elif media_type in (media_types.CSV, media_types.TEXT):
        _csv_shape(data)
    try:
        if media_type == media_types.PARQUET:
            frame = pd.read_parquet(io.BytesIO(data))
        elif media_type in (media_types.CSV, media_types.TEXT):
            compression = "gzip" if data[:2] == b"\x1f\x8b" else None
            frame = pd.read_csv(io.BytesIO(data), compression=compression, skipinitialspace=True)
        else:
            raise DataError(f"the dataset artifact is {media_type}; expected CSV or Parquet")
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"the dataset file cannot be read: {error}") from error
    if frame.empty:
        raise DataError("the dataset has no rows")
    return frame
