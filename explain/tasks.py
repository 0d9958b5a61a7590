"""Celery tasks of the explain app: thin wrappers taking ids, on core.work.WorkTask (retries for
blips, any other exception fails the job, heartbeats while running; the sweep re-runs a job whose
worker died). explain/execution.py makes every step safe to repeat."""

from __future__ import annotations

from core.work import task_send, work_task
from explain import execution
from explain.models import Job


@work_task("explain.run_job", "explain.Job")
def run_job(job_id: str) -> int:
    """Start a job: fairness runs here; an explanation fans out one task per chunk of rows."""
    pending = execution.job_start(job_id)
    if not pending:
        if execution.ready_to_finalize(job_id):  # a worker died after the last chunk, before the result
            execution.job_finalize(job_id)
        return 0
    job = Job.objects.only("queue", "kind").get(pk=job_id)
    for index in pending:
        task_send("explain.run_chunk", (job_id, index), queue=job.queue, kind=job.kind)
    return len(pending)


@work_task("explain.run_chunk", "explain.Job", bind=True)
def run_chunk(self, job_id: str, index: int) -> bool:
    """Explain one chunk; the worker that completes the last chunk assembles the result."""
    if execution.chunk_run(job_id, index, worker=self.request.hostname or ""):
        execution.job_finalize(job_id)
        return True
    return False
