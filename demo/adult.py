"""The demo's data science: the Adult census data, its preparation, and the two models.

This is the "training code" the demo's lineage points at: `adult@v1` is the raw file, `prepare`
derives `adult@v2` (training rows) and `adult-holdout@v2` (the original test rows), and `train`
fits the two model versions. Version 1 uses sex and race as features and shows a real disparity;
version 2 drops them and reweighs the training rows so that sex and the label are independent
(Kamiran & Calders 2012), trading a little accuracy for a much smaller equalized-odds gap.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

RAW = Path(__file__).resolve().parent / "data" / "adult.csv.gz"
TRAIN_ROWS = 32_561  # the original training file comes first in the shipped copy
LABEL = "income_over_50k"
SENSITIVE = ["sex", "race"]
BASE_FEATURES = [
    "age",
    "education_num",
    "hours_per_week",
    "capital_gain",
    "capital_loss",
    "married",
    "exec_or_prof",
    "works_private",
]
SENSITIVE_FEATURES = ["is_male", "is_white"]
FEATURES = {"1": BASE_FEATURES + SENSITIVE_FEATURES, "2": BASE_FEATURES}  # per model version
RACES = ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"]


def raw_bytes() -> bytes:
    """The raw CSV, uncompressed, as it is uploaded for `adult@v1`."""
    with gzip.open(RAW, "rb") as handle:
        return handle.read()


def prepare(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop rows with missing values (`?`), encode the label as 0/1 and add numeric indicator
    columns; return (training rows, holdout rows) split as the original files were."""
    raw = raw.copy()
    raw["original_split"] = np.where(np.arange(len(raw)) < TRAIN_ROWS, "train", "test")
    clean = raw.replace("?", np.nan).dropna().reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "age": clean["age"].astype(int),
            "education_num": clean["education_num"].astype(int),
            "hours_per_week": clean["hours_per_week"].astype(int),
            "capital_gain": clean["capital_gain"].astype(int),
            "capital_loss": clean["capital_loss"].astype(int),
            "married": clean["marital_status"].str.startswith("Married").astype(int),
            "exec_or_prof": clean["occupation"].isin(["Exec-managerial", "Prof-specialty"]).astype(int),
            "works_private": (clean["workclass"] == "Private").astype(int),
            "is_male": (clean["sex"] == "Male").astype(int),
            "is_white": (clean["race"] == "White").astype(int),
            "sex": clean["sex"],
            "race": clean["race"],
            LABEL: clean["income"].str.startswith(">50K").astype(int),
        }
    )
    train = clean["original_split"] == "train"
    return frame[train].reset_index(drop=True), frame[~train].reset_index(drop=True)


def load() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(raw, prepared training rows, prepared holdout rows)."""
    raw = pd.read_csv(RAW, skipinitialspace=True)
    train, holdout = prepare(raw)
    return raw, train, holdout


def reweighing(frame: pd.DataFrame, group: str, label: str) -> np.ndarray:
    """Weights that make `group` and `label` independent in the weighted data:
    w(g, y) = P(g) P(y) / P(g, y)."""
    weights = np.ones(len(frame))
    for g in frame[group].unique():
        in_group = (frame[group] == g).to_numpy()
        for y in frame[label].unique():
            cell = in_group & (frame[label] == y).to_numpy()
            if cell.any():
                weights[cell] = in_group.mean() * (frame[label] == y).mean() / cell.mean()
    return weights


@dataclass
class Trained:
    version: str
    model: object
    features: list[str]
    params: dict
    metrics: dict[str, float]
    description: str


def _metrics(model, holdout: pd.DataFrame, features: list[str]) -> dict[str, float]:
    X, y = holdout[features].astype(float), holdout[LABEL].to_numpy()
    predicted = model.predict(X)
    return {
        "accuracy": round(float(accuracy_score(y, predicted)), 4),
        "balanced_accuracy": round(float(balanced_accuracy_score(y, predicted)), 4),
        "roc_auc": round(float(roc_auc_score(y, model.predict_proba(X)[:, 1])), 4),
    }


def train(train_rows: pd.DataFrame, holdout: pd.DataFrame, *, trees: int = 100) -> list[Trained]:
    """Fit version 1 (with sex and race) and version 2 (without, reweighed). Deterministic."""
    models = []
    for version, weights, description in (
        ("1", None, "random forest on all features, sex and race included"),
        (
            "2",
            reweighing(train_rows, "sex", LABEL),
            "random forest without sex and race, trained on rows reweighed so sex and the label are "
            "independent (Kamiran & Calders)",
        ),
    ):
        features = FEATURES[version]
        params: dict[str, Any] = {"n_estimators": trees, "max_depth": 8, "random_state": 0}
        model = RandomForestClassifier(**params, n_jobs=2)
        # A frame: the model records its feature names, so explanations need not list them.
        model.fit(train_rows[features].astype(float), train_rows[LABEL], sample_weight=weights)
        model.set_params(n_jobs=None)  # the stored model runs wherever the worker decides
        params["reweighing"] = "sex x label" if weights is not None else "none"
        models.append(
            Trained(version, model, features, params, _metrics(model, holdout, features), description)
        )
    return models
