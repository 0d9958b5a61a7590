"""The service as scripts/up.sh serves it (local settings, gunicorn) when its database cannot be
reached: health says 503 in the problem format, and no page shows debug details (settings, the
caller's token, the database's address)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgres://mlgov:s3cret-db-password@127.0.0.1:9/mlgov"  # port 9 (discard): nothing listens


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (a local http URL)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def server_without_database(tmp_path):
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "DJANGO_ENV"}
    }
    env.update({"DATABASE_URL": UNREACHABLE, "MLGOV_VAR_DIR": str(tmp_path / "var"), "DJANGO_ENV": "local"})
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(process.stderr.read().decode())
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_without_its_database_the_service_says_503_and_shows_no_debug_page(server_without_database):
    status, headers, body = _get(f"{server_without_database}/api/v1/health")
    assert status == 503
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == "5"
    assert json.loads(body)["detail"] == "the database cannot be reached; try again shortly"

    token = "mlg_secret-bearer-token-0123456789"
    status, _, body = _get(f"{server_without_database}/api/v1/me", {"Authorization": f"Bearer {token}"})
    assert status == 503
    # A dashboard page (redirected to sign in) and a page that needs the database: no debug page.
    for path in ("/api/v1/me", "/w/demo/audit/?page=2", "/admin/"):
        status, _, body = _get(f"{server_without_database}{path}", {"Authorization": f"Bearer {token}"})
        assert status in (200, 500, 503), path
        assert len(body) < 20_000, path
        for secret in (token, "s3cret-db-password", "DATABASE_URL", "Traceback"):
            assert secret.encode() not in body, (path, secret)
