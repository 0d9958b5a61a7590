"""Explanation and fairness jobs on the request path: asking for one (`job_create`, idempotent under
an Idempotency-Key), cancelling one, and sending unfinished ones to the workers again.

Jobs are background work (core/work.py): a job is dispatched once the transaction that made it
commits. What the workers then do is in explain/execution.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction

from core.actors import Actor
from core.audit import audit_append
from core.errors import ApplicationError, Conflict
from core.models import Workspace
from core.work import work_cancel, work_dispatch, work_send
from explain.models import Job, JobKind
from explain.selectors import dataset_version_node, job_get
from explain.selectors import model_version_node as model_version_node  # demo/ asks for it here
from lineage.models import Node


def _queue_for(kind: str, params: dict[str, Any]) -> str:
    gpu_queue = settings.EXPLAIN_GPU_QUEUE
    if kind == JobKind.EXPLANATION and gpu_queue and params.get("backend", "auto") != "cpu":
        return gpu_queue
    return settings.CELERY_TASK_DEFAULT_QUEUE


def job_create(
    *,
    workspace: Workspace,
    actor: Actor,
    kind: str,
    model_node: Node,
    dataset_key: str,
    params: dict[str, Any],
    idempotency_key: str = "",
) -> tuple[Job, bool]:
    """Ask for a job. Returns (job, created): with an `idempotency_key` already used in the workspace
    for the same request, the job made then, and False (nothing is queued or audited again)."""
    if model_node.artifact_id is None:
        raise ApplicationError(
            f"model version {model_node.key} has no model artifact attached (record it with an artifact)",
            field="model",
        )
    dataset_node = dataset_version_node(workspace, dataset_key)
    if idempotency_key:
        earlier = _job_for_key(workspace, idempotency_key, kind, model_node, dataset_node, params)
        if earlier is not None:
            return earlier, False
    try:
        return _job_insert(workspace, actor, kind, model_node, dataset_node, params, idempotency_key), True
    except IntegrityError:
        if not idempotency_key:
            raise
        # Another request with the same key committed first: answer with its job.
        earlier = _job_for_key(workspace, idempotency_key, kind, model_node, dataset_node, params)
        if earlier is None:
            raise
        return earlier, False


def _job_for_key(
    workspace: Workspace, key: str, kind: str, model_node: Node, dataset_node: Node, params: dict[str, Any]
) -> Job | None:
    earlier = Job.objects.filter(workspace=workspace, idempotency_key=key).first()
    if earlier is None:
        return None
    same = (earlier.kind, earlier.model_node_id, earlier.dataset_node_id, earlier.params) == (
        kind,
        model_node.pk,
        dataset_node.pk,
        params,
    )
    if not same:
        raise Conflict(
            f"this Idempotency-Key was used for a different request (job {earlier.pk}); use a new key",
            field="Idempotency-Key",
        )
    return earlier


@transaction.atomic
def _job_insert(
    workspace: Workspace,
    actor: Actor,
    kind: str,
    model_node: Node,
    dataset_node: Node,
    params: dict[str, Any],
    idempotency_key: str,
) -> Job:
    job = Job.objects.create(
        workspace=workspace,
        kind=kind,
        model_node=model_node,
        dataset_node=dataset_node,
        model_artifact_id=model_node.artifact_id,
        dataset_artifact_id=dataset_node.artifact_id,
        params=params,
        queue=_queue_for(kind, params),
        created_by=actor.user,
        idempotency_key=idempotency_key,
    )
    audit_append(
        workspace=workspace,
        actor=actor,
        action=f"{kind}.request",
        target=f"job:{job.id}",
        payload={"model": model_node.key, "dataset": dataset_node.key, "params": params, "queue": job.queue},
    )
    work_dispatch(job)
    return job


def jobs_redispatch(jobs: Iterable[Job]) -> list[Job]:
    """Send the start message of unfinished jobs again now (an operator's tool; the periodic sweep of
    core/work.py does this by itself). Safe to repeat: a started job plans only its chunks not yet
    done, and a chunk or a result done twice is kept once."""
    return [job for job in jobs if not job.finished and work_send(job)]


def job_cancel(*, workspace: Workspace, actor: Actor, job_id: UUID | str) -> Job:
    """Stop a queued or running job: no further chunk runs, a chunk being computed is thrown away
    when it ends, and no result is recorded. Cancelling a cancelled job changes nothing; a job that
    has succeeded or failed cannot be cancelled (409). Returns the job with its model and dataset
    nodes."""
    job = job_get(workspace=workspace, job_id=job_id)
    work_cancel(
        Job, job, actor=actor, payload={"chunks_done": job.chunks_done, "chunks_total": job.chunks_total}
    )
    return job_get(workspace=workspace, job_id=job_id)
