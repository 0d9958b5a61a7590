"""Jobs that run on Celery workers: explanations and fairness assessments of a model version on a
dataset version. A job's rows are split into chunks that several workers can share."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models

from core.models import Artifact, Workspace
from core.work import Work, WorkState
from lineage.models import Node

logger = logging.getLogger(__name__)


class JobKind(models.TextChoices):
    EXPLANATION = "explanation"
    FAIRNESS = "fairness"


# Jobs share the states of all background work (core/work.py).
JobState = WorkState

BACKEND_DETAIL_LENGTH = 200


class JobQuerySet(models.QuerySet):
    def evidence(self, model_node: Node, kind: str) -> JobQuerySet:
        """Succeeded jobs of `kind` about the model file the version node holds, newest first. A job
        that ran on other bytes (before the node had this artifact) is not evidence about it."""
        return self.filter(
            model_node=model_node,
            model_artifact_id=model_node.artifact_id,
            kind=kind,
            state=JobState.SUCCEEDED,
        ).order_by("-finished_at")


class Job(Work):
    """An explanation or a fairness assessment: background work (core/work.py) whose task is
    `explain.run_job`; an explanation fans out one `explain.run_chunk` task per chunk of rows."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=20, choices=JobKind.choices)
    model_node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    dataset_node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    # The exact bytes the job runs on, fixed when it is asked for: its result is evidence about these
    # files, whatever is recorded on the nodes later.
    model_artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="+")
    dataset_artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="+")
    params = models.JSONField(default=dict)
    queue = models.CharField(max_length=50, default="default")
    backend = models.CharField(max_length=20, blank=True)  # "gpu" or "cpu" once chosen
    # which implementation ran, e.g. "shap.TreeExplainer"
    backend_detail = models.CharField(max_length=BACKEND_DETAIL_LENGTH, blank=True)
    chunks_total = models.IntegerField(default=0)
    chunks_done = models.IntegerField(default=0)
    timings = models.JSONField(default=dict)
    result = models.JSONField(null=True, blank=True)
    result_artifact = models.ForeignKey(
        Artifact, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    result_node = models.ForeignKey(Node, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # the client's Idempotency-Key: the same key in a workspace gives back this job instead of a new one
    idempotency_key = models.CharField(max_length=200, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workspace", "kind", "state"]),
            models.Index(fields=["state", "dispatched_at"], name="explain_job_undispatched"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="explain_job_idempotency_key",
            )
        ]

    work_task = "explain.run_job"

    def __str__(self) -> str:
        return f"{self.kind} job {self.id} ({self.state})"

    @property
    def work_kind(self) -> str:
        return self.kind

    @property
    def work_target(self) -> str:
        return f"job:{self.id}"

    @property
    def work_queue(self) -> str:
        return self.queue

    def after_finished(self) -> None:
        self.chunks_discard()

    def chunks_discard(self) -> None:
        """Delete the stored outputs of the finished job's chunks (the result, if any, has its own copy)."""
        for key in self.chunks.exclude(storage_key="").values_list("storage_key", flat=True):
            try:
                default_storage.delete(key)
            except OSError:
                logger.warning("could not delete %s", key)


class JobChunk(models.Model):
    """Rows [start, stop) of a job's dataset; its output waits in storage until the job finishes."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    index = models.IntegerField()
    start = models.BigIntegerField()
    stop = models.BigIntegerField()
    done = models.BooleanField(default=False)
    storage_key = models.CharField(max_length=200, blank=True)
    backend = models.CharField(max_length=20, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="job_chunk_unique_index")]

    def __str__(self) -> str:
        return f"chunk {self.index} of job {self.job_id} (rows {self.start}-{self.stop})"
