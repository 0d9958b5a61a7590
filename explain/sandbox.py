"""Running pickled models where they can do no harm: in a confined child process of the worker.

Pickle and joblib files run code when they are loaded. Where the operator allows them
(MODELS_ALLOW_PICKLE, and the workspace through `manage.py workspace_allow_pickle`), a worker never
loads one itself: `sandbox_run` starts `python -I -B -m explain.sandbox_child` with an empty
environment in a private temporary directory, hands it the model, the request and the input rows as
files, and reads its answer back as data (JSON and .npy, never pickles). The child confines itself
before it touches the model (explain/confinement.py: resource limits, no capabilities, Landlock,
seccomp; it refuses to go on where that is not possible); the parent enforces the wall-clock limit
and kills the child's process group. `SandboxedModel` presents such a model to the job code: what
it is (asked once) and what it computes (one child per call).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from core import media_types

CHILD_MODULE = "explain.sandbox_child"
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # result.json
LOG_TAIL = 2000  # characters of the child's output quoted when it dies without an answer


class SandboxError(Exception):
    """The model could not be run in the sandbox; the message says why, for the job's error."""


@dataclass(frozen=True)
class SandboxLimits:
    memory_mb: int
    cpu_seconds: int
    wall_seconds: float
    open_files: int
    file_mb: int

    @classmethod
    def from_settings(cls) -> SandboxLimits:
        return cls(
            memory_mb=settings.MODELS_SANDBOX_MEMORY_MB,
            cpu_seconds=settings.MODELS_SANDBOX_CPU_SECONDS,
            wall_seconds=settings.MODELS_SANDBOX_WALL_SECONDS,
            open_files=settings.MODELS_SANDBOX_OPEN_FILES,
            file_mb=settings.MODELS_SANDBOX_FILE_MB,
        )

    def for_child(self) -> dict[str, int]:
        mib = 1024 * 1024
        return {
            "memory_bytes": self.memory_mb * mib,
            "cpu_seconds": self.cpu_seconds,
            "open_files": self.open_files,
            "file_bytes": self.file_mb * mib,
        }


def _protected_paths() -> list[str]:
    """Where the service keeps what the child must never read: the child refuses to start if any of
    these is beneath a directory it needs to read."""
    paths = [
        settings.VAR_DIR,
        settings.GATE_SIGNING_KEY_FILE,
        settings.ARTIFACT_ROOT,
        settings.BASE_DIR / "var",
    ]
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        paths.append(database["NAME"])
    return [str(p) for p in paths if p]


def _workdir_root() -> str | None:
    return settings.MODELS_SANDBOX_TMPDIR or None


def sandbox_run(
    model: bytes, *, media_type: str, ops: list[dict[str, Any]], limits: SandboxLimits | None = None
) -> list[dict[str, Any]]:
    """Run operations on a pickled model in a confined child. `ops` are dicts with `op` (describe,
    predict, predict_proba, shap) and the arrays they take (`X`, `background`); the answers are dicts,
    with arrays under `arrays`. Raises SandboxError saying what went wrong."""
    limits = limits or SandboxLimits.from_settings()
    workdir = Path(tempfile.mkdtemp(prefix="mlgov-sandbox-", dir=_workdir_root()))  # mode 0700
    try:
        (workdir / "model.bin").write_bytes(model)
        request_ops = []
        for index, op in enumerate(ops):
            entry = {"op": op["op"]}
            for key in ("X", "background"):
                if op.get(key) is not None:
                    entry[key] = f"in-{index}-{key}.npy"
                    np.save(workdir / entry[key], np.asarray(op[key], dtype=np.float64), allow_pickle=False)
            request_ops.append(entry)
        request = {
            "format": "joblib" if media_type == media_types.JOBLIB else "pickle",
            "limits": limits.for_child(),
            "protected": _protected_paths(),
            "ops": request_ops,
        }
        (workdir / "request.json").write_text(json.dumps(request), encoding="utf-8")
        returncode, timed_out = _run_child(workdir, limits)
        return _answers(workdir, len(ops), returncode, timed_out, limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # the child can make no symbolic links to follow


def _run_child(workdir: Path, limits: SandboxLimits) -> tuple[int, bool]:
    command = [sys.executable, "-I", "-B", "-m", CHILD_MODULE, str(workdir)]
    with open(workdir / "child.log", "wb") as log:
        child = subprocess.Popen(  # noqa: S603 - a fixed command line
            command,
            env={},  # no secrets, no DATABASE_URL, no broker address
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            close_fds=True,  # the worker's database and broker connections stay here
            start_new_session=True,  # its own process group, killed as one
        )
    timed_out = False
    try:
        child.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        if child.poll() is None:  # the time is up, or this worker is stopping (a task time limit)
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    return child.returncode, timed_out


def _read_untrusted(path: Path, limit: int) -> bytes | None:
    """A plain file the child wrote, or None: links and anything but regular files are not followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limit + 1)


def _log_tail(workdir: Path) -> str:
    text = (_read_untrusted(workdir / "child.log", 1 << 20) or b"")[-LOG_TAIL:]
    return text.decode("utf-8", "replace").strip()


def _answers(
    workdir: Path, count: int, returncode: int, timed_out: bool, limits: SandboxLimits
) -> list[dict[str, Any]]:
    if timed_out:
        raise SandboxError(
            f"the model ran past the sandbox's time limit of {limits.wall_seconds:g} s and was stopped "
            "(MODELS_SANDBOX_WALL_SECONDS)"
        )
    if returncode == -signal.SIGXCPU:
        raise SandboxError(
            f"the model used more than the sandbox's {limits.cpu_seconds} s of CPU time and was stopped "
            "(MODELS_SANDBOX_CPU_SECONDS)"
        )
    if returncode == -signal.SIGKILL:
        raise SandboxError(
            f"the sandbox's process was killed: past its {limits.cpu_seconds} s of CPU time "
            f"(MODELS_SANDBOX_CPU_SECONDS) or out of memory ({limits.memory_mb} MiB, "
            "MODELS_SANDBOX_MEMORY_MB)"
        )
    raw = _read_untrusted(workdir / "result.json", MAX_ANSWER_BYTES)
    answer: Any = None
    if raw is not None and len(raw) <= MAX_ANSWER_BYTES:
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
    if not isinstance(answer, dict):
        if returncode < 0:
            name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else -returncode
            raise SandboxError(
                f"the sandbox's process died ({name}); with a {limits.memory_mb} MiB memory limit "
                f"(MODELS_SANDBOX_MEMORY_MB) that is often a lack of memory. {_log_tail(workdir)}".strip()
            )
        raise SandboxError(
            f"the sandbox's process ended (status {returncode}) without an answer. {_log_tail(workdir)}"
        )
    if not answer.get("ok"):
        raise SandboxError(_failure(answer, limits))
    results = answer.get("results")
    if returncode != 0 or not isinstance(results, list) or len(results) != count:
        raise SandboxError("the sandbox's answer is not the one asked for")
    return [_with_arrays(workdir, result, limits) for result in results]


def _failure(answer: dict[str, Any], limits: SandboxLimits) -> str:
    stage, error = str(answer.get("stage", "")), str(answer.get("error", ""))[:2000]
    if stage == "confine":
        return f"the sandbox could not be set up, so the pickle was not run: {error}"
    if answer.get("out_of_memory"):
        where = "loading the pickle" if stage == "load" else f"the {stage} step"
        return (
            f"the model ran out of memory in the sandbox ({where}; the limit is {limits.memory_mb} MiB, "
            "MODELS_SANDBOX_MEMORY_MB)"
        )
    if stage == "load":
        return f"the pickle could not be loaded in the sandbox: {error}"
    return f"the model failed in the sandbox ({stage}): {error}"


def _with_arrays(workdir: Path, result: Any, limits: SandboxLimits) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise SandboxError("the sandbox's answer is malformed")
    if "arrays" not in result:
        return result
    arrays = result["arrays"]
    if not isinstance(arrays, dict):
        raise SandboxError("the sandbox's answer is malformed")
    loaded = {}
    for key, name in arrays.items():
        if not isinstance(name, str) or "/" in name or not name.endswith(".npy"):
            raise SandboxError("the sandbox's answer names a file outside its directory")
        raw = _read_untrusted(workdir / name, limits.file_mb * 1024 * 1024)
        if raw is None:
            raise SandboxError(f"the sandbox's answer lacks {name}")
        try:
            loaded[key] = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as error:
            raise SandboxError(f"the sandbox's {name} is not an array: {error}") from error
    return {**result, "arrays": loaded}


class SandboxedModel:
    """A pickled model as the job code sees it, never loaded in this process: its description
    (`feature_names_in_`, `n_features_in_`, `classes_` where the model has them, and `predict_proba`
    where it has that) comes from one sandboxed run; each prediction or SHAP block is another."""

    def __init__(self, data: bytes, *, media_type: str, limits: SandboxLimits | None = None) -> None:
        self._data, self._media_type, self._limits = data, media_type, limits
        (info,) = self._run({"op": "describe"})
        try:
            self.model_type = str(info["type"])
            self.supports_paths = bool(info["tree"])
            if info.get("feature_names_in") is not None:
                self.feature_names_in_ = np.asarray([str(n) for n in info["feature_names_in"]], dtype=object)
            if info.get("n_features_in") is not None:
                self.n_features_in_ = int(info["n_features_in"])
            if info.get("classes") is not None:
                self.classes_ = np.asarray(list(info["classes"]))
            if info.get("predict_proba"):
                self.predict_proba = self._predict_proba
        except (KeyError, TypeError, ValueError) as error:
            raise SandboxError(f"the sandbox's description of the model is malformed ({error})") from error

    def __repr__(self) -> str:
        return f"SandboxedModel({self.model_type})"

    def _run(self, *ops: dict[str, Any]) -> list[dict[str, Any]]:
        return sandbox_run(self._data, media_type=self._media_type, ops=list(ops), limits=self._limits)

    def _rows_out(self, op: str, X: np.ndarray) -> np.ndarray:
        (result,) = self._run({"op": op, "X": X})
        values = np.asarray(result["arrays"].get("values"))
        if values.ndim == 0 or len(values) != len(X):
            raise SandboxError(f"the model's {op} gave {values.shape[:1]} rows for {len(X)}")
        return values

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._rows_out("predict", X)

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._rows_out("predict_proba", X)

    def shap_block(self, X: np.ndarray, background: np.ndarray | None):
        """SHAP values of the rows, computed in the sandbox on the CPU (an explainers.Block)."""
        # The web process imports this module (through explain.loading) and never runs a model.
        from explain.explainers import Block  # noqa: PLC0415 - explainers loads scikit-learn

        (result,) = self._run({"op": "shap", "X": X, "background": background})
        arrays = result["arrays"]
        try:
            values = np.asarray(arrays["values"], dtype=np.float64)
            expected = np.asarray(arrays["expected"], dtype=np.float64).reshape(-1)
            output = np.asarray(arrays["output"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as error:
            raise SandboxError(f"the sandbox's SHAP values are malformed ({error})") from error
        k = len(expected)
        if values.shape != (len(X), X.shape[1], k) or output.shape != (len(X), k):
            raise SandboxError(
                f"the sandbox's SHAP values have the shape {values.shape}, not ({len(X)}, {X.shape[1]}, {k})"
            )
        detail = f"{str(result.get('detail', 'shap'))[:60]}, in the pickle sandbox"
        return Block(values, expected, output, "cpu", detail)
