import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from config.env import default_settings_module, envbool, envchoice, envfloat, envint, local_secret_key
from core.models import Workspace

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_SECRET = "p" * 20 + "roduction-secret-key-with-enough-entropy-0123456789-XYZ"
SIGNING_KEY = "A" * 43 + "="  # base64 of 32 bytes (a test key, not a secret)


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_check_deploy_is_clean_under_production_settings(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DJANGO_ENV": "production",
            "SECRET_KEY": PRODUCTION_SECRET,
            "ALLOWED_HOSTS": "mlgov.example.org",
            "GATE_SIGNING_KEY": SIGNING_KEY,
            "MLGOV_VAR_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "GATE_SIGNING_KEY must be set when DJANGO_ENV=production"),
        ("c2hvcnQ=", "GATE_SIGNING_KEY must be the base64 of a raw 32-byte Ed25519 private key"),
    ],
)
def test_production_refuses_to_start_without_a_shared_signing_key(tmp_path, key, message):
    result = _manage(
        "check",
        env={
            "DJANGO_ENV": "production",
            "SECRET_KEY": PRODUCTION_SECRET,
            "ALLOWED_HOSTS": "x",
            "GATE_SIGNING_KEY": key,
            "GATE_SIGNING_KEY_FILE": "",
            "MLGOV_VAR_DIR": str(tmp_path),
        },
    )
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.slow
def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _manage(
        "check",
        env={
            "DJANGO_ENV": "production",
            "SECRET_KEY": "",
            "ALLOWED_HOSTS": "x",
            "MLGOV_VAR_DIR": str(tmp_path),
        },
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_local_secret_key_is_generated_once_and_private(tmp_path):
    path = tmp_path / "secret_key"
    first = local_secret_key(path)
    assert len(first) >= 50
    assert local_secret_key(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_env_helpers_name_the_bad_variable(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "perhaps")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        envbool("SOME_FLAG", False)
    monkeypatch.setenv("SOME_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER"):
        envint("SOME_NUMBER", 1)
    for bad in ("much", "nan", "inf"):
        monkeypatch.setenv("SOME_FRACTION", bad)
        with pytest.raises(ImproperlyConfigured, match="SOME_FRACTION must be a"):
            envfloat("SOME_FRACTION", 0.5)
    monkeypatch.setenv("SOME_FRACTION", "0.05")
    assert envfloat("SOME_FRACTION", 0.5) == 0.05
    monkeypatch.setenv("SOME_CHOICE", "fastest")
    with pytest.raises(ImproperlyConfigured, match="SOME_CHOICE must be one of auto, shap"):
        envchoice("SOME_CHOICE", "auto", ("auto", "shap"))
    monkeypatch.setenv("SOME_CHOICE", " shap ")
    assert envchoice("SOME_CHOICE", "auto", ("auto", "shap")) == "shap"
    monkeypatch.delenv("SOME_CHOICE")
    assert envchoice("SOME_CHOICE", "auto", ("auto", "shap")) == "auto"
    monkeypatch.setenv("DJANGO_ENV", "staging")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_ENV"):
        default_settings_module()
    monkeypatch.setenv("DJANGO_ENV", "production")
    assert default_settings_module() == "config.settings.production"


def test_embedded_defaults_need_no_server(tmp_path):
    """With no DATABASE_URL or broker set, settings point at SQLite and the file-system broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_"))}
    code = (
        "import django, json; from django.conf import settings; django.setup();"
        "print(json.dumps([settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL,"
        " settings.CELERY_RESULT_BACKEND, settings.ARTIFACT_ROOT, settings.NEO4J_URI]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings.local", "MLGOV_VAR_DIR": str(tmp_path)},
    )
    engine, broker, backend, artifacts, neo4j = __import__("json").loads(
        result.stdout.strip().splitlines()[-1]
    )
    assert engine == "django.db.backends.sqlite3"
    assert broker == "filesystem://"
    assert backend.startswith("file://")
    assert artifacts == str(tmp_path / "artifacts")
    assert neo4j == ""
    assert (tmp_path / "secret_key").exists()


@pytest.mark.django_db
def test_bootstrap_without_a_workspace_creates_only_the_admin(monkeypatch):
    """What scripts/up.sh runs with MLGOV_DEMO=0: no empty `demo` workspace."""
    monkeypatch.setenv("MLGOV_ADMIN_PASSWORD", "a-long-test-password")
    out = io.StringIO()
    call_command("bootstrap", "--workspace", "", stdout=out)
    assert get_user_model().objects.get(username="admin").is_superuser
    assert not Workspace.objects.exists()
    assert "workspace: (none; create one" in out.getvalue()
    call_command("bootstrap", stdout=io.StringIO())  # the default still makes `demo`, once
    call_command("bootstrap", stdout=io.StringIO())
    assert list(Workspace.objects.values_list("slug", flat=True)) == ["demo"]


@pytest.mark.django_db
def test_user_create_makes_an_account_that_signs_in(monkeypatch, client):
    out = io.StringIO()
    call_command("user_create", "nadia", "--email", "nadia@example.org", stdout=out)
    password = next(line for line in out.getvalue().splitlines() if line.startswith("password:")).split()[1]
    assert client.login(username="nadia", password=password)
    assert not get_user_model().objects.get(username="nadia").is_staff
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery staple\n"))
    quiet = io.StringIO()
    call_command("user_create", "omar", "--password-stdin", stdout=quiet)
    assert "password:" not in quiet.getvalue()
    assert client.login(username="omar", password="correct horse battery staple")
    with pytest.raises(CommandError, match="username"):
        call_command("user_create", "nadia", stdout=io.StringIO())  # taken
    monkeypatch.setattr("sys.stdin", io.StringIO("123\n"))
    with pytest.raises(CommandError, match="password"):
        call_command("user_create", "pia", "--password-stdin", stdout=io.StringIO())
    assert not get_user_model().objects.filter(username="pia").exists()
