"""Background work: one mechanism for every kind of work a worker does (explanation and fairness jobs,
DP releases, reports, and what comes next), so that none of it can hang.

- **States** (`WorkState`): queued -> running -> succeeded | failed | cancelled, with progress and a
  step, a readable error, the attempts made, and the times it was asked for (`created_at`),
  dispatched, started, last heard of (`heartbeat_at`) and finished. Models subclass `Work`.
- **Dispatch** after the transaction that made the work commits, in one place (`work_dispatch`): a
  worker never sees a row that was rolled back. A broker that cannot be reached leaves the work
  queued with no `dispatched_at`; the sweep sends it later.
- **Execution** through one task base class (`WorkTask`): database and broker blips are retried with
  backoff; any other exception, of whatever type, fails the work with a message saying what happened
  and exactly one `<kind>.fail` audit event (and the kind's own clean-up, e.g. a DP release's budget
  is given back); past its soft time limit the work fails saying so. While it runs, a thread sends
  heartbeats.
- **The sweep** (`work_sweep`, Celery beat every WORK_SWEEP_INTERVAL seconds) sends again queued work
  whose message never reached the broker or was lost, and runs again running work whose heartbeat
  stopped (its worker died), failing it after WORK_MAX_ATTEMPTS attempts. No operator step.

Every kind's steps are idempotent (see each app's services), so work sent or run twice is done once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, ClassVar

from celery import Task, current_app, shared_task
from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded
from django.apps import apps
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from core.actors import SYSTEM, Actor
from core.audit import audit_append
from core.errors import Conflict
from core.models import Workspace

logger = logging.getLogger(__name__)

# Blips worth waiting out: the database or the broker could not be reached for a moment.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    BrokerError,
    ConnectionError,
)


class WorkState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (WorkState.SUCCEEDED, WorkState.FAILED, WorkState.CANCELLED)


class WorkFailure(Exception):
    """A problem with the work's inputs (a column missing, a model that cannot be loaded): the work
    fails with exactly this message, and no retry would help."""


class Work(models.Model):
    """What every kind of background work records. A subclass names its Celery task (`work_task`, which
    takes the work's id first) and says what it is in the audit log (`work_kind`, `work_target`)."""

    state = models.CharField(max_length=20, choices=WorkState.choices, default=WorkState.QUEUED)
    progress = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    attempts = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)  # when it was asked for
    # when its start message last reached the broker; null: never (the sweep sends it)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # the last sign of life of a worker running it (heartbeats, progress), and how many of its tasks
    # are running: work whose tasks all ended but that has not finished waits for its next task
    # (an explanation's chunks in the queue); running tasks that went silent mean a dead worker
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    tasks_running = models.IntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    work_task: ClassVar[str] = ""
    workspace: Workspace  # every kind belongs to one workspace (its own foreign key)

    objects = models.Manager()  # each kind may set its own (Job's has `evidence`)

    class Meta:
        abstract = True

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    # --- what a kind says about itself (override) ---

    @property
    def work_kind(self) -> str:
        """The audit actions' prefix: `<kind>.fail`, `<kind>.cancel`."""
        raise NotImplementedError

    @property
    def work_target(self) -> str:
        return f"{self.work_kind}:{self.pk}"

    @property
    def work_queue(self) -> str:
        return settings.CELERY_TASK_DEFAULT_QUEUE

    def on_failed(self) -> dict[str, Any]:
        """Called in the transaction that fails the work (give back what it reserved); returns what
        to add to the failure's audit payload."""
        return {}

    def after_finished(self) -> None:
        """Called once the work has finished (failed or cancelled: its transaction committed), to
        delete what only the running work needed."""


def work_models() -> list[type[Work]]:
    return [model for model in apps.get_models() if issubclass(model, Work)]


def time_limits(kind: str) -> tuple[int, int]:
    """(soft, hard) seconds for a kind of work: past the soft limit the work fails saying so; the hard
    one stops a worker that does not return."""
    soft = settings.WORK_TIME_LIMITS.get(kind, settings.WORK_TIME_LIMITS["default"])
    return soft, soft + settings.WORK_HARD_TIME_LIMIT_GRACE


# --- dispatch -----------------------------------------------------------------------------------------


def _task(name: str) -> Task:
    """The registered task `name`; the apps' task modules are imported the first time (a web process
    has not imported them: Celery's autodiscovery runs when a worker starts)."""
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]


def task_send(name: str, args: tuple = (), *, queue: str | None = None, kind: str = "") -> bool:
    """Send a task now; False (logged) when the broker cannot take it."""
    options: dict[str, Any] = {"queue": queue or settings.CELERY_TASK_DEFAULT_QUEUE}
    if kind:
        options["soft_time_limit"], options["time_limit"] = time_limits(kind)
    try:
        _task(name).apply_async(args, **options)
    except Exception:
        logger.exception("could not send %s%s; it is sent again later", name, args)
        return False
    return True


def task_send_after_commit(name: str, args: tuple = (), *, queue: str | None = None) -> None:
    """Send a task once the current transaction commits (at once outside one); never if it rolls back.
    The one place the service hands work to the broker from a transaction."""
    transaction.on_commit(lambda: task_send(name, args, queue=queue))


def _send(model: type[Work], pk: Any) -> bool:
    work = model.objects.filter(pk=pk).first()
    if work is None or work.finished:
        return False
    if not task_send(model.work_task, (str(pk),), queue=work.work_queue, kind=work.work_kind):
        return False
    model.objects.filter(pk=pk).update(dispatched_at=timezone.now())
    return True


def work_dispatch(work: Work) -> None:
    """Send the work's task once the transaction that made it commits."""
    model, pk = type(work), work.pk
    transaction.on_commit(lambda: _send(model, pk))


def work_send(work: Work) -> bool:
    """Send the work's task again now (an operator's tool; the sweep does this by itself)."""
    return _send(type(work), work.pk)


# --- execution ----------------------------------------------------------------------------------------


def work_start(model: type[Work], pk: Any) -> Work | None:
    """Mark the work running (one more attempt) and return it locked-and-saved; None when there is
    nothing to do: it has finished, or its attempts are used up (it is failed then)."""
    with transaction.atomic():
        work = model.objects.select_for_update().get(pk=pk)
        if work.finished:
            return None
        if work.attempts >= settings.WORK_MAX_ATTEMPTS:
            exhausted = True
        else:
            exhausted = False
            now = timezone.now()
            work.state, work.attempts, work.heartbeat_at = WorkState.RUNNING, work.attempts + 1, now
            work.started_at = work.started_at or now
            work.save(update_fields=["state", "attempts", "heartbeat_at", "started_at"])
    if exhausted:
        work_fail(model, pk, _stopped_message(work.attempts))
        return None
    return work


def _stopped_message(attempts: int) -> str:
    return (
        f"its worker stopped {attempts} times while running it (killed, out of memory, or lost); "
        f"it is not tried again (WORK_MAX_ATTEMPTS={settings.WORK_MAX_ATTEMPTS})"
    )


def work_redelivered(model: type[Work], pk: Any) -> bool:
    """A task of the work comes back from the broker after its worker died running it (RabbitMQ and
    Redis hand unacknowledged messages out again): count the attempt. False when the work has finished
    or has now used up its attempts (it is failed then), so that a task that kills every worker it
    runs on is not run forever."""
    with transaction.atomic():
        work = model.objects.select_for_update().filter(pk=pk).first()
        if work is None or work.finished:
            return False
        work.attempts += 1
        work.save(update_fields=["attempts"])
        exhausted = work.attempts > settings.WORK_MAX_ATTEMPTS
    if exhausted:
        work_fail(model, pk, _stopped_message(work.attempts - 1))
        return False
    return True


def work_progress(model: type[Work], pk: Any, progress: float | None = None, step: str | None = None) -> None:
    """Record progress (0..1) and the current step; counts as a heartbeat."""
    changes: dict[str, Any] = {"heartbeat_at": timezone.now()}
    if progress is not None:
        changes["progress"] = progress
    if step is not None:
        changes["step"] = step[:200]
    model.objects.filter(pk=pk, state=WorkState.RUNNING).update(**changes)


def work_succeed(work: Work, **fields: Any) -> None:
    """Mark locked, unfinished work succeeded (inside the caller's transaction), with its result fields."""
    now = timezone.now()
    for name, value in fields.items():
        setattr(work, name, value)
    work.state, work.progress, work.finished_at, work.heartbeat_at = WorkState.SUCCEEDED, 1.0, now, now
    work.save()


def work_fail(model: type[Work], pk: Any, message: str, *, actor: Actor = SYSTEM) -> bool:
    """Fail the work with `message`: one `<kind>.fail` audit event, the kind's clean-up, in one
    transaction. False when it had already finished (nothing changes)."""
    with transaction.atomic():
        work = model.objects.select_for_update().get(pk=pk)
        if work.finished:
            return False
        work.state, work.error, work.finished_at = WorkState.FAILED, message[:4000], timezone.now()
        work.save(update_fields=["state", "error", "finished_at"])
        extra = work.on_failed()
        audit_append(
            workspace=work.workspace,
            actor=actor,
            action=f"{work.work_kind}.fail",
            target=work.work_target,
            payload={"error": work.error, **extra},
        )
        transaction.on_commit(work.after_finished)
    logger.warning("%s %s failed: %s", work.work_kind, pk, message)
    return True


def work_cancel(
    model: type[Work], work: Work, *, actor: Actor, payload: dict[str, Any] | None = None
) -> Work:
    """Stop queued or running work: nothing more is recorded for it. Cancelling cancelled work changes
    nothing; work that has succeeded or failed cannot be cancelled (409)."""
    with transaction.atomic():
        locked = model.objects.select_for_update().get(pk=work.pk)
        if locked.state == WorkState.CANCELLED:
            return locked
        if locked.finished:
            noun = model._meta.verbose_name
            raise Conflict(
                f"the {noun} has already {locked.state}; only a queued or running {noun} can be cancelled"
            )
        locked.state, locked.finished_at = WorkState.CANCELLED, timezone.now()
        locked.save(update_fields=["state", "finished_at"])
        audit_append(
            workspace=locked.workspace,
            actor=actor,
            action=f"{locked.work_kind}.cancel",
            target=locked.work_target,
            payload=payload or {},
        )
        transaction.on_commit(locked.after_finished)
    return locked


def describe(error: BaseException) -> str:
    """An exception as a job's error: the message alone for input problems, else its type and text."""
    if isinstance(error, WorkFailure):
        return str(error)
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def heartbeats(model: type[Work], pk: Any) -> Iterator[None]:
    """Send the work's heartbeat every WORK_HEARTBEAT_INTERVAL seconds from a thread while the body
    runs (a long computation holds the GIL only in Python code; numpy releases it)."""
    interval = settings.WORK_HEARTBEAT_INTERVAL
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    model.objects.filter(pk=pk, state=WorkState.RUNNING).update(heartbeat_at=timezone.now())
                except Exception:
                    logger.warning(
                        "could not record the heartbeat of %s %s", model.__name__, pk, exc_info=True
                    )
        finally:
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=beat, name=f"heartbeat-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@contextlib.contextmanager
def _holding(model: type[Work], pk: Any) -> Iterator[None]:
    """Count this task among the work's running tasks, with heartbeats, while it runs."""
    model.objects.filter(pk=pk).update(tasks_running=F("tasks_running") + 1, heartbeat_at=timezone.now())
    try:
        with heartbeats(model, pk):
            yield
    finally:
        model.objects.filter(pk=pk, tasks_running__gt=0).update(tasks_running=F("tasks_running") - 1)


class WorkTask(Task):
    """The base of every task that runs work. The task's first argument is the work's id; `work_model`
    names the model ("explain.Job"). acks_late with reject_on_worker_lost: a task whose worker dies is
    handed to another worker."""

    work_model: str = ""
    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 120
    retry_jitter = True
    max_retries = 8

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        model = apps.get_model(self.work_model)
        pk = args[0] if args else kwargs.get("work_id")
        beating: contextlib.AbstractContextManager = (
            contextlib.nullcontext() if self.request.is_eager else _holding(model, pk)
        )
        redelivered = not self.request.is_eager and (self.request.delivery_info or {}).get("redelivered")
        if redelivered and not work_redelivered(model, pk):
            return None  # its worker died running it too often: failed, not run again
        with beating:
            try:
                return super().__call__(*args, **kwargs)
            except (Retry, Reject):
                raise
            except SoftTimeLimitExceeded:
                kind = getattr(model.objects.filter(pk=pk).first(), "work_kind", "default")
                soft, _ = time_limits(kind)
                work_fail(model, pk, f"it ran past its time limit of {soft} s (WORK_TIME_LIMITS)")
            except Exception as error:
                logger.exception("%s %s failed in %s", model.__name__, pk, self.name)
                work_fail(model, pk, describe(error))
        return None


def work_task(name: str, model: str, **options: Any) -> Callable:
    """`@work_task("explain.run_job", "explain.Job")`: a shared task on WorkTask for `model`."""
    return shared_task(name=name, base=WorkTask, work_model=model, **options)


# --- the sweep ----------------------------------------------------------------------------------------


def work_sweep(now: Any = None) -> dict[str, int]:
    """Send again queued work whose message never reached the broker (or was lost: queued for more than
    WORK_REDISPATCH_AFTER seconds after it was sent), and running work none of whose tasks has run for
    that long (its next task's message was lost); run again running work whose tasks stopped sending
    heartbeats (their worker died), failing what has used up its attempts. Returns how many of each."""
    now = now or timezone.now()
    counts = {"sent": 0, "rerun": 0, "failed": 0}
    never_sent = Q(
        dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=settings.WORK_DISPATCH_GRACE)
    )
    lost = Q(dispatched_at__lt=now - timedelta(seconds=settings.WORK_REDISPATCH_AFTER))
    silent = now - timedelta(seconds=settings.WORK_HEARTBEAT_TIMEOUT)
    for model in work_models():
        for pk in model.objects.filter(never_sent | lost, state=WorkState.QUEUED).values_list(
            "pk", flat=True
        )[:500]:
            if not _send(model, pk):
                return counts  # the broker is still unreachable: the next sweep tries again
            counts["sent"] += 1
        idle = model.objects.filter(
            state=WorkState.RUNNING,
            tasks_running=0,
            heartbeat_at__lt=now - timedelta(seconds=settings.WORK_REDISPATCH_AFTER),
        )
        for pk in idle.values_list("pk", flat=True)[:500]:
            # Its start task plans what is left (e.g. the chunks not done) and sends it again.
            model.objects.filter(pk=pk).update(heartbeat_at=now)
            counts["sent"] += _send(model, pk)
        stale = model.objects.filter(state=WorkState.RUNNING, tasks_running__gt=0, heartbeat_at__lt=silent)
        for pk, attempts in stale.values_list("pk", "attempts")[:500]:
            if attempts >= settings.WORK_MAX_ATTEMPTS:
                counts["failed"] += work_fail(model, pk, _stopped_message(attempts))
                continue
            # Conditional: a heartbeat that arrived meanwhile keeps the work where it is.
            requeued = model.objects.filter(pk=pk, state=WorkState.RUNNING, heartbeat_at__lt=silent).update(
                state=WorkState.QUEUED,
                dispatched_at=None,
                tasks_running=0,
                step="sent again: its worker stopped",
            )
            if requeued:
                logger.warning("%s %s: its worker stopped; sending it again", model.__name__, pk)
                if _send(model, pk):
                    counts["rerun"] += 1
    return counts
