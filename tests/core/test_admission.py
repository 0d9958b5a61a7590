"""Admission control and the worker model: past its limits a web process answers 503 with
Retry-After at once, the health check passes regardless, and clients that keep connections open
(idle keep-alive, or lingering after `Connection: close`) do not hold up anyone else. The last tests
run a real gunicorn started with the project's gunicorn.conf.py."""

from __future__ import annotations

import http.client
import json
import re
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.log import log_response
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.admission import (
    Admission,
    AdmissionControlMiddleware,
    ServerAdmission,
    admitted_by_server,
    refusal_problem,
    simple_request,
)
from tests.workers import process_env

ROOT = Path(__file__).resolve().parents[2]


class Holders:
    """Threads that each run `enter`, then hold what they got until released."""

    def __init__(self, enter):
        self.enter = enter
        self.release = threading.Event()
        self.results: list = []
        self.threads: list[threading.Thread] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=self._run)
            thread.start()
            self.threads.append(thread)

    def _run(self) -> None:
        self.results.append(self.enter(self.release))

    def finish(self) -> list:
        self.release.set()
        for thread in self.threads:
            thread.join(timeout=10)
        return self.results


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_admission_lets_a_short_line_wait_and_refuses_the_rest_at_once():
    admission = Admission(max_active=2, max_queue=1, queue_timeout=5.0)

    def hold(release: threading.Event) -> bool:
        admitted = admission.enter()
        if admitted:
            release.wait()
            admission.leave()
        return admitted

    holders = Holders(hold)
    holders.start(2)
    wait_until(lambda: admission.active == 2)
    waiter = Holders(lambda release: admission.enter())
    waiter.start(1)
    wait_until(lambda: admission.waiting == 1)

    started = time.monotonic()
    assert admission.enter() is False  # the line is full: refused without waiting
    assert time.monotonic() - started < 0.05

    assert holders.finish() == [True, True]
    assert waiter.finish() == [True]  # a place freed up well within its wait
    assert (admission.active, admission.waiting) == (1, 0)


def test_admission_refuses_a_waiter_whose_wait_runs_out():
    admission = Admission(max_active=1, max_queue=4, queue_timeout=0.15)
    assert admission.enter()
    started = time.monotonic()
    assert admission.enter() is False
    assert 0.14 <= time.monotonic() - started < 1.0
    assert admission.waiting == 0
    admission.leave()
    assert admission.enter()


@pytest.fixture
def limited(settings):
    settings.WEB_ADMISSION_CONTROL = True
    settings.WEB_MAX_ACTIVE, settings.WEB_MAX_QUEUE, settings.WEB_QUEUE_TIMEOUT_MS = 2, 1, 5000
    release = threading.Event()
    served: list[str] = []

    def view(request):
        served.append(request.path)
        if request.path == "/slow":
            release.wait(10)
        return HttpResponse("ok")

    middleware = AdmissionControlMiddleware(view)
    yield middleware, release, served
    release.set()


def test_middleware_answers_503_with_retry_after_past_its_limits_and_lets_health_through(limited, caplog):
    middleware, release, served = limited
    factory = RequestFactory()
    requests = Holders(lambda _: middleware(factory.get("/slow")))
    requests.start(3)  # two run, one waits in line
    wait_until(lambda: middleware.admission.waiting == 1)

    started = time.monotonic()
    refused = middleware(factory.get("/api/v1/models"))
    assert time.monotonic() - started < 0.05
    assert refused.status_code == 503
    assert refused["Retry-After"] == "1"
    assert refused["Content-Type"] == "application/problem+json"
    body = json.loads(refused.content)
    assert body["status"] == 503
    assert body["title"] == "Service unavailable"
    assert body["instance"] == "/api/v1/models"
    assert "/api/v1/models" not in served
    # Django logs each 5xx answer as an error unless told it was logged; refusals are counted instead.
    log_response("%s", refused.reason_phrase, response=refused)
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == []
    assert "at capacity: 1 requests refused" in caplog.text

    assert middleware(factory.get("/api/v1/health")).status_code == 200
    assert middleware(factory.get("/static/css/app.css")).status_code == 200

    release.set()
    assert [r.status_code for r in requests.finish()] == [200, 200, 200]
    assert middleware(factory.get("/api/v1/models")).status_code == 200


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    assert int(headers["Content-Length"]) == len(body)
    return int(status_line.split(" ")[1]), headers, body


def test_the_server_refuses_before_django_and_the_middleware_lets_what_it_admitted_through(settings):
    settings.WEB_ADMISSION_CONTROL = True
    settings.WEB_MAX_ACTIVE, settings.WEB_MAX_QUEUE, settings.WEB_QUEUE_TIMEOUT_MS = 1, 0, 50
    server = ServerAdmission(script_name="/mlgov/")
    seen = []

    def view(request):
        seen.append((request.path, admitted_by_server(), middleware.admission.active))
        return HttpResponse("ok")

    middleware = AdmissionControlMiddleware(view)
    factory = RequestFactory()
    with server.admit("/api/v1/models") as admitted:
        assert admitted
        assert admitted_by_server()
        # The middleware's own limit (one at a time) is not taken a second time.
        assert middleware(factory.get("/api/v1/models")).status_code == 200
        with server.admit("/api/v1/lineage") as second:
            assert not second  # no place and no line: refused at once
            assert admitted_by_server()  # still the first request's mark
        for path in ("/api/v1/health", "/mlgov/api/v1/health", "/static/app.css", "/mlgov/static/app.css"):
            with server.admit(path) as exempt:
                assert exempt, path
    assert not admitted_by_server()
    assert (server.admission.active, server.admission.waiting) == (0, 0)
    assert seen == [("/api/v1/models", True, 0)]
    # Not admitted by the server (another server, or a test client): the middleware's limit applies.
    assert middleware(factory.get("/api/v1/models")).status_code == 200
    assert seen[-1] == ("/api/v1/models", False, 1)

    status, headers, body = parse_answer(server.refusal("/api/v1/models/<x>", keep_alive=True))
    assert status == 503
    assert headers["Connection"] == "keep-alive"
    assert headers["Retry-After"] == "1"
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "GMT" in headers["Date"]
    assert json.loads(body) == {
        "type": "about:blank",
        "title": "Service unavailable",
        "status": 503,
        "detail": "The server is at capacity; retry after 1 second.",
        "instance": "/api/v1/models/<x>",
    }
    assert parse_answer(server.refusal("/", keep_alive=False))[1]["Connection"] == "close"
    head_only = server.refusal("/api/v1/models", keep_alive=True, head_only=True)
    assert head_only.endswith(b"\r\n\r\n")
    assert int(re.search(rb"Content-Length: (\d+)", head_only).group(1)) == len(
        refusal_problem("/api/v1/models")
    )


def test_admission_control_can_be_turned_off(settings):
    settings.WEB_ADMISSION_CONTROL = False
    with pytest.raises(MiddlewareNotUsed):
        AdmissionControlMiddleware(lambda request: HttpResponse())


# --- A real gunicorn with the project's gunicorn.conf.py ------------------------------------------


def free_port() -> int:
    for port in range(8300, 8400):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8300-8399")


@contextmanager
def running_gunicorn(log: Path, settings: dict[str, str]) -> Iterator[int]:
    """One worker process of the project's gunicorn.conf.py with these settings; its port."""
    port = free_port()
    env = process_env({"WEB_ADMISSION_CONTROL": "1", "WEB_WORKERS": "1", **settings})
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(port, server, log)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_until_serving(port: int, server: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Until the health check on `port` answers 200; fails with the server's log if it ends first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if get(port, "/api/v1/health")[0] == 200:
                return
        except OSError:
            pass
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, tmp_path_factory):
    """One worker process with room for two requests at once and one more waiting."""
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    limits = {"WEB_MAX_ACTIVE": "2", "WEB_MAX_QUEUE": "1", "WEB_QUEUE_TIMEOUT_MS": "50"}
    with running_gunicorn(log, limits) as port:
        yield port


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None):
    """GET `path` (on `conn`, kept open, or on a connection of its own); (status, headers, body)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        if own:
            conn.close()


def worst_latency_of_a_new_client(port: int, seconds: float) -> tuple[float, int]:
    """A visitor's requests for `seconds`, each on a new connection: (slowest answer, answers)."""
    worst, answered = 0.0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        assert get(port, "/api/v1/health")[0] == 200
        worst = max(worst, time.monotonic() - started)
        answered += 1
        time.sleep(0.05)
    return worst, answered


HEALTH_REQUEST = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def read_response(sock: socket.socket) -> int | None:
    """Read one response with a Content-Length; its status, or None when the server had closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return int(head.split(b" ", 2)[1])


def browser(port: int, stop: threading.Event) -> None:
    """A browser's kept-open connection: a request a second; the socket stays open in between, and
    is replaced only when the server turns out to have closed it."""
    sock = None
    while not stop.is_set():
        try:
            sock = sock or socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(HEALTH_REQUEST)
            if read_response(sock) is None:
                raise ConnectionResetError
        except OSError:
            if sock is not None:
                sock.close()
            sock = None
            continue
        stop.wait(1.0)
    if sock is not None:
        sock.close()


@pytest.mark.slow
def test_idle_keep_alive_clients_do_not_stall_another_client(gunicorn):
    stop = threading.Event()
    browsers = [threading.Thread(target=browser, args=(gunicorn, stop)) for _ in range(2)]
    for thread in browsers:
        thread.start()
    try:
        worst, answered = worst_latency_of_a_new_client(gunicorn, 3.0)
    finally:
        stop.set()
        for thread in browsers:
            thread.join()
    # Sync workers took up to 2 s here: after each answer they wait for the client to close.
    assert worst < 0.5, f"slowest answer {worst:.2f} s"
    assert answered >= 20


@pytest.mark.slow
def test_clients_that_linger_after_connection_close_do_not_stall_another_client(gunicorn):
    lingering = []
    for _ in range(3):  # each asks the server to close, then neither reads nor closes its side
        sock = socket.create_connection(("127.0.0.1", gunicorn))
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        lingering.append(sock)
    try:
        worst, answered = worst_latency_of_a_new_client(gunicorn, 2.0)
    finally:
        for sock in lingering:
            sock.close()
    # gunicorn's own gthread worker waits for such a client on its event loop: 2 s each.
    assert worst < 0.5, f"slowest answer {worst:.2f} s"
    assert answered >= 15


def slow_post(port: int) -> socket.socket:
    """A sign-in whose body never finishes arriving: it holds a place while the server reads it."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Cookie: csrftoken=" + b"a" * 32 + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername="
    )
    return sock


def finish_slow_post(sock: socket.socket) -> int:
    sock.sendall(b"x" * 91)
    sock.settimeout(10)
    status = int(sock.recv(65536).split(b" ", 2)[1])
    sock.close()
    return status


@pytest.mark.slow
def test_gunicorn_answers_503_at_once_when_full_and_health_still_answers(gunicorn):
    holders = [slow_post(gunicorn) for _ in range(2)]  # WEB_MAX_ACTIVE=2: both places taken
    try:
        time.sleep(0.5)  # until the worker is reading both bodies
        started = time.monotonic()
        status, headers, body = get(gunicorn, "/accounts/login/")
        elapsed = time.monotonic() - started
        assert status == 503
        assert headers["Retry-After"] == "1"
        assert headers["Content-Type"] == "application/problem+json"
        assert json.loads(body)["status"] == 503
        assert elapsed < 0.5  # a 50 ms wait in line, then the answer
        assert get(gunicorn, "/api/v1/health")[0] == 200
    finally:
        statuses = [finish_slow_post(sock) for sock in holders]
    assert statuses == [403, 403]  # they were served (a made-up CSRF token), not refused
    assert get(gunicorn, "/accounts/login/")[0] == 200


@pytest.mark.slow
def test_a_refusal_keeps_the_connection_and_skips_the_refused_body(gunicorn):
    holders = [slow_post(gunicorn) for _ in range(2)]
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=10)
    try:
        time.sleep(0.5)
        body = b'{"name": "' + b"x" * 20000 + b'"}'
        conn.request("POST", "/api/v1/models", body=body, headers={"Content-Type": "application/json"})
        refused = conn.getresponse()
        assert refused.status == 503
        # Answered by the worker before Django (whose answers gunicorn writes with a Server header).
        assert refused.getheader("Server") is None
        assert refused.getheader("Cache-Control") == "no-store"
        assert refused.getheader("X-Content-Type-Options") == "nosniff"
        assert json.loads(refused.read())["instance"] == "/api/v1/models"
        # The same connection goes on: the refused body was skipped, not read as the next request.
        assert get(gunicorn, "/api/v1/health", conn)[0] == 200
        # A refused HEAD has no content (else it would be read as the start of the next answer; a
        # raw socket, since http.client drops what its buffer read past a HEAD answer).
        with socket.create_connection(("127.0.0.1", gunicorn), timeout=10) as sock:
            sock.sendall(b"HEAD /api/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while not answer.endswith(b"\r\n\r\n"):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert b"\r\nConnection: keep-alive\r\n" in answer
            sock.sendall(HEALTH_REQUEST)
            assert read_response(sock) == 200
        conn.request("GET", "/api/v1/models", headers={"Connection": "close"})
        closing = conn.getresponse()
        assert (closing.status, closing.getheader("Connection")) == (503, "close")
        closing.read()
        # A client waiting for "100 Continue" may send no body after a refusal, and a large body is
        # not worth reading: either closes the connection instead of reading on.
        for extra, length in ((b"Expect: 100-continue\r\n", 10), (b"", 1 << 20)):
            with socket.create_connection(("127.0.0.1", gunicorn), timeout=10) as sock:
                sock.sendall(
                    b"POST /api/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + extra
                    + f"Content-Length: {length}\r\n\r\n".encode()
                )
                answer = sock.recv(65536)
                assert answer.startswith(b"HTTP/1.1 503 "), answer[:40]
                assert b"\r\nConnection: close\r\n" in answer
    finally:
        conn.close()
        statuses = [finish_slow_post(sock) for sock in holders]
    assert statuses == [403, 403]


@pytest.fixture(scope="module")
def gunicorn_without_spare_threads(django_db_setup, tmp_path_factory):
    """One worker with two places, one long wait in line, and no thread beyond those three."""
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    limits = {
        "WEB_MAX_ACTIVE": "2",
        "WEB_MAX_QUEUE": "1",
        "WEB_QUEUE_TIMEOUT_MS": "20000",
        "WEB_THREADS": "3",
    }
    with running_gunicorn(log, limits) as port:
        yield port, log


def read_answers(sock: socket.socket, to_head: list[bool]) -> list[bytes]:
    """Whole answers (head and content) from a kept-alive connection, one for each request sent:
    `to_head` says which were HEAD (an answer to it has a Content-Length but no content)."""
    data, answers = b"", []
    for head_only in to_head:
        while (end := data.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            data += chunk
        found = re.search(rb"\r\nContent-Length: (\d+)\r\n", data[: end + 4])
        assert found is not None
        size = end + 4 + (0 if head_only else int(found.group(1)))
        while len(data) < size:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            data += chunk
        answers.append(data[:size])
        data = data[size:]
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):  # nothing more: each request had exactly one answer
        data += sock.recv(65536)
    return answers


@pytest.mark.slow
def test_the_event_loop_refuses_a_kept_alive_request_while_every_thread_is_busy(
    gunicorn_without_spare_threads,
):
    """Under overload a refusal does not need a pool thread: with both places and the one place in
    line held and no thread to spare, a kept-alive client still gets its 503s at once, each request
    read off the connection exactly (its body included), so the connection goes on."""
    port, log = gunicorn_without_spare_threads
    kept = socket.create_connection(("127.0.0.1", port), timeout=5)
    holders: list[socket.socket] = []
    try:
        kept.sendall(HEALTH_REQUEST)  # now a kept-alive connection, waiting in the event loop
        assert read_response(kept) == 200
        holders = [slow_post(port) for _ in range(3)]  # two places, then the one in line
        time.sleep(0.5)  # until the worker reads two bodies and the third waits for a place
        body = b'{"name": "refused"}'
        post = (
            b"POST /api/v1/models?page=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        head = b"HEAD /api/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        started = time.monotonic()
        kept.sendall(post)
        (first,) = read_answers(kept, [False])
        elapsed = time.monotonic() - started
        # Two more sent together (pipelined): each read off the connection and answered in order.
        kept.settimeout(5)
        kept.sendall(head + post)
        second, third = read_answers(kept, [True, False])
    finally:
        kept.close()
        statuses = [finish_slow_post(sock) for sock in holders]
    assert elapsed < 1.0  # no thread was free for 20 s: the event loop answered
    for answer in (first, third):
        status, headers, content = parse_answer(answer)
        assert (status, headers["Connection"], headers["Retry-After"]) == (503, "keep-alive", "1")
        assert headers["Content-Type"] == "application/problem+json"
        assert "Server" not in headers  # gunicorn writes one on what Django answers
        assert json.loads(content)["instance"] == "/api/v1/models"
    assert second.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nConnection: keep-alive\r\n" in second
    assert second.endswith(b"\r\n\r\n")  # HEAD: the head alone
    assert statuses == [403, 403, 403]  # the held requests were served, the one in line too
    assert re.search(r"at capacity: \d+ requests refused", log.read_text())


def test_full_is_what_enter_refuses_at_once():
    admission = Admission(max_active=1, max_queue=1, queue_timeout=5)
    assert not admission.full()
    assert admission.enter()
    assert not admission.full()  # the place is taken, the line is not full
    waiter = Holders(lambda release: admission.enter())
    waiter.start(1)
    wait_until(lambda: admission.waiting == 1)
    assert admission.full()
    started = time.monotonic()
    assert not admission.enter()  # refused at once, as full() said
    assert time.monotonic() - started < 1
    admission.leave()
    assert waiter.finish() == [True]
    assert not admission.full()


TOKEN = st.text(alphabet="!#$%&'*+.^_`|~-" + string.ascii_letters + string.digits, min_size=1, max_size=12)
PATH_SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@", max_size=10)


@st.composite
def simple_requests(draw) -> tuple[bytes, str, str]:
    """A request of the form the event loop refuses itself: (its bytes, method, path)."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]))
    path = "/" + "/".join(draw(st.lists(PATH_SEGMENT, max_size=4))).lstrip("/")
    query = draw(st.one_of(st.just(""), PATH_SEGMENT.map(lambda q: "?" + q + "=?/x")))
    names = draw(st.lists(TOKEN, max_size=5))
    headers = [
        (name, draw(st.text(alphabet=string.ascii_letters + string.digits + " /;=,.-", max_size=20)).strip())
        for name in names
        if name.lower() not in ("content-length", "transfer-encoding", "expect", "upgrade", "connection")
    ]
    if draw(st.booleans()):
        headers.append(("Connection", draw(st.sampled_from(["keep-alive", "Keep-Alive"]))))
    body = draw(st.binary(max_size=300)) if method not in ("GET", "HEAD") else b""
    if body or draw(st.booleans()):
        headers.append(("Content-Length", str(len(body))))
    draw(st.randoms()).shuffle(headers)
    head = f"{method} {path}{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{name}:{draw(st.sampled_from(['', ' ', '  ']))}{value}\r\n" for name, value in headers)
    return (head + "\r\n").encode() + body, method, path


NEXT_REQUEST = b"GET /next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@hypothesis_settings(max_examples=300, deadline=None)
@given(simple_requests())
def test_simple_request_reads_a_request_as_gunicorns_parser_does(generated):
    """The event loop's reading of a simple request agrees with gunicorn's parser: the same method
    and path, and the same length (the next request on the connection starts where it says)."""
    raw, method, path = generated
    assert simple_request(raw + NEXT_REQUEST) == (method, path, len(raw))
    assert simple_request(raw[:-1]) is None  # not whole yet: left to the parser
    parser = RequestParser(Config(), [raw + NEXT_REQUEST], ("127.0.0.1", 1))
    request = next(parser)
    assert (request.method, request.path) == (method, path)
    request.body.read()
    assert next(parser).path == "/next"


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /x HTTP/1.0\r\nHost: a\r\n\r\n",  # HTTP/1.0: keep-alive is not the default
        b"GET //x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /x#frag HTTP/1.1\r\nHost: a\r\n\r\n",
        b"get /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -2\r\n\r\n{}",
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n{}",  # the body not all here
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n" + b"x" * 70000,
        b"GET /x HTTP/1.1\r\nHost: a\r\n folded: value\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\n",  # the head not all here
        b"GET /x HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 9000 + b"\r\n\r\n",
    ],
)
def test_simple_request_leaves_what_needs_care_to_gunicorns_parser(raw):
    assert simple_request(raw) is None
