"""gunicorn reads this file from the directory it starts in (scripts/web.sh and the benchmarks start
it in the repository root); command-line options still win.

Behind nginx (scripts/web.sh with nginx installed) the workers are sync ones (WEB_WORKER_CLASS=sync):
nginx holds the clients' connections and bounds what reaches the workers (core/nginx.py), so each
process serves one request at a time and does nothing else. What follows is gunicorn alone.

Worker model: threaded workers (gunicorn's gthread), WEB_WORKERS processes of WEB_THREADS threads.
A connection kept alive between requests waits in the worker's event loop, not on a thread, so idle
keep-alive clients (browsers) cost no request capacity; sync workers instead sat out each closing
connection for up to 2 s. Admission control (core/admission.py) bounds the requests in progress per
process, so there are always more threads than WEB_MAX_ACTIVE + WEB_MAX_QUEUE: a request beyond them
reaches its quick 503 rather than waiting unseen in gunicorn's thread pool. The worker applies it
itself, as soon as a request's head is parsed: a refusal is written straight to the socket, without
a WSGI environ, a Django request or its middleware. See docs/operations.md,
"Capacity, overload and rate limits".

Each worker loads every view module at start and then freezes everything it has allocated so far
out of the garbage collector's reach. Without this, a full collection walks the ~160,000 objects of
Django, DRF, NumPy and the views every so often, pausing the worker for about 50 ms; a pause that
falls while the worker holds a workspace's audit-chain lock stalls every request of that workspace.
"""

import gc
import os
import selectors
import socket
import ssl
import sys
import time
from collections import deque
from pathlib import Path

from django.conf import settings as django_settings
from django.urls import get_resolver
from gunicorn.workers import gthread

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # started elsewhere with -c

from config.env import default_settings_module, envbool, envchoice, envint

# The admission limits are Django settings; the thread pool is sized from the same values.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", default_settings_module())

# Threads beyond admission's active and waiting places: they answer the 503s, the health check and
# static files, and stream responses already computed, all without taking a place.
SPARE_THREADS = 16
# How long a closing connection may linger for the client to close its side (gunicorn's own value).
CLOSE_LINGER_SECONDS = 2.0
# Whether the event loop answers refusals itself (refuse_in_event_loop); 0 hands every request to a
# pool thread, as gthread does (benchmarks/overload.py --refusal-cost compares the two).
EVENT_LOOP_REFUSALS = envbool("WEB_EVENT_LOOP_REFUSALS", True)


class ThreadWorker(gthread.ThreadWorker):
    """gthread, except that a connection the response closes lingers in the event loop instead of
    on it. gthread closes such a connection on its main thread and waits up to 2 s there for the
    client to close its side (RFC 9112 section 9.6); a client that sent `Connection: close` and
    kept its socket open stalled every other connection of the worker meanwhile."""

    def init_process(self):
        self.lingering = deque()  # (deadline, socket), oldest first
        self.server_admission = None  # set in post_worker_init, once Django is ready
        super().init_process()

    def handle_request(self, req, conn):
        """Admission control here, on the parsed head, before gunicorn builds the WSGI environ and
        Django its request: a refused request costs one write (core/admission.py, ServerAdmission).
        The body of a refused request is skipped by the parser before the connection's next one."""
        if self.server_admission is None:
            return super().handle_request(req, conn)
        with self.server_admission.admit(req.path) as admitted:
            if admitted:
                return super().handle_request(req, conn)
        keep_alive = not (
            req.should_close()
            or not self.alive
            or not self.cfg.keepalive
            or len(self.keepalived_conns) >= self.max_keepalived
            or not body_cheap_to_skip(req)
        )
        answer = self.server_admission.refusal(
            req.path, keep_alive=keep_alive, head_only=req.method == "HEAD"
        )
        conn.sock.sendall(answer)
        return keep_alive

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection has a request. When admission would refuse it at once, the event
        loop answers the 503 itself if it can (refuse_in_event_loop); otherwise, as gthread does, a
        pool thread reads and handles the request."""
        if (
            EVENT_LOOP_REFUSALS
            and self.server_admission is not None
            and self.server_admission.admission.full()
            and self.refuse_in_event_loop(conn, client)
        ):
            return
        super().on_client_socket_readable(conn, client)

    def refuse_in_event_loop(self, conn, client) -> bool:
        """Answer a request that admission refuses without handing it to a pool thread: under
        overload, as many requests are refused as answered, and each hand-over (a pool thread
        woken, gunicorn's parser, the result passed back to the event loop) takes turns on
        Python's lock from the requests being served. Only a plain-socket, HTTP/1.1 request
        already whole in the socket's buffer, of a simple form (core/admission.py, simple_request),
        to a path admission does not exempt; it is read off the socket, answered in one write, and
        the connection stays kept alive. False, with nothing read: the pool thread's way instead."""
        if (
            not self.alive
            or isinstance(client, ssl.SSLSocket)
            or conn.is_http2
            or conn.parser is None
            or conn.parser.unreader.buf.getvalue()
        ):
            return False
        try:
            data = client.recv(self.server_admission.PEEK_BYTES, socket.MSG_PEEK)
        except OSError:
            return False
        request = self.server_admission.refusable(data)
        if request is None:
            return False
        method, path, length = request
        answer = self.server_admission.refusal(path, keep_alive=True, head_only=method == "HEAD")
        self.server_admission.log.note()
        try:
            # The request is in the buffer (peeked above), and a 503 fits in an empty send buffer.
            complete = len(client.recv(length)) == length and client.send(answer) == len(answer)
        except OSError:
            complete = False
        self.keepalived_conns.remove(conn)
        if not complete:
            self.poller.unregister(client)
            self.nr_conns -= 1
            conn.close()
            return True
        conn.set_timeout()  # still registered with the poller: its next request wakes it again
        self.keepalived_conns.append(conn)
        return True

    def finish_request(self, conn, fs):
        closing = fs.cancelled() or (fs.exception() is None and not fs.result())
        if not closing:
            super().finish_request(conn, fs)
            return
        self.nr_conns -= 1
        try:
            conn.sock.shutdown(socket.SHUT_WR)  # the response is complete: send FIN now
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ, self.drain)
        except (OSError, ValueError, KeyError):
            conn.sock.close()
            return
        self.lingering.append((time.monotonic() + CLOSE_LINGER_SECONDS, conn.sock))

    def drain(self, sock):
        """Read and drop what the client still sends; close once it has closed its side."""
        try:
            if sock.recv(65536):
                return
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except OSError:
            pass
        self.poller.unregister(sock)
        sock.close()

    def murder_keepalived(self, force=False):
        # The event loop calls this at least once a second; closing lingering sockets rides along.
        super().murder_keepalived(force)
        now = time.monotonic()
        while self.lingering and (force or self.lingering[0][0] <= now):
            _, sock = self.lingering.popleft()
            if sock.fileno() != -1:
                self.poller.unregister(sock)
                sock.close()


def body_cheap_to_skip(req) -> bool:
    """Whether a refused request's connection may carry the client's next request: its body, unread,
    is small enough for the parser to skip (not chunked, at most SKIP_BODY_BYTES), and the client is
    not waiting for `100 Continue` before sending it (it may then send none, and its next request
    would be read as this one's body). Otherwise the refusal closes the connection; the event loop
    drains what the client still sends (finish_request above)."""
    from core.admission import SKIP_BODY_BYTES  # noqa: PLC0415 - needs Django set up

    if getattr(req, "_expected_100_continue", False):
        return False
    for name, value in req.headers:
        if name == "TRANSFER-ENCODING":
            return False
        if name == "CONTENT-LENGTH":
            return value.isdigit() and int(value) <= SKIP_BODY_BYTES
    return True


# WEB_WORKER_CLASS=sync: one request at a time per process, for serving behind nginx (scripts/web.sh,
# core/nginx.py), which keeps the clients' connections, buffers bodies and bounds what reaches the
# workers; never facing clients directly (a kept-alive client would hold a whole process).
SYNC_WORKERS = envchoice("WEB_WORKER_CLASS", "gthread", ("gthread", "sync")) == "sync"
worker_class = "sync" if SYNC_WORKERS else ThreadWorker
workers = django_settings.WEB_WORKERS
threads = (
    1
    if SYNC_WORKERS
    else envint("WEB_THREADS", 0)
    or (django_settings.WEB_MAX_ACTIVE + django_settings.WEB_MAX_QUEUE + SPARE_THREADS)
)
# Seconds an idle kept-alive connection stays open (above a browser's pause between requests).
keepalive = envint("WEB_KEEPALIVE", 0) or 15
# Open connections per worker, idle ones included; at the bound the worker stops accepting.
worker_connections = envint("WEB_WORKER_CONNECTIONS", 0) or 1000
# Connections the kernel holds for the workers to accept; beyond it clients are refused, not queued.
backlog = envint("WEB_BACKLOG", 0) or 256
# A worker whose event loop has not reported for this long is restarted. A sync worker reports only
# between requests, so there it bounds a request's whole time (a large upload passed on by nginx).
timeout = envint("WEB_TIMEOUT", 0) or (120 if SYNC_WORKERS else 30)
# On stop or reload, requests in progress get this long to finish (less than the usual 30 s an
# orchestrator waits before it kills).
graceful_timeout = envint("WEB_GRACEFUL_TIMEOUT", 0) or 20


def post_worker_init(worker):
    get_resolver().url_patterns  # import the URLconf and with it every view module  # noqa: B018
    if django_settings.WEB_ADMISSION_CONTROL and isinstance(worker, ThreadWorker):
        from core.admission import ServerAdmission  # noqa: PLC0415 - needs Django set up

        worker.server_admission = ServerAdmission(script_name=os.environ.get("SCRIPT_NAME", ""))
    gc.collect()
    gc.freeze()
    worker.log.info(
        "worker %s: %d objects frozen out of the garbage collector", worker.pid, gc.get_freeze_count()
    )
    if worker.cfg.threads == 1:
        return
    # A thread back from the database, or with a health check or a 503 to answer, waits for the
    # thread holding Python's lock to hand it over: by default after 5 ms. At 1 ms, the health
    # check's p99 under overload fell from 31-68 ms to 14-22 ms, with the same answer rate.
    sys.setswitchinterval(0.001)
    places = django_settings.WEB_MAX_ACTIVE + django_settings.WEB_MAX_QUEUE
    if django_settings.WEB_ADMISSION_CONTROL and worker.cfg.threads <= places:
        worker.log.warning(
            "%d threads per worker, not more than admission's %d places (WEB_MAX_ACTIVE + "
            "WEB_MAX_QUEUE): requests beyond them wait in gunicorn's pool, not answered 503",
            worker.cfg.threads,
            places,
        )
