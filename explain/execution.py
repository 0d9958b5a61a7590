"""Explanation and fairness jobs on the workers: the steps their tasks (explain/tasks.py) run.

Jobs are background work (core/work.py): run by tasks that fail the job on any exception, kept alive
by heartbeats and run again by the sweep when their worker dies. Every step is idempotent, so a
repeated or re-run task changes nothing twice:
- `job_start` marks the job running and creates its chunk rows once (get-or-create by index);
- `chunk_run` skips a chunk already done, and writes its output to a storage key of its own, so a
  re-run overwrites rather than duplicates;
- `job_finalize` locks the job row and does nothing if the job has finished, so however many
  workers reach it, one result artifact, one lineage node and one completion audit event exist.

What a job runs on (its model, data, rows and background sample) is read by explain/inputs.py.
"""

from __future__ import annotations

import io
import logging
import socket
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from core.actors import SYSTEM
from core.artifacts import artifact_store_bytes
from core.audit import audit_append
from core.canonical_json import canonical_bytes
from core.models import Artifact
from core.work import TRANSIENT_ERRORS, WorkFailure, describe, work_start, work_succeed
from explain import disjointness, explainers, fairness, loading
from explain.evidence import Explanation, FairnessAssessment
from explain.inputs import JobFailure, job_background, job_inputs, job_rows
from explain.models import BACKEND_DETAIL_LENGTH, Job, JobChunk, JobKind
from explain.sandbox import SandboxedModel, SandboxError
from explain.treeshap import UnsupportedModel
from lineage.kinds import EdgeKind, NodeKind
from lineage.models import Node
from lineage.services import lineage_record
from lineage.specs import Batch, NodeSpec

logger = logging.getLogger(__name__)

# What a step lets through to its task as it is (core.work.WorkTask): blips, which the task retries,
# and failures already worded for the job. Anything else the model raises is worded here.
FOR_THE_TASK: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, WorkFailure)


# --- the model, in this process or in the sandbox ------------------------------------------------------


def _choose_backend(model: Any, requested: str) -> tuple[str, str]:
    if isinstance(model, SandboxedModel):  # the sandbox has no GPU
        note = "gpu requested, ran on cpu: a pickle model runs in the sandbox" if requested == "gpu" else ""
        return "cpu", note
    return explainers.choose_backend(model, requested)


def _shap_block(model: Any, X: np.ndarray, backend: str, background: np.ndarray | None) -> explainers.Block:
    if isinstance(model, SandboxedModel):
        return model.shap_block(X, background)
    return explainers.shap_block(
        model,
        X,
        backend,
        background,
        cpu_tree=settings.EXPLAIN_CPU_TREESHAP,
        threads=settings.EXPLAIN_CPU_THREADS,
    )


def _supports_paths(model: Any) -> bool:
    if isinstance(model, SandboxedModel):
        return model.supports_paths
    return explainers.supports_paths(model)


def out_of_memory() -> str:
    """What a job that ran out of its worker's memory says (the limit and the setting that sets it)."""
    limit = settings.WORKER_MAX_ADDRESS_SPACE_MB
    return (
        f"the worker ran out of memory: its processes may use {limit:,} MB (WORKER_MAX_ADDRESS_SPACE_MB); "
        "explain fewer rows (rows, chunk_rows) or give workers more memory"
        if limit > 0
        else "the worker ran out of memory"
    )


def _model_problem(error: BaseException, where: str = "") -> JobFailure:
    """An exception met while loading or running the model, as the job's error (`chunk 3: ...`)."""
    if isinstance(error, SandboxError):
        message = f"model: {error}"
    elif isinstance(error, MemoryError):
        message = out_of_memory()
    else:
        message = describe(error)
    return JobFailure(f"{where}{message}")


# --- the steps ----------------------------------------------------------------------------------------


def job_start(job_id: str) -> list[int]:
    """Mark the job running and plan its chunks. Returns the indexes of chunks still to run
    (empty when the job is finished or, for fairness, ran here). Problems with the inputs raise
    JobFailure; the task (core.work.WorkTask) fails the job with its message."""
    if work_start(Job, job_id) is None:
        return []
    job = Job.objects.select_related("workspace", "model_node", "dataset_node").get(pk=job_id)
    started = time.perf_counter()
    try:
        model, data = job_inputs(job)
        if job.kind == JobKind.FAIRNESS:
            result = _fairness(job, model, data)
            job_finalize(job_id, fairness_result=result, load_seconds=time.perf_counter() - started)
            return []
        backend, note = _choose_backend(model, job.params.get("backend", "auto"))
    except FOR_THE_TASK:
        raise
    except (SandboxError, MemoryError, UnsupportedModel, ValueError) as error:
        raise _model_problem(error) from error
    n = len(job_rows(job, len(data.X)))
    size = job.params.get("chunk_rows") or settings.EXPLAIN_CHUNK_ROWS
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.finished:  # cancelled while the inputs were loading
            return []
        if not job.chunks.exists():
            JobChunk.objects.bulk_create(
                [
                    JobChunk(job=job, index=i, start=start, stop=min(start + size, n))
                    for i, start in enumerate(range(0, n, size))
                ]
            )
        job.chunks_total = job.chunks.count()
        job.backend = backend
        job.backend_detail = note
        job.timings = {**job.timings, "load_s": round(time.perf_counter() - started, 4)}
        job.step = f"explaining {n} rows in {job.chunks_total} chunks"
        job.save(update_fields=["chunks_total", "backend", "backend_detail", "timings", "step"])
    return list(job.chunks.filter(done=False).values_list("index", flat=True))


def joined_detail(details: str, detail: str, limit: int = BACKEND_DETAIL_LENGTH) -> str:
    """A job's backend details with a chunk's added when new ("a; b"), cut to the column's length."""
    if detail in details:
        return details
    joined = f"{details}; {detail}" if details else detail
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def _chunk_key(job: Job, index: int) -> str:
    return f"jobs/{job.workspace_id}/{job.id}/chunk-{index:05d}-{uuid.uuid4().hex[:8]}.npz"


def ready_to_finalize(job_id: str) -> bool:
    """Every chunk done and the job not finished (also true again after a worker died finalizing)."""
    job = Job.objects.get(pk=job_id)
    return not job.finished and job.chunks_total > 0 and not job.chunks.filter(done=False).exists()


def chunk_run(job_id: str, index: int, worker: str = "") -> bool:
    """Compute one chunk's SHAP values. Returns True when every chunk is done and the job still
    needs its result assembled."""
    job = Job.objects.select_related("workspace", "model_node", "dataset_node").get(pk=job_id)
    chunk = JobChunk.objects.get(job=job, index=index)
    if job.finished:
        return False
    if chunk.done:  # a repeated delivery: maybe the worker that finished it died before finalizing
        return ready_to_finalize(job_id)
    started = time.perf_counter()
    try:
        model, data = job_inputs(job)
        rows = job_rows(job, len(data.X))[chunk.start : chunk.stop]
        backend = job.backend or _choose_backend(model, job.params.get("backend", "auto"))[0]
        background = None if _supports_paths(model) else job_background(job, data.X)
        block = _shap_block(model, data.X[rows], backend, background)
    except FOR_THE_TASK:
        raise
    except Exception as error:  # a model that cannot be explained: say what happened
        raise _model_problem(error, f"chunk {index}: ") from error
    buffer = io.BytesIO()
    np.savez(buffer, values=block.values, expected=block.expected, output=block.output, rows=rows)
    # A key per attempt: two deliveries of one chunk never touch each other's file.
    key = default_storage.save(_chunk_key(job, index), ContentFile(buffer.getvalue()))
    seconds = time.perf_counter() - started
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        chunk = JobChunk.objects.get(pk=chunk.pk)
        late = job.finished or chunk.done
        if not late:
            chunk.done, chunk.storage_key, chunk.backend, chunk.seconds = True, key, block.backend, seconds
            chunk.worker = worker or socket.gethostname()
            chunk.save(update_fields=["done", "storage_key", "backend", "seconds", "worker"])
            job.chunks_done = job.chunks.filter(done=True).count()
            job.progress = job.chunks_done / max(job.chunks_total, 1)
            job.backend = job.backend or block.backend
            job.backend_detail = joined_detail(job.backend_detail, block.detail)
            job.heartbeat_at = timezone.now()
            job.step = f"{job.chunks_done} of {job.chunks_total} chunks explained"
            job.save(
                update_fields=["chunks_done", "progress", "backend", "backend_detail", "heartbeat_at", "step"]
            )
    if late:  # finished, or done by another delivery, meanwhile: this copy is not kept
        default_storage.delete(key)
        return not job.finished and ready_to_finalize(job_id)
    return job.chunks_done == job.chunks_total


# --- results ------------------------------------------------------------------------------------------


def _fairness(job: Job, model: Any, data: loading.Dataset) -> dict[str, Any]:
    params = job.params
    if data.target is None:
        raise JobFailure("fairness assessments need the `target` column")
    started = time.perf_counter()
    with explainers.positional_columns():
        predicted = np.asarray(model.predict(data.X))
    task = "classification" if hasattr(model, "predict_proba") or hasattr(model, "classes_") else "regression"
    positive = params.get("positive_label", 1)
    if task == "classification":
        labels = set(np.unique(data.target).tolist()) | set(np.unique(predicted).tolist())
        if positive not in labels:
            raise JobFailure(
                f"positive_label {positive!r} is not among the labels {sorted(map(str, labels))[:10]}"
            )
    weights = None
    if params.get("weight_column"):
        column = data.frame[params["weight_column"]]
        if not pd.api.types.is_numeric_dtype(column):
            raise JobFailure(f"weight column {params['weight_column']!r} must be numeric")
        weights = column.to_numpy(dtype=np.float64)
    try:
        result = fairness.assess(
            data.target,
            predicted,
            data.frame[params["sensitive_features"]],
            task=task,
            positive_label=positive,
            resamples=params.get("resamples", 200),
            level=params.get("confidence_level", 0.95),
            min_group_size=params.get("min_group_size", 30),
            reference_group=params.get("reference_group"),
            sample_weight=weights,
            seed=params.get("seed", 0),
        )
    except fairness.FairnessInputError as error:
        raise JobFailure(str(error)) from error
    # Which data it ran on, and how much of it the model was trained on (proven from the rows).
    result["data"] = disjointness.data_record(
        dataset=job.dataset_node,
        artifact=job.dataset_artifact,
        model_node=job.model_node,
        evaluation=data.frame,
        columns=[*data.features, params["target"]],
    )
    result["compute_s"] = round(time.perf_counter() - started, 4)
    return result


def _explanation_result(job: Job) -> tuple[dict[str, Any], bytes]:
    model, data = job_inputs(job)
    parts = [np.load(default_storage.open(c.storage_key, "rb")) for c in job.chunks.order_by("index")]
    values = np.concatenate([p["values"] for p in parts], axis=0)
    output = np.concatenate([p["output"] for p in parts], axis=0)
    rows = np.concatenate([p["rows"] for p in parts], axis=0)
    expected = parts[0]["expected"] if parts else np.zeros(1)
    n_outputs = values.shape[2] if values.ndim == 3 else 1
    plot_output = job.params.get("output")
    if plot_output is None or not 0 <= plot_output < n_outputs:
        plot_output = n_outputs - 1  # the positive class of a binary classifier
    imp = explainers.importance(values)
    order = np.argsort(-imp[:, plot_output])
    summary = {
        "rows": len(rows),
        "features": data.features,
        "outputs": n_outputs,
        "output_names": [str(c) for c in getattr(model, "classes_", [])] if n_outputs > 1 else ["output"],
        "expected_value": [float(v) for v in expected],
        "additivity_residual": explainers.residual(values, expected, output),
        "importance": {data.features[f]: [float(v) for v in imp[f]] for f in range(len(data.features))},
        "top_features": [data.features[f] for f in order[:10]],
        "plot_output": int(plot_output),
        "figures": explainers.figures(
            values, data.X[rows], data.features, plot_output, seed=job.params.get("seed", 0)
        ),
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, shap_values=values, expected_value=expected, rows=rows, features=np.asarray(data.features)
    )
    return summary, buffer.getvalue()


def job_finalize(
    job_id: str, *, fairness_result: dict[str, Any] | None = None, load_seconds: float | None = None
) -> None:
    """Store the result, record it in the lineage graph and the audit log, mark the job done."""
    job = Job.objects.select_related("workspace", "model_node", "dataset_node").get(pk=job_id)
    if job.finished:
        return
    started = time.perf_counter()
    try:
        if job.kind == JobKind.FAIRNESS:
            if fairness_result is None:
                raise JobFailure("internal error: a fairness job reached finalize without its result")
            summary, blob, filename = fairness_result, canonical_bytes(fairness_result), "fairness.json"
            media_type = "application/json"
        else:
            summary, blob = _explanation_result(job)
            filename, media_type = "shap_values.npz", "application/zip"
    except OSError:
        if Job.objects.get(pk=job_id).finished:  # cancelled meanwhile: its chunk outputs are gone
            return
        raise
    with transaction.atomic():
        job = (
            Job.objects.select_for_update()
            .select_related("workspace", "model_node", "dataset_node")
            .get(pk=job_id)
        )
        if job.finished:  # finished by another worker, or cancelled, meanwhile
            return
        artifact = artifact_store_bytes(
            workspace=job.workspace, actor=SYSTEM, data=blob, filename=filename, media_type=media_type
        )  # content-addressed: a repeat stores nothing new
        node = _record_lineage(job, summary, artifact)
        timings = dict(job.timings)
        if load_seconds is not None:
            timings["load_s"] = round(load_seconds, 4)
        if job.kind == JobKind.EXPLANATION:
            timings["compute_s"] = round(sum(c.seconds or 0 for c in job.chunks.all()), 4)
        else:
            timings["compute_s"] = summary.get("compute_s")
        timings["finalize_s"] = round(time.perf_counter() - started, 4)
        now = timezone.now()
        timings["total_s"] = round((now - (job.started_at or now)).total_seconds(), 4)
        work_succeed(
            job,
            timings=timings,
            result=summary,
            result_artifact=artifact,
            result_node=node,
            backend=job.backend or "cpu",
            step="done",
        )
        audit_append(
            workspace=job.workspace,
            actor=SYSTEM,
            action=f"{job.kind}.complete",
            target=f"job:{job.id}",
            payload={
                "model": job.model_node.key,
                "dataset": job.dataset_node.key,
                "backend": job.backend,
                "artifact": str(artifact.pk),
                "sha256": artifact.sha256,
                "node": node.pk,
            },
        )
    job.chunks_discard()


def _record_lineage(job: Job, summary: dict[str, Any], artifact: Artifact) -> Node:
    if job.kind == JobKind.EXPLANATION:
        kind = NodeKind.EXPLANATION
        explanation = Explanation.from_result(summary)
        properties = {
            "job": str(job.id),
            "backend": job.backend,
            "rows": explanation.rows,
            "additivity_residual": explanation.additivity_residual,
            "top_features": list(explanation.top_features),
        }
    else:
        kind = NodeKind.FAIRNESS_ASSESSMENT
        assessment = FairnessAssessment.from_result(summary)
        properties = {
            "job": str(job.id),
            "sensitive_features": list(assessment.sensitive_features),
            "rows": assessment.rows,
            "disparities": assessment.disparity_values(),
        }
    batch = Batch()
    ref = batch.node(NodeSpec(kind, f"{job.kind}-{job.id}", properties=properties, artifact=str(artifact.pk)))
    batch.edge(EdgeKind.ASSESSES, ref, (job.model_node.kind, job.model_node.key))
    batch.edge(EdgeKind.EVALUATED_ON, ref, (job.dataset_node.kind, job.dataset_node.key))
    lineage_record(
        workspace=job.workspace, actor=SYSTEM, batch=batch, source=job.kind, body={"job": str(job.id)}
    )
    return Node.objects.get(workspace=job.workspace, kind=kind, key=f"{job.kind}-{job.id}")
