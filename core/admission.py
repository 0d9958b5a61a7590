"""Admission control: each web process runs at most WEB_MAX_ACTIVE requests at once and lets at most
WEB_MAX_QUEUE more wait, each for at most WEB_QUEUE_TIMEOUT_MS, first come first served. Any other
request is answered at once: 503 with Retry-After, in the API's problem format.

Under overload a server that queues everything answers every request late, and clients that give up
and retry add load while it works on answers nobody waits for. Refusing the excess at once keeps
the admitted requests at the server's normal speed, so it goes on answering at its capacity. The
health check and static files are exempt, so a load balancer's probe stays fast during overload.

The limits hold per process, applied once per request by the outermost layer that can: under the
project's gunicorn (gunicorn.conf.py) the worker thread that parsed the request's head, before any
WSGI environ or Django request exists (ServerAdmission: a refusal then costs a parse and one write);
under any other server, the middleware (AdmissionControlMiddleware), which passes through requests
the server has admitted. gunicorn.conf.py gives each worker more threads than WEB_MAX_ACTIVE +
WEB_MAX_QUEUE, so that excess requests reach their quick 503 instead of waiting unseen in gunicorn's
thread pool.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate

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

    def full(self) -> bool:
        """Whether a request arriving now would be refused at once (enter's first two tests): every
        place is taken or promised, and the waiting line is full."""
        with self._changed:
            return (self.active >= self.max_active or self.waiting > 0) and self.waiting >= self.max_queue

    def leave(self) -> None:
        with self._changed:
            self.active -= 1
            self._changed.notify()


def admission_from_settings() -> Admission:
    return Admission(
        max_active=settings.WEB_MAX_ACTIVE,
        max_queue=settings.WEB_MAX_QUEUE,
        queue_timeout=settings.WEB_QUEUE_TIMEOUT_MS / 1000,
    )


def exempt_paths() -> tuple[str, str]:
    """(the health check's path, the static files' prefix): requests for these are never refused."""
    return reverse("health"), settings.STATIC_URL


def refusal_problem(path: str) -> bytes:
    return json.dumps(
        problem(
            status_code=503,
            title="Service unavailable",
            detail=f"The server is at capacity; retry after {RETRY_AFTER_SECONDS} second.",
            instance=path,
        )
    ).encode()


class RefusalLog:
    """Refusals logged as a count every REFUSAL_LOG_INTERVAL seconds, not one line each (under
    overload, hundreds a second)."""

    def __init__(self, admission: Admission):
        self.admission = admission
        self.refused = 0
        self.reported_at = float("-inf")
        self._count = threading.Lock()

    def note(self) -> None:
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


# What the event loop may answer itself (gunicorn.conf.py, ThreadWorker.refuse_in_event_loop): an
# HTTP/1.1 request whose path is plain ("/...", no "//" start, no fragment), with headers of plain
# names; anything else goes to a pool thread and gunicorn's own parser, as every admitted request does.
_SIMPLE_REQUEST_LINE = re.compile(rb"([A-Z]{3,20}) (/(?!/)[!$-;=@-~]*?)(?:\?[!$-;=?@-~]*)? HTTP/1\.1")
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t -~\x80-\xff]*?)[ \t]*")
_HEADERS_TO_TAKE_CARE_OVER = (b"transfer-encoding", b"expect", b"upgrade", b"http2-settings")
SIMPLE_HEAD_BYTES = 8192
# A refused request's body up to this size is skipped to keep the connection; a larger one closes it.
# Both ways of refusing hold to it: the event loop (simple_request) and a pool thread
# (gunicorn.conf.py, body_cheap_to_skip).
SKIP_BODY_BYTES = 64 * 1024


def simple_request(data: bytes) -> tuple[str, str, int] | None:
    """If `data` starts with a whole request that needs no HTTP parser to skip, (method, path, its
    length in bytes, head and body); otherwise None. Whole: the head and all of a Content-Length
    body (at most SKIP_BODY_BYTES) have arrived. None as well for a request that asks for anything
    a refusal must take care over: a chunked or other transfer coding, `Expect` (the client may be
    waiting before it sends its body), `Connection` other than keep-alive, an upgrade, a repeated or
    malformed Content-Length, or a line that is not plain. The path is as gunicorn's parser gives
    it (not percent-decoded), so exemption tests see the same text either way."""
    end = data.find(b"\r\n\r\n", 0, SIMPLE_HEAD_BYTES)
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    line = _SIMPLE_REQUEST_LINE.fullmatch(lines[0])
    if line is None:
        return None
    length: int | None = None
    for raw in lines[1:]:
        header = _HEADER_LINE.fullmatch(raw)
        if header is None:
            return None
        name, value = header.group(1).lower(), header.group(2)
        if name == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 9:
                return None
            length = int(value)
        elif name in _HEADERS_TO_TAKE_CARE_OVER or (name == b"connection" and value.lower() != b"keep-alive"):
            return None
    total = end + 4 + (length or 0)
    if (length or 0) > SKIP_BODY_BYTES or len(data) < total:
        return None
    return line.group(1).decode(), line.group(2).decode(), total


# Set on a server thread while the request it admitted runs: the middleware then lets it through.
_admitted_by_server = threading.local()


def admitted_by_server() -> bool:
    return getattr(_admitted_by_server, "admitted", False)


class ServerAdmission:
    """Admission as the web server applies it (gunicorn.conf.py's worker), before Django: for each
    request whose head has been parsed, `admit(path)` yields whether it may go on; a refused one is
    answered with `refusal(...)`, bytes written straight to the socket. Under overload half the
    requests or more are refused, and each refusal taken through gunicorn's WSGI environ, Django's
    request, middleware and response objects cost the admitted requests their CPU."""

    def __init__(self, script_name: str = ""):
        self.admission = admission_from_settings()
        self.log = RefusalLog(self.admission)
        health, self.static_prefix = exempt_paths()
        prefix = script_name.rstrip("/")
        self.exempt_exact = {health, prefix + health}
        self.static_prefixes = (self.static_prefix, prefix + self.static_prefix)
        self.headers = "".join(f"{name}: {value}\r\n" for name, value in refusal_headers().items())

    # What the event loop reads ahead to see whether a request is whole (refusable).
    PEEK_BYTES = SIMPLE_HEAD_BYTES + SKIP_BODY_BYTES

    def exempt(self, path: str) -> bool:
        return path in self.exempt_exact or path.startswith(self.static_prefixes)

    def refusable(self, data: bytes) -> tuple[str, str, int] | None:
        """simple_request(data), unless its path is exempt: what the event loop may refuse itself."""
        request = simple_request(data)
        return None if request is None or self.exempt(request[1]) else request

    @contextmanager
    def admit(self, path: str) -> Iterator[bool]:
        if self.exempt(path):
            yield True
            return
        if not self.admission.enter():
            self.log.note()
            yield False
            return
        _admitted_by_server.admitted = True
        try:
            yield True
        finally:
            _admitted_by_server.admitted = False
            self.admission.leave()

    def refusal(self, path: str, *, keep_alive: bool, head_only: bool = False) -> bytes:
        """The whole HTTP/1.1 503 answer; the path is quoted back as the problem's instance. An
        answer to HEAD has no content (its length is still the one GET would have)."""
        content = refusal_problem(path)
        head = (
            f"HTTP/1.1 503 Service Unavailable\r\nDate: {formatdate(usegmt=True)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n{self.headers}"
            f"Content-Length: {len(content)}\r\n\r\n"
        )
        return head.encode("latin-1") + (b"" if head_only else content)


def refusal_headers() -> dict[str, str]:
    """Headers of every 503 refusal besides its length: what the middleware's answer carries after
    Django's SecurityMiddleware, and no-store (a refusal is about this moment)."""
    headers = {
        "Content-Type": PROBLEM_CONTENT_TYPE,
        "Retry-After": str(RETRY_AFTER_SECONDS),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if settings.SECURE_REFERRER_POLICY:
        headers["Referrer-Policy"] = settings.SECURE_REFERRER_POLICY
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers["Cross-Origin-Opener-Policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
    return headers


class AdmissionControlMiddleware:
    """Django middleware around Admission, for servers that do not apply it themselves; a request
    the server has admitted passes through. WEB_ADMISSION_CONTROL=0 takes it out of the stack."""

    def __init__(self, get_response):
        if not settings.WEB_ADMISSION_CONTROL:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.admission = admission_from_settings()
        self.refusals = RefusalLog(self.admission)
        self.health_path, self.static_prefix = exempt_paths()

    def __call__(self, request):
        path = request.path_info
        if admitted_by_server() or path == self.health_path or path.startswith(self.static_prefix):
            return self.get_response(request)
        if not self.admission.enter():
            return self.refuse(request)
        try:
            return self.get_response(request)
        finally:
            self.admission.leave()

    def refuse(self, request) -> HttpResponse:
        self.refusals.note()
        content = refusal_problem(request.path)
        # Content-Length set here: the middleware below that would add it never sees this answer.
        headers = {**refusal_headers(), "Content-Length": str(len(content))}
        del headers["Content-Type"]
        response = HttpResponse(content, status=503, content_type=PROBLEM_CONTENT_TYPE, headers=headers)
        # Django logs every 5xx answer as an error, one line each; RefusalLog counts them instead.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
