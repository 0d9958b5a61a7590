"""Datasets are measured before they are loaded: a small file that stands for a huge table is refused
naming the limit, without the table ever being built."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import media_types
from core.tables import DataError, read_table_bytes


def huge_parquet(rows: int, columns: tuple[str, ...] = ("score", "sex", "label")) -> bytes:
    """`rows` rows of zeros in a file of a few hundred KB (run-length encoded), written in row groups
    so that making it needs little memory either."""
    group = pa.table({name: pa.array(np.zeros(1_000_000, dtype=np.int8)) for name in columns})
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, group.schema, compression="zstd") as writer:
        for _ in range(rows // 1_000_000):
            writer.write_table(group)
    return buffer.getvalue()


def test_a_parquet_file_past_the_row_limit_is_refused_from_its_metadata():
    data = huge_parquet(60_000_000)
    assert len(data) < 2_000_000
    before = pa.total_allocated_bytes()
    with pytest.raises(DataError, match=r"60,000,000 rows; the limit is 20,000,000 \(DATA_MAX_ROWS\)"):
        read_table_bytes(data, media_types.PARQUET)
    assert pa.total_allocated_bytes() - before < 10_000_000  # nothing was decoded


def test_columns_and_cells_limits_name_their_setting(settings):
    frame = pd.DataFrame(np.ones((100, 30)), columns=[f"c{i}" for i in range(30)])
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    settings.DATA_MAX_COLUMNS = 20
    with pytest.raises(DataError, match=r"30 columns; the limit is 20 \(DATA_MAX_COLUMNS\)"):
        read_table_bytes(buffer.getvalue(), media_types.PARQUET)
    settings.DATA_MAX_COLUMNS, settings.DATA_MAX_CELLS = 100, 2_000
    with pytest.raises(DataError, match=r"3,000 cells; the limit is 2,000 \(DATA_MAX_CELLS\)"):
        read_table_bytes(buffer.getvalue(), media_types.PARQUET)
    settings.DATA_MAX_CELLS = 3_000
    assert read_table_bytes(buffer.getvalue(), media_types.PARQUET).shape == (100, 30)


def test_a_gzip_csv_bomb_is_counted_as_a_stream_and_refused(settings):
    settings.DATA_MAX_ROWS = 1_000_000
    body = b"a,b\n" + b"0,0\n" * 3_000_000
    bomb = gzip.compress(body)
    assert len(bomb) < 100_000
    with pytest.raises(DataError, match=r"at least [\d,]+ rows; the limit is 1,000,000 \(DATA_MAX_ROWS\)"):
        read_table_bytes(bomb, media_types.CSV)
    small = b"a,b\n" + b"1,2\n" * 10
    assert read_table_bytes(small, media_types.CSV).shape == (10, 2)
