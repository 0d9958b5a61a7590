"""A Celery app for tests that kill a worker in the middle of a job: the mlgov app, whose worker stalls
the (TEST_STALL_AT_LOAD + 1)-th time it loads a job's inputs (an explanation's start task loads them
once, then each chunk task does), inside the task that holds the job with its heartbeats going, after
creating the file TEST_STALL_FILE. A test waits for that file and kills the worker: the kill lands
where the test chose, whatever the speed of the machine or of the broker. Start it with
`start_worker(..., app="tests.paced_worker")`."""

from __future__ import annotations

import functools
import itertools
import os
import time
from pathlib import Path

from celery.signals import worker_ready

from config.celery import app

__all__ = ["app"]


@worker_ready.connect
def stall_a_task(**kwargs) -> None:
    from explain import execution  # Django is set up once the worker is ready

    at = int(os.environ["TEST_STALL_AT_LOAD"])
    marker = Path(os.environ["TEST_STALL_FILE"])
    load = execution.job_inputs
    loads = itertools.count()

    @functools.wraps(load)
    def stalling(*args, **kw):
        if next(loads) == at:
            marker.touch()
            time.sleep(3600)  # until the test kills this worker
        return load(*args, **kw)

    execution.job_inputs = stalling
