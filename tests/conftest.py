"""Personas: in workspace `acme`, ada is the admin, alice a data scientist (an author), bob a
compliance reviewer, carol an auditor and `ci` a pipeline whose token may only check gates.
mallory is the admin of another workspace, `umbrella`, and must never see anything of acme's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from config.celery import app
from core.roles import Role
from tests.factories import make_member, make_token, make_user, make_workspace
from tests.workers import reap_all


@pytest.fixture(autouse=True)
def _reap_workers():
    """Whatever celery workers a test started (tests/workers.py), their leftovers end with the test: a
    worker killed with SIGKILL leaves its embedded beat running, sweeping a queue nobody reads."""
    yield
    reap_all()


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path):
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": settings.ARTIFACT_ROOT},
        },
    }
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")


@pytest.fixture
def ada(db):
    return make_user("ada")


@pytest.fixture
def acme(ada):
    return make_workspace("acme", admin=ada)


@pytest.fixture
def alice(acme):
    return make_member(acme, Role.DATA_SCIENTIST, "alice")


@pytest.fixture
def bob(acme):
    return make_member(acme, Role.COMPLIANCE_REVIEWER, "bob")


@pytest.fixture
def carol(acme):
    return make_member(acme, Role.AUDITOR, "carol")


@pytest.fixture
def ci_user(acme):
    return make_member(acme, Role.CI, "ci")


@pytest.fixture
def mallory(db):
    user = make_user("mallory")
    make_workspace("umbrella", admin=user)
    return user


@pytest.fixture
def umbrella(mallory):
    from core.models import Workspace

    return Workspace.objects.get(slug="umbrella")


def mlgov(*args: str, url: str, token: str, cwd: Path) -> subprocess.CompletedProcess:
    """The `mlgov` command as a pipeline runs it: a subprocess pointed at `url` with `token`."""
    env = {**os.environ, "MLGOV_URL": url, "MLGOV_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "mlgov.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=180,
    )


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def session(user, workspace=None) -> APIClient:
    client = APIClient()
    client.force_login(user)
    if workspace is not None:
        client.credentials(HTTP_X_WORKSPACE=workspace.slug)
    return client


@pytest.fixture
def as_token():
    """as_token(user, workspace, scopes) -> an API client authenticated with a fresh bearer token."""

    def build(user, workspace, scopes):
        return bearer(make_token(workspace, user, scopes))

    return build


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def eager_celery():
    """Run tasks in-process (tests with real worker processes start them)."""
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous
