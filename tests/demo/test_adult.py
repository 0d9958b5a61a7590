"""The demo's data preparation and its mitigation, on small synthetic frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demo import adult


def test_reweighing_makes_the_group_and_the_label_independent():
    rng = np.random.default_rng(0)
    sex = rng.choice(["Female", "Male"], 5000, p=[0.3, 0.7])
    label = (rng.random(5000) < np.where(sex == "Male", 0.3, 0.1)).astype(int)
    frame = pd.DataFrame({"sex": sex, "label": label})
    weights = adult.reweighing(frame, "sex", "label")
    rates = {
        group: np.average(frame["label"][frame["sex"] == group], weights=weights[frame["sex"] == group])
        for group in ("Female", "Male")
    }
    assert abs(rates["Female"] - rates["Male"]) < 1e-12  # weighted positive rates are equal
    assert abs(rates["Male"] - frame["label"].mean()) < 1e-12
    assert abs(weights.sum() - len(frame)) < 1e-6  # the weighted data has as many rows


def test_prepare_drops_missing_rows_and_splits_as_the_original_files():
    rows = adult.TRAIN_ROWS + 3
    raw = pd.DataFrame(
        {
            "age": 30,
            "workclass": ["Private"] * rows,
            "education_num": 13,
            "marital_status": "Married-civ-spouse",
            "occupation": "Exec-managerial",
            "race": "White",
            "sex": "Female",
            "capital_gain": 0,
            "capital_loss": 0,
            "hours_per_week": 40,
            "income": "<=50K",
        }
    )
    raw.loc[0, "workclass"] = "?"
    raw.loc[rows - 1, "income"] = ">50K"
    train, holdout = adult.prepare(raw)
    assert len(train) == adult.TRAIN_ROWS - 1
    assert len(holdout) == 3
    assert holdout[adult.LABEL].tolist() == [0, 0, 1]
    assert set(adult.BASE_FEATURES + adult.SENSITIVE_FEATURES) <= set(train.columns)
    assert train["married"].eq(1).all()
    assert train["is_male"].eq(0).all()
