"""Real `celery worker` processes for tests: pointed at the test database (data must be committed
first, so tests that use them are transactional) and at a broker of the test's choosing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from celery import Celery
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def embedded_broker(root: Path) -> dict[str, str]:
    """Environment for the file-system broker under `root`, private to one test."""
    return {
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_FS_BROKER_ROOT": str(root),
        "CELERY_RESULT_BACKEND": f"file://{root / 'results'}",
    }


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc), children before their own children."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            children = [int(child) for child in (task / "children").read_text().split()]
            found += children
            todo += children
    return found


def process_env(env: dict[str, str]) -> dict[str, str]:
    """Environment for a service process (worker, management command) on the test database."""
    return {
        **os.environ,
        **env,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "PYTHONPATH": str(ROOT),
    }


def start_worker(
    env: dict[str, str], queues: list[str], *, beat: bool = False, name: str = "", app: str = "config"
) -> subprocess.Popen:
    """Start `celery -A <app> worker` (with an embedded beat when asked); stop it with stop_worker."""
    full_env = process_env(env)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "--pool=solo",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "-Q",
        ",".join(queues),
        "--loglevel=INFO",
    ]
    if beat:
        command.append("--beat")
    if name:
        command += ["--hostname", name]
    # In a process group of its own, so that reap_worker can end what it started (an embedded beat
    # runs in a child, which outlives a worker killed with SIGKILL): tests/conftest.py reaps every
    # worker a test started once the test is over.
    worker = subprocess.Popen(
        command,
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    STARTED.append(worker)
    return worker


STARTED: list[subprocess.Popen] = []


def reap_worker(worker: subprocess.Popen) -> None:
    """End whatever the worker started and left behind (an orphaned beat still sweeping a test queue)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(worker.pid, signal.SIGKILL)


def reap_all() -> None:
    while STARTED:
        reap_worker(STARTED.pop())


def stop_worker(worker: subprocess.Popen) -> str:
    """Stop the worker (and anything it started) and return its log."""
    worker.terminate()
    try:
        log, _ = worker.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        reap_worker(worker)
        log, _ = worker.communicate()
    return log


def client_app(env: dict[str, str]) -> Celery:
    """A Celery app that sends to the broker a test worker listens on."""
    app = Celery("test-client", broker=env["CELERY_BROKER_URL"], backend=env["CELERY_RESULT_BACKEND"])
    if env["CELERY_BROKER_URL"].startswith("filesystem://"):
        root = Path(env["CELERY_FS_BROKER_ROOT"])
        for sub in ("queue", "control", "processed", "results"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        app.conf.broker_transport_options = {
            "data_folder_in": str(root / "queue"),
            "data_folder_out": str(root / "queue"),
            "control_folder": str(root / "control"),
            "processed_folder": str(root / "processed"),
            "store_processed": False,
        }
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    return app
