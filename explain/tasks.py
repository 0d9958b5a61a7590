"""Celery tasks of the explain app: thin wrappers taking ids. acks_late everywhere: a task whose
worker dies is handed to another worker, and the services make every step safe to repeat."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from explain import services
from explain.models import Job

RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (DatabaseError,),  # the database blinked: try again; input problems fail the job
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "max_retries": 10,
}


@shared_task(name="explain.run_job", **RETRY)
def run_job(job_id: str) -> int:
    """Start a job: fairness runs here; an explanation fans out one task per chunk of rows."""
    pending = services.job_start(job_id)
    if not pending:
        if services.ready_to_finalize(job_id):  # a worker died after the last chunk, before the result
            services.job_finalize(job_id)
        return 0
    queue = Job.objects.values_list("queue", flat=True).get(pk=job_id)
    for index in pending:
        run_chunk.apply_async((job_id, index), queue=queue)
    return len(pending)


@shared_task(name="explain.run_chunk", bind=True, **RETRY)
def run_chunk(self, job_id: str, index: int) -> bool:
    """Explain one chunk; the worker that completes the last chunk assembles the result."""
    if services.chunk_run(job_id, index, worker=self.request.hostname or ""):
        services.job_finalize(job_id)
        return True
    return False


@shared_task(name="explain.dispatch_pending", acks_late=True)
def dispatch_pending() -> int:
    """Periodic (Celery beat, CELERY_BEAT_SCHEDULE): send the jobs whose start message could not
    reach the broker when they were asked for. Returns how many were sent."""
    sent, _ = services.dispatch_pending()
    return sent
