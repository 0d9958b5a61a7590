"""scripts/up.sh as two teams on one machine run it: two instances with their own MLGOV_VAR_DIR and
PORT, side by side, each with its own database, broker, files and logs, and neither writing the
checkout's var/. With MLGOV_DEMO=0 there is no demo, and no workspace either."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.workers import ROOT

# What the test run itself points at (a PostgreSQL database, a broker, the test settings): up.sh
# must be started as on a fresh machine, on the embedded defaults.
SERVICE_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_FS_BROKER_ROOT",
    "DJANGO_SETTINGS_MODULE",
    "ARTIFACT_ROOT",
    "CACHE_URL",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(port: int, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"up.sh ended ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"up.sh did not serve on {port} within {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="up.sh runs on the embedded defaults whatever the suite points at: the embedded pass runs it",
)
def test_two_instances_run_side_by_side_each_in_its_own_var_dir(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    subprocess.run(["bash", "-c", "source scripts/venv.sh"], cwd=ROOT, env=env, check=True, timeout=600)
    checkout_logs = ROOT / "var" / "log"
    before = (
        {p.name: p.stat().st_mtime_ns for p in checkout_logs.glob("*.log")} if checkout_logs.exists() else {}
    )
    instances = []
    try:
        for name in ("team-a", "team-b"):
            var, port = tmp_path / name, _free_port()
            log = tmp_path / f"{name}.out"
            with log.open("w") as out:
                process = subprocess.Popen(
                    ["bash", "scripts/up.sh"],
                    cwd=ROOT,
                    env={**env, "PORT": str(port), "MLGOV_VAR_DIR": str(var), "MLGOV_DEMO": "0"},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            instances.append((name, var, port, process, log))
            _healthy(port, process, log)
        for name, var, port, process, log in instances:
            assert process.poll() is None, f"{name} stopped"  # both still serving, side by side
            deadline = time.monotonic() + 30  # up.sh prints its banner once its own health check passes
            while "==> mlgov is running" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.5)
            printed = log.read_text()
            assert f"dashboard http://127.0.0.1:{port}/ " in printed
            assert "/w/demo/" not in printed
            for file in ("web.log", "web-access.log", "worker.log", "migrate.log", "collectstatic.log"):
                assert (var / "log" / file).exists(), (name, file)
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/v1/health?from={name}", timeout=5
            ) as answer:
                # With nginx installed (as in CI) it serves in front of gunicorn (scripts/web.sh).
                assert (answer.headers["Server"] == "nginx") == bool(shutil.which("nginx")), answer.headers
            with sqlite3.connect(var / "mlgov.sqlite3") as db:
                assert db.execute("select count(*) from core_workspace").fetchone() == (0,)
                assert db.execute("select username from auth_user").fetchall() == [("admin",)]
        # Each instance's requests went to its own log only.
        # (nginx writes its access log at least every second; gunicorn as it answers)
        logs = [tmp_path / name / "log" / "web-access.log" for name in ("team-a", "team-b")]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
            f"from={name}" in log.read_text() for name, log in zip(("team-a", "team-b"), logs, strict=True)
        ):
            time.sleep(0.2)
        a_log, b_log = (log.read_text() for log in logs)
        assert "from=team-a" in a_log
        assert "from=team-b" not in a_log
        assert "from=team-b" in b_log
        assert "from=team-a" not in b_log
        after = (
            {p.name: p.stat().st_mtime_ns for p in checkout_logs.glob("*.log")}
            if checkout_logs.exists()
            else {}
        )
        assert after == before, "an instance wrote the checkout's var/log"
    finally:
        for *_, process, _ in instances:
            _stop(process)
    # With nginx, each instance's web.sh removed the private directory of its socket and nginx's files.
    confs = [d / "nginx.conf" for d in Path(tempfile.gettempdir()).glob("mlgov-web.*")]
    assert [c for c in confs if c.is_file() and str(tmp_path) in c.read_text()] == []
