"""Admission control: each web process runs at most WEB_MAX_ACTIVE requests at once and lets at most
WEB_MAX_QUEUE more wait, each for at most WEB_QUEUE_TIMEOUT_MS, first come first served. Any other
request is answered at once: 503 with Retry-After, in the API's problem format.

Under overload a server that queues everything answers every request late, and clients that give up
and retry add load while it works on answers nobody waits for. Refusing the excess at once keeps
the admitted requests at the server's normal speed, so it goes on answering at its capacity. The
health check and static files are exempt, so a load balancer's probe stays fast during overload.

The limits hold per process: gunicorn.conf.py gives each worker more threads than
WEB_MAX_ACTIVE + WEB_MAX_QUEUE, so that excess requests reach this middleware (and its quick 503)
instead of waiting unseen in gunicorn's thread pool.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpResponse
from django.urls import reverse

from core.api.errors import PROBLEM_CONTENT_TYPE, problem

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1
REFUSAL_LOG_INTERVAL = 10.0  # seconds: refusals are logged as a count, not one line each


class Admission:
    """A limit on requests in progress with a small, time-limited waiting line (one per process)."""

    def __init__(self, *, max_active: int, max_queue: int, queue_timeout: float):
        self.max_active = max_active
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.active = 0
        self.waiting = 0
        self._changed = threading.Condition(threading.Lock())

    def enter(self) -> bool:
        """Take a place among the active requests, waiting for one if the line is short enough.
        False: refused (the line was full, or no place freed up in time)."""
        with self._changed:
            # While others wait, a newcomer queues behind them even if a place has just freed up:
            # that place is promised to the waiter who was woken for it.
            if self.active < self.max_active and not self.waiting:
                self.active += 1
                return True
            if self.waiting >= self.max_queue:
                return False
            self.waiting += 1
            deadline = time.monotonic() + self.queue_timeout
            try:
                while self.active >= self.max_active:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._changed.wait(remaining)
                self.active += 1
                return True
            finally:
                self.waiting -= 1

    def leave(self) -> None:
        with self._changed:
            self.active -= 1
            self._changed.notify()


class AdmissionControlMiddleware:
    """Django middleware around Admission; WEB_ADMISSION_CONTROL=0 takes it out of the stack."""

    def __init__(self, get_response):
        if not settings.WEB_ADMISSION_CONTROL:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.admission = Admission(
            max_active=settings.WEB_MAX_ACTIVE,
            max_queue=settings.WEB_MAX_QUEUE,
            queue_timeout=settings.WEB_QUEUE_TIMEOUT_MS / 1000,
        )
        self.health_path = reverse("health")
        self.static_prefix = settings.STATIC_URL
        self.refused = 0
        self.reported_at = float("-inf")
        self._count = threading.Lock()

    def __call__(self, request):
        path = request.path_info
        if path == self.health_path or path.startswith(self.static_prefix):
            return self.get_response(request)
        if not self.admission.enter():
            return self.refuse(request)
        try:
            return self.get_response(request)
        finally:
            self.admission.leave()

    def refuse(self, request) -> HttpResponse:
        self.note_refusal()
        body = problem(
            status_code=503,
            title="Service unavailable",
            detail=f"The server is at capacity; retry after {RETRY_AFTER_SECONDS} second.",
            instance=request.path,
        )
        content = json.dumps(body).encode()
        # Content-Length set here: the middleware below that would add it never sees this answer.
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Content-Length": str(len(content))}
        response = HttpResponse(content, status=503, content_type=PROBLEM_CONTENT_TYPE, headers=headers)
        # Django logs every 5xx answer as an error, one line each: under overload, hundreds a second.
        # note_refusal reports them as a count instead.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response

    def note_refusal(self) -> None:
        with self._count:
            self.refused += 1
            now = time.monotonic()
            if now - self.reported_at < REFUSAL_LOG_INTERVAL:
                return
            refused, self.refused, self.reported_at = self.refused, 0, now
        logger.warning(
            "at capacity: %d requests refused with 503 since the last report (at most %d active and "
            "%d waiting per process)",
            refused,
            self.admission.max_active,
            self.admission.max_queue,
        )
