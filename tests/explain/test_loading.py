"""Safe model checks and loading (skops with an allow-list; pickle refused unless the operator allows
it, and never unpickled by the service itself) and dataset checks that name the problem."""

from __future__ import annotations

import io
import os
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.preprocessing import FunctionTransformer

from core import media_types
from explain.loading import (
    DataError,
    ModelLoadError,
    load_model_bytes,
    model_bytes_check,
    read_table_bytes,
    select,
)


def _fitted():
    X = np.random.default_rng(0).random((60, 3))
    return RandomForestClassifier(5, random_state=0).fit(X, X[:, 0] > 0.5)


def test_skops_models_load_including_types_on_the_allow_list():
    model = GradientBoostingClassifier(n_estimators=5).fit(np.eye(4).repeat(5, 0), [0, 1, 0, 1] * 5)
    data = sio.dumps(model)
    assert sio.get_untrusted_types(data=data)  # skops itself would refuse these by default
    loaded = load_model_bytes(data, media_type=media_types.SKOPS, allow_pickle=False)
    assert (loaded.predict(np.eye(4)) == model.predict(np.eye(4))).all()


def test_a_skops_file_with_an_untrusted_type_is_refused_and_the_type_named():
    sneaky = sio.dumps(FunctionTransformer(func=os.system))
    for check in (model_bytes_check, load_model_bytes):
        with pytest.raises(ModelLoadError) as error:
            check(sneaky, media_type=media_types.SKOPS, allow_pickle=False)
        assert "not trusted" in str(error.value)
        assert "system" in str(error.value)
    model_bytes_check(sio.dumps(_fitted()), media_type=media_types.SKOPS, allow_pickle=False)  # no error


class WritesAMarker:
    """Unpickling this runs a command (as any pickle may): it leaves a file behind if it ever runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", [media_types.PICKLE, media_types.JOBLIB])
def test_pickle_and_joblib_are_refused_unless_allowed_and_never_unpickled_here(kind, tmp_path):
    buffer = io.BytesIO()
    if kind == media_types.PICKLE:
        pickle.dump(WritesAMarker(tmp_path / "marker"), buffer)
    else:
        joblib.dump(WritesAMarker(tmp_path / "marker"), buffer)
    for check in (model_bytes_check, load_model_bytes):
        with pytest.raises(ModelLoadError) as error:
            check(buffer.getvalue(), media_type=kind, allow_pickle=False)
        assert "skops.io.dump" in str(error.value)
        assert "operator" in str(error.value)
    assert model_bytes_check(buffer.getvalue(), media_type=kind, allow_pickle=True) is None
    assert not (tmp_path / "marker").exists()  # checked, not loaded


def test_other_files_are_not_models():
    with pytest.raises(ModelLoadError, match="not a skops file"):
        load_model_bytes(b"a,b\n1,2\n", media_type=media_types.CSV, allow_pickle=False)


FRAME = pd.DataFrame({"age": [30, 40, 50], "job": ["a", "b", "c"], "label": [0, 1, 0]})


def test_dataset_columns_are_checked_by_name():
    with pytest.raises(DataError, match="no column 'income'"):
        select(FRAME, features=["age", "income"])
    with pytest.raises(DataError, match="column 'job' must be numeric"):
        select(FRAME, features=["age", "job"])
    gappy = FRAME.assign(age=[30, None, 50])
    with pytest.raises(DataError, match="column 'age' has 1 missing values"):
        select(gappy, features=["age"])
    data = select(FRAME, features=["age"], target="label", extra=["job"])
    assert data.X.shape == (3, 1)
    assert list(data.frame.columns) == ["age", "label", "job"]


def test_empty_and_unreadable_tables():
    with pytest.raises(DataError, match="empty"):
        read_table_bytes(b"", media_types.CSV)
    with pytest.raises(DataError, match="no rows"):
        read_table_bytes(b"age,label\n", media_types.CSV)
    with pytest.raises(DataError, match="cannot be read"):
        read_table_bytes(b"PAR1 not really parquet PAR1", media_types.PARQUET)
    buffer = io.BytesIO()
    FRAME.to_parquet(buffer)
    assert read_table_bytes(buffer.getvalue(), media_types.PARQUET).shape == (3, 3)
