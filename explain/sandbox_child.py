"""The sandbox's child process: confines itself, then loads a pickled model and computes what the
worker asked of it. explain/sandbox.py starts it as `python -I -B -m explain.sandbox_child WORKDIR`
with an empty environment; it imports no Django, reads no settings and opens no database.

WORKDIR (private to one run, the only place the child may write) holds `request.json`, `model.bin` and
the input arrays as .npy files. The answer is `result.json`, with arrays in `out-*.npy`:
  {"ok": true, "results": [...one per operation...]} or {"ok": false, "stage": ..., "error": ...}
Operations: `describe` (what the worker needs to know of the model), `predict`, `predict_proba`, and
`shap` (SHAP values of rows, on the CPU with the `shap` package or the compiled path algorithm).
Everything the child writes is untrusted: the parent reads it as data only.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import Any

from explain import confinement

# One thread for the numerical libraries: a thread started before confinement would escape Landlock,
# and the CPU limit counts every thread's time.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
MAX_NAMES = 100_000  # feature names or classes reported back
SYSTEM_READ_ONLY = (
    "/usr/lib",
    "/usr/lib64",
    "/lib",
    "/lib64",
    "/usr/share/zoneinfo",
    "/etc/ld.so.cache",
    "/etc/localtime",
)


def read_only_paths() -> list[str]:
    """What Python imports from: the standard library, this environment's site-packages, this package
    (not the project's root: the service's variable directory may sit there), the system's shared
    libraries."""
    paths = {os.path.join(sys.base_prefix, "lib"), str(Path(__file__).resolve().parent)}
    paths.update(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    paths.update(SYSTEM_READ_ONLY)
    return sorted(str(Path(p).resolve()) for p in paths if os.path.exists(p))


def check_protected(allowed: list[str], protected: list[str]) -> None:
    """Refuse to start if a path the service keeps secret (its variable directory, keys, database,
    artifacts) would be readable: the ruleset can only allow, never carve out."""
    for secret in protected:
        resolved = Path(secret).resolve()
        for path in allowed:
            if resolved == Path(path) or Path(path) in resolved.parents:
                raise confinement.ConfinementError(
                    f"{secret} lies beneath {path}, which the sandbox must be able to read; "
                    "move it (MLGOV_VAR_DIR, ARTIFACT_ROOT, GATE_SIGNING_KEY_FILE) out of the Python "
                    "installation"
                )


def _answer(workdir: Path, answer: dict[str, Any]) -> None:
    (workdir / "result.json").write_text(json.dumps(answer), encoding="utf-8")


def _load(data: bytes, model_format: str) -> Any:
    if model_format == "joblib":
        import joblib  # noqa: PLC0415 - after main() has set JOBLIB_MULTIPROCESSING; joblib files only

        return joblib.load(io.BytesIO(data))
    return pickle.loads(data)  # noqa: S301 - the reason for this sandbox


def _scalars(values: Any) -> list[Any]:
    """A list JSON can carry: numbers, strings and booleans as they are, anything else as its str."""
    import numpy as np  # noqa: PLC0415 - after main() has set the thread variables

    out = []
    for value in np.asarray(values).ravel().tolist()[:MAX_NAMES]:
        out.append(value if isinstance(value, (bool, int, float, str)) else str(value))
    return out


def _describe(model: Any) -> dict[str, Any]:
    from explain import explainers  # noqa: PLC0415 - scikit-learn, after main() has set the thread variables

    names = getattr(model, "feature_names_in_", None)
    n_in = getattr(model, "n_features_in_", None)
    classes = getattr(model, "classes_", None)
    return {
        "type": f"{type(model).__module__}.{type(model).__qualname__}",
        "feature_names_in": [str(n) for n in _scalars(names)] if names is not None else None,
        "n_features_in": int(n_in) if n_in is not None else None,
        "classes": _scalars(classes) if classes is not None else None,
        "predict_proba": hasattr(model, "predict_proba"),
        "tree": explainers.supports_paths(model),
    }


def _save(workdir: Path, name: str, array: Any) -> str:
    import numpy as np  # noqa: PLC0415 - after main() has set the thread variables

    array = np.asarray(array)
    if array.dtype == object:  # labels such as strings: as fixed-width text, never as pickled objects
        array = array.astype(str)
    np.save(workdir / name, array, allow_pickle=False)
    return name


def _run(workdir: Path, model: Any, index: int, op: dict[str, Any]) -> dict[str, Any]:
    import numpy as np  # noqa: PLC0415 - after main() has set the thread variables

    from explain import explainers  # noqa: PLC0415 - scikit-learn, after main() has set the thread variables

    kind = op["op"]
    if kind == "describe":
        return _describe(model)
    X = np.load(workdir / op["X"], allow_pickle=False)
    if kind in ("predict", "predict_proba"):
        with explainers.positional_columns():
            values = getattr(model, kind)(X)
        return {"arrays": {"values": _save(workdir, f"out-{index}-values.npy", values)}}
    if kind == "shap":
        background = np.load(workdir / op["background"], allow_pickle=False) if op.get("background") else None
        block = explainers.shap_block(model, X, "cpu", background, cpu_tree="shap", threads=1)
        arrays = {name: getattr(block, name) for name in ("values", "expected", "output")}
        return {
            "detail": block.detail,
            "arrays": {name: _save(workdir, f"out-{index}-{name}.npy", a) for name, a in arrays.items()},
        }
    raise ValueError(f"unknown operation {kind!r}")


def _error(stage: str, error: BaseException) -> dict[str, Any]:
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    return {"ok": False, "stage": stage, "error": text, "out_of_memory": isinstance(error, MemoryError)}


def main(argv: list[str]) -> int:
    workdir = Path(argv[1]).resolve()
    os.chdir(workdir)
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    os.environ["JOBLIB_MULTIPROCESSING"] = "0"  # no worker processes (forking is refused anyway)
    os.environ["NUMBA_CACHE_DIR"] = str(workdir / "numba")  # compiled code cached where writing is allowed
    request = json.loads((workdir / "request.json").read_text(encoding="utf-8"))
    try:
        # numpy loads (and decides its threads) here: after the thread variables, before confinement.
        import numpy  # noqa: F401, PLC0415 - after the thread variables are set

        allowed = read_only_paths()
        check_protected(allowed, request.get("protected", []))
        confinement.confine(
            read_only=allowed,
            read_write=[str(workdir), "/dev/null"],
            limits=confinement.Limits(**request["limits"]),
        )
    except Exception as error:
        _answer(workdir, _error("confine", error))
        return 1
    # From here on the process is confined: what the model's code does stays inside.
    try:
        model = _load((workdir / "model.bin").read_bytes(), request["format"])
    except BaseException as error:  # the pickle's own code may raise anything, SystemExit included
        _answer(workdir, _error("load", error))
        return 1
    results = []
    for index, op in enumerate(request["ops"]):
        try:
            results.append(_run(workdir, model, index, op))
        except BaseException as error:
            _answer(workdir, _error(op["op"], error))
            return 1
    _answer(workdir, {"ok": True, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
