"""Which data an assessment ran on, and whether it was kept apart from the training data — proven
from the rows themselves: each row of the evaluation data is fingerprinted over the model's feature
and target columns (explain/fingerprints.py) and looked up among the fingerprints of the model
version's training data sets (its TRAINED_ON edges in the lineage graph). The fingerprints of each
file are kept in the artifact store, keyed by the file's SHA-256 and the columns, so asking again
(another assessment, another model on the same data) does not read the training data again."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from core.models import Artifact
from core.tables import DataError, cached_table
from explain import fingerprints
from lineage.kinds import EdgeKind
from lineage.models import Edge, Node

logger = logging.getLogger(__name__)


def _key(artifact: Artifact, columns: list[str]) -> str:
    return f"fingerprints/{artifact.sha256}/{fingerprints.columns_key(columns)}.npy"


def fingerprints_of(artifact: Artifact, columns: list[str]) -> np.ndarray:
    """The row fingerprints of a stored table over `columns`, computed once and kept."""
    key = _key(artifact, columns)
    if default_storage.exists(key):
        with default_storage.open(key, "rb") as handle:
            return fingerprints.from_bytes(handle.read())
    computed = fingerprints.row_fingerprints(cached_table(str(artifact.pk)), columns)
    try:
        default_storage.save(key, ContentFile(fingerprints.to_bytes(computed)))
    except OSError:  # kept or not, the answer is the same; the next check computes it again
        logger.warning("could not keep the fingerprints of %s", artifact.sha256, exc_info=True)
    return computed


def training_datasets(model_node: Node) -> list[Node]:
    """The dataset versions the model version was trained on (its TRAINED_ON edges)."""
    ids = Edge.objects.filter(src=model_node, kind=EdgeKind.TRAINED_ON).values_list("dst_id", flat=True)
    return list(Node.objects.filter(pk__in=list(ids)).select_related("artifact").order_by("key"))


def data_record(
    *, dataset: Node, artifact: Artifact, model_node: Node, evaluation: Any, columns: list[str]
) -> dict[str, Any]:
    """What an assessment records about its data: the dataset version and file it ran on, and how
    many of its rows (over `columns`) are rows of the model's training data. `overlap` is None when
    it cannot be proven (no training data in the lineage graph, or a training file that lacks one
    of the columns); `notes` says why."""
    record: dict[str, Any] = {
        "dataset": dataset.key,
        "artifact": str(artifact.pk),
        "sha256": artifact.sha256,
        "columns": sorted(set(columns)),
        "training": [],
        "notes": [],
    }
    evaluated = fingerprints.row_fingerprints(evaluation, columns)
    known: list[np.ndarray] = []
    for node in training_datasets(model_node):
        entry: dict[str, Any] = {"dataset": node.key}
        if node.artifact is None:
            record["notes"].append(f"training data {node.key} has no file attached: it cannot be compared")
        else:
            entry["sha256"] = node.artifact.sha256
            try:
                found = fingerprints_of(node.artifact, columns)
            except (KeyError, DataError) as error:
                record["notes"].append(f"training data {node.key} cannot be compared: {error}")
            else:
                entry["rows"] = len(found)
                entry["overlap"] = fingerprints.overlap(evaluated, [found])
                known.append(found)
        record["training"].append(entry)
    if not record["training"]:
        record["notes"].append(
            "the lineage graph records no training data for this model version (TRAINED_ON)"
        )
    comparable = record["training"] and len(known) == len(record["training"])
    if comparable:
        rows = fingerprints.overlap(evaluated, known)
        record["overlap"] = {"rows": rows, "of": len(evaluated), "fraction": rows / max(len(evaluated), 1)}
    else:
        record["overlap"] = None
    return record
