"""Explanation and fairness fixtures: models saved with skops, datasets as CSV, both uploaded
through the artifact store and attached to lineage nodes, as a data scientist would."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio

from core.actors import Actor
from core.artifacts import Spool, artifact_store
from tests.lineage.helpers import record, ref


def store_bytes(workspace, user, data: bytes, filename: str, media_type: str = ""):
    spool = Spool()
    spool.write(data)
    artifact, _ = artifact_store(
        workspace=workspace,
        actor=Actor(user=user),
        spool=spool.finish(),
        filename=filename,
        declared_media_type=media_type,
    )
    return artifact


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def register(
    workspace,
    user,
    model,
    frame: pd.DataFrame,
    *,
    name="income",
    version="1",
    dataset="adult@v1",
    model_bytes: bytes | None = None,
    model_media_type: str = "",
):
    """Upload the model (skops unless bytes are given) and the data, and record them in lineage."""
    model_artifact = store_bytes(
        workspace,
        user,
        model_bytes if model_bytes is not None else sio.dumps(model),
        f"{name}.skops",
        model_media_type,
    )
    data_artifact = store_bytes(workspace, user, csv_bytes(frame), f"{dataset}.csv")
    record(
        workspace,
        user,
        {"type": "node", "kind": "DatasetVersion", "key": dataset, "artifact": str(data_artifact.pk)},
        {
            "type": "node",
            "kind": "ModelVersion",
            "key": f"{name}@{version}",
            "artifact": str(model_artifact.pk),
            "version_of": ref("Model", name),
        },
        {
            "type": "run",
            "run": {"key": f"train-{name}-{version}"},
            "inputs": [ref("DatasetVersion", dataset)],
            "outputs": [ref("ModelVersion", f"{name}@{version}")],
        },
    )
    return model_artifact, data_artifact


def planted_bias(n: int = 20_000, seed: int = 3) -> pd.DataFrame:
    """Selection rates planted by construction: 0.6 for sex=1 and 0.3 for sex=0 (difference 0.3)."""
    rng = np.random.default_rng(seed)
    sex = rng.integers(0, 2, n)
    score = rng.random(n)
    race = rng.choice(["a", "b"], n)
    label = (score < np.where(sex == 1, 0.6, 0.3)).astype(int)
    return pd.DataFrame({"score": score, "sex": sex, "race": race, "label": label})


def documented_result_fields(kind: str) -> set[str]:
    """The result fields docs/explain.md lists under "Results" for `kind` ("fairness" or
    "explanation"): the contract the service's evidence types and the mlgov client both read."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "explain.md").read_text()
    results = text.split("\n## Results\n", 1)[1]
    heading = {"fairness": "\nFairness assessment:\n", "explanation": "\nExplanation:\n"}[kind]
    table = results.split(heading, 1)[1].strip().split("\n\n", 1)[0]
    rows = table.splitlines()[2:]  # after the header and its rule
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}
