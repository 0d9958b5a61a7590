"""The web tier as scripts/web.sh serves it with nginx: nginx in front of gunicorn's sync workers
(core/nginx.py renders its configuration). A real nginx and a real gunicorn on the test database.

Without nginx installed the live tests skip, unless E2E_REQUIRED is set (CI installs nginx)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core.nginx import Front, render
from tests.core.test_admission import (
    HEALTH_REQUEST,
    browser,
    finish_slow_post,
    free_port,
    get,
    read_response,
    slow_post,
    wait_until_serving,
)
from tests.workers import ROOT, descendants, process_env

NGINX = shutil.which("nginx")
ADDRESS_FAILURE_LIMIT = 3
ARTIFACT_MAX_BYTES = 1000


def _front(**changes) -> Front:
    values = {
        "listen": "127.0.0.1:8000",
        "upstream": "unix:/srv/x/gunicorn.sock",
        "max_conns": 4,
        "prefix": "/srv/x",
        "error_log": "/srv/x/error.log",
    }
    return Front(**{**values, **changes})


def test_the_configuration_bounds_the_workers_and_exempts_health_and_static(settings):
    settings.ARTIFACT_MAX_BYTES = 5000
    text = render(_front(max_conns=6))
    assert "server unix:/srv/x/gunicorn.sock max_conns=6;" in text
    # The health check and static files go to the upstream without the bound.
    exempt = re.findall(r"location (= /api/v1/health|/static/) \{\s*proxy_pass http://(\w+);", text)
    assert exempt == [("= /api/v1/health", "mlgov_exempt"), ("/static/", "mlgov_exempt")]
    assert re.search(r"location / \{\s*proxy_pass http://mlgov;", text)
    assert f"client_max_body_size {5000 + 1024 * 1024};" in text
    # nginx's own refusal is the service's problem document, valid JSON.
    body = re.search(r"return 503 '(.*)';", text).group(1)
    assert json.loads(body)["title"] == "Service unavailable"


def test_nginx_workers_run_at_the_configured_priority():
    assert "worker_priority 19;" in render(_front(priority=19))
    for priority in (-21, 20):
        with pytest.raises(ValueError, match="priority must be a nice value"):
            render(_front(priority=priority))


def test_the_command_takes_the_priority_from_the_settings_unless_given(settings, tmp_path):
    settings.WEB_FRONT_PRIORITY = 7
    common = ["--listen", "127.0.0.1:8000", "--upstream", "unix:/srv/x/gunicorn.sock"]
    common += ["--prefix", str(tmp_path), "--error-log", str(tmp_path / "error.log")]
    out = io.StringIO()
    call_command("nginx_conf", *common, stdout=out)
    assert "worker_priority 7;" in out.getvalue()
    out = io.StringIO()
    call_command("nginx_conf", *common, "--priority", "0", stdout=out)
    assert "worker_priority 0;" in out.getvalue()
    with pytest.raises(CommandError, match="priority must be a nice value"):
        call_command("nginx_conf", *common, "--priority", "25", stdout=io.StringIO())


@pytest.mark.parametrize("field", ["prefix", "error_log", "access_log", "upstream"])
def test_paths_that_would_change_the_configuration_are_refused(field):
    with pytest.raises(ValueError, match="unsafe character"):
        render(_front(**{field: "/srv/x; include /etc/passwd"}))


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_nginx_accepts_the_configuration(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(_front(prefix=str(tmp_path), error_log=str(tmp_path / "error.log"))))
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


# --- Live: scripts/web.sh with nginx ------------------------------------------------------------


@pytest.fixture(scope="module")
def front_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """scripts/web.sh with nginx: one sync worker, one request at a time passed on to it; (its port,
    its MLGOV_VAR_DIR, web.sh's pid)."""
    if NGINX is None:
        if os.environ.get("E2E_REQUIRED"):
            pytest.fail("nginx is not installed (apt-get install nginx) and E2E_REQUIRED is set")
        pytest.skip("nginx is not installed")
    var = tmp_path_factory.mktemp("web")
    port = free_port()
    env = process_env(
        {
            "WEB_FRONT": "nginx",
            "WEB_BIND": f"127.0.0.1:{port}",
            "WEB_WORKERS": "1",
            "WEB_FRONT_MAX_CONNS": "1",
            "MLGOV_VAR_DIR": str(var),
            "PYTHON": sys.executable,
            "LOGIN_ADDRESS_FAILURE_LIMIT": str(ADDRESS_FAILURE_LIMIT),
            "LOGIN_FAILURE_LIMIT": "0",
            "ARTIFACT_MAX_BYTES": str(ARTIFACT_MAX_BYTES),
        }
    )
    env.pop("CLIENT_IP_HEADER", None)
    # The local settings (the test settings turn the sign-in throttle off), the file cache in var.
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    out = var / "web.out"
    with out.open("w") as log:
        server = subprocess.Popen(
            ["bash", "scripts/web.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_until_serving(port, server, out)
        yield port, var, server.pid
    finally:
        children = descendants(server.pid)
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in children]
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    # Stopping web.sh stops nginx and gunicorn, and removes the directory of its socket.
    (run,) = {Path(m.group(1).decode()) for c in commands if (m := re.search(rb"^nginx.* -p (\S+)", c))}
    time.sleep(0.5)
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
    assert not run.exists()


@pytest.fixture(scope="module")
def front(front_server) -> int:
    return front_server[0]


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_nginx_yields_the_cpu_to_the_workers(front_server, settings):
    """nginx's worker runs at WEB_FRONT_PRIORITY's nice value (19 unless set), gunicorn's processes
    at the usual 0: however many requests nginx refuses, the workers keep their share of the CPU."""
    *_, pid = front_server
    nice: dict[str, list[int]] = {}
    for child in descendants(pid):
        command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        kind = "nginx worker" if command.startswith("nginx: worker") else command.split()[0].rsplit("/")[-1]
        nice.setdefault(kind, []).append(_nice(child))
    assert settings.WEB_FRONT_PRIORITY == 19
    assert nice["nginx worker"] == [19]
    gunicorn = [value for kind, values in nice.items() if kind.startswith("python") for value in values]
    assert len(gunicorn) >= 2  # the arbiter and its worker
    assert set(gunicorn) == {0}


def _closed_loops(port: int, path: str, clients: int, seconds: float, beside=None) -> list:
    """`clients` kept-alive connections asking for `path` back to back for `seconds` (and
    `beside(stop)` on a thread of its own meanwhile); [(status, headers, body, seconds taken)]."""
    answers: list[tuple[int, dict, bytes, float]] = []
    stop = threading.Event()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            started = time.monotonic()
            status, headers, body = get(port, path, conn)
            answers.append((status, headers, body, time.monotonic() - started))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    if beside is not None:
        threads.append(threading.Thread(target=beside, args=(stop,)))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.slow
def test_excess_requests_get_a_quick_503_from_nginx_and_health_is_never_refused(front):
    health: list[int] = []

    def prober(stop: threading.Event) -> None:
        while not stop.is_set():
            health.append(get(front, "/api/v1/health")[0])
            stop.wait(0.05)

    answers = _closed_loops(front, "/accounts/login/", clients=8, seconds=2, beside=prober)
    statuses = Counter(status for status, *_ in answers)
    assert set(statuses) == {200, 503}, statuses  # eight clients, one request at a time passed on
    refusals = [(headers, body, elapsed) for status, headers, body, elapsed in answers if status == 503]
    for headers, body, _ in refusals:
        assert headers["Content-Type"] == "application/problem+json"
        assert headers["Retry-After"] == "1"
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert json.loads(body) == {
            "type": "about:blank",
            "title": "Service unavailable",
            "status": 503,
            "detail": "The server is at capacity; retry after 1 second.",
        }
    assert statistics.median(elapsed for *_, elapsed in refusals) < 0.05
    assert health
    assert set(health) == {200}, Counter(health)


@pytest.mark.slow
def test_refusals_are_in_the_access_log_and_not_the_error_log(front_server):
    port, var, _ = front_server
    _closed_loops(port, "/accounts/login/?from=log-test", clients=6, seconds=1)
    time.sleep(1.5)  # nginx writes its access log buffered, at least every second
    lines = [line for line in (var / "log" / "web-access.log").read_text().splitlines() if "log-test" in line]
    refused = [line for line in lines if '" 503 ' in line]
    served = [line for line in lines if '" 200 ' in line]
    assert refused
    assert served
    assert all("upstream=502 from=mlgov " in line for line in refused), refused[:3]
    assert all("upstream=200 " in line for line in served), served[:3]
    # One error line per refusal would fill a disk under attack ("no live upstreams").
    assert "no live upstreams" not in (var / "log" / "nginx-error.log").read_text()


@pytest.mark.slow
def test_slow_uploads_and_idle_keep_alive_clients_hold_no_worker(front):
    # One request at a time reaches the one worker; nginx reads these bodies before passing them on.
    uploads = [slow_post(front) for _ in range(3)]
    stop = threading.Event()
    browsers = [threading.Thread(target=browser, args=(front, stop)) for _ in range(2)]
    for thread in browsers:
        thread.start()
    try:
        time.sleep(0.3)
        worst, answered = 0.0, 0
        end = time.monotonic() + 2
        while time.monotonic() < end:
            started = time.monotonic()
            assert get(front, "/accounts/login/")[0] == 200
            worst = max(worst, time.monotonic() - started)
            answered += 1
    finally:
        stop.set()
        for thread in browsers:
            thread.join()
        statuses = [finish_slow_post(sock) for sock in uploads]
    assert worst < 0.5, f"slowest answer {worst:.2f} s"
    assert answered >= 10
    assert statuses == [403, 403, 403]  # passed on once whole (a made-up CSRF token), not refused


def _sign_in_from(port: int, source: str, username: str, forwarded_for: str) -> int:
    """A failed sign-in from `source` (a loopback address), claiming to be `forwarded_for`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/accounts/login/")
        page = conn.getresponse()
        html = page.read().decode()
        cookie = re.search(r"csrftoken=([^;]+)", page.getheader("Set-Cookie")).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        conn.request(
            "POST",
            "/accounts/login/",
            body=f"csrfmiddlewaretoken={token}&username={username}&password=wrong",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={cookie}",
                "X-Forwarded-For": forwarded_for,
            },
        )
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.django_db  # the server signs in against the test database's tables: have them made
def test_sign_in_throttling_counts_the_address_nginx_saw_not_what_the_client_claims(front):
    statuses = [
        _sign_in_from(front, "127.0.0.2", f"user{n}", f"198.51.100.{n}")
        for n in range(ADDRESS_FAILURE_LIMIT + 1)
    ]
    # The failure that reaches the limit is answered 429 already, and so is every later attempt.
    assert statuses == [200] * (ADDRESS_FAILURE_LIMIT - 1) + [429, 429]
    # Another client (another address) is not locked out with it.
    assert _sign_in_from(front, "127.0.0.3", "someone", "127.0.0.2") == 200


@pytest.mark.slow
def test_a_body_over_the_upload_limit_gets_a_413_problem_before_it_is_sent(front):
    with socket.create_connection(("127.0.0.1", front), timeout=10) as sock:
        length = ARTIFACT_MAX_BYTES + 2 * 1024 * 1024
        sock.sendall(
            b"POST /api/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {length}\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nContent-Type: application/problem+json" in head
    assert json.loads(body)["title"] == "Request body too large"


@pytest.mark.slow
def test_a_kept_alive_connection_carries_many_requests(front):
    with socket.create_connection(("127.0.0.1", front), timeout=10) as sock:
        for _ in range(20):
            sock.sendall(HEALTH_REQUEST)
            assert read_response(sock) == 200
