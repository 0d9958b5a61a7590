"""Tiny helpers that read settings from the environment (12-factor)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), not {raw!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def envfloat(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name} must be a finite number, not {raw!r}")
    return value


def envchoice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def web_workers() -> int:
    """gunicorn's worker processes: WEB_WORKERS, else one per core this process may use (at least 2;
    sched_getaffinity is Linux's, elsewhere all cores). The setting WEB_WORKERS, which
    gunicorn.conf.py and the nginx front's bound (WEB_FRONT_MAX_CONNS) size from."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return envint("WEB_WORKERS", 0) or max(2, cores)


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def var_dir() -> Path:
    """Where local state lives on the embedded defaults (SQLite, artifacts, broker, secret key)."""
    path = Path(env("MLGOV_VAR_DIR", str(BASE_DIR / "var")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def local_secret_key(path: Path) -> str:
    """Return the secret key kept in `path`, generating it on first use (local use only)."""
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(64)
    # O_EXCL: two processes starting together must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def default_settings_module() -> str:
    """The settings module for the current DJANGO_ENV (local, test or production)."""
    name = env("DJANGO_ENV", "local").strip().lower() or "local"
    if name not in {"local", "test", "production"}:
        raise ImproperlyConfigured(f"DJANGO_ENV must be local, test or production, not {name!r}")
    return f"config.settings.{name}"
