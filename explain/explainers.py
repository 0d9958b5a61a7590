"""SHAP values for one block of rows, on the backend chosen for the model: the CuPy TreeSHAP kernel
on a GPU, else the `shap` package on CPU (TreeExplainer, LinearExplainer, or the model-agnostic
permutation explainer). Values are always shaped (rows, features, outputs)."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np

from explain import gpu
from explain.treeshap import PathSet, UnsupportedModel, _estimators, flatten, model_input, model_output

logger = logging.getLogger(__name__)

# The additivity error (times the outputs' scale, at least 1) a GPU block may leave before its rows
# run again on the CPU; exact TreeSHAP leaves ~1e-13.
GPU_ADDITIVITY_TOLERANCE = 1e-6


@dataclass
class Block:
    values: np.ndarray  # (rows, features, outputs)
    expected: np.ndarray  # (outputs,)
    output: np.ndarray  # (rows, outputs): what the values add up to with `expected`
    backend: str  # "gpu" | "cpu"
    detail: str  # which implementation


def supports_paths(model) -> bool:
    try:
        _estimators(model)
        return True
    except UnsupportedModel:
        return False


def _is_linear(model) -> bool:
    return hasattr(model, "coef_") and hasattr(model, "intercept_") and not hasattr(model, "estimators_")


def choose_backend(model, requested: str = "auto") -> tuple[str, str]:
    """(backend, note). GPU only for tree ensembles the kernel supports, and only with a device."""
    tree = supports_paths(model)
    if requested in ("auto", "gpu") and tree and gpu.cuda_available():
        return "gpu", ""
    if requested == "gpu":
        reason = (
            "no CUDA device on this worker"
            if tree
            else f"{type(model).__name__} is not a supported tree model"
        )
        return "cpu", f"gpu requested, ran on cpu: {reason}"
    return "cpu", ""


@functools.lru_cache(maxsize=4)
def _device_paths(model_key: int, model) -> gpu.DevicePaths:
    return gpu.DevicePaths(flatten(model))


CPU_TREE_CHOICES = ("auto", "shap", "compiled")
CALIBRATION_ROWS = 200  # rows each CPU implementation explains once per model to see which is faster


class CpuTrees:
    """A tree model on the CPU: shap's TreeExplainer (None where shap declines the model), its paths
    for the compiled path algorithm (`explain.cpu`, flattened on first use), and which of the two was
    faster on its first rows (decided once per model and process, then kept)."""

    def __init__(self, model) -> None:
        import shap  # noqa: PLC0415 - 0.8 s to import: loaded by the first explanation, not by every worker

        self.model = model
        try:
            self.explainer = shap.TreeExplainer(model)
        except Exception:  # shap declines some ensembles (multiclass gradient boosting)
            self.explainer = None
        self.faster: str | None = None
        self.timings: dict[str, float] = {}

    @functools.cached_property
    def paths(self) -> PathSet:
        return flatten(self.model)

    @functools.cached_property
    def expected(self) -> np.ndarray:
        return self.paths.expected_value()

    def pick(self, x: np.ndarray, choice: str, threads: int) -> str:
        """ "compiled" or "shap" for these rows."""
        if choice not in CPU_TREE_CHOICES:
            raise ValueError(f"CPU TreeSHAP choice must be one of {CPU_TREE_CHOICES}, not {choice!r}")
        if self.explainer is None:
            return "compiled"
        if choice != "auto":
            return choice
        if self.faster is None and len(x) >= CALIBRATION_ROWS:
            from explain import cpu  # noqa: PLC0415 - Numba: only for the compiled path

            sample = x[:CALIBRATION_ROWS]
            cpu.shap_values(self.paths, sample[:1], threads=threads)  # compile, or load Numba's cache
            started = time.perf_counter()
            cpu.shap_values(self.paths, sample, threads=threads)
            self.timings["compiled"] = time.perf_counter() - started
            started = time.perf_counter()
            self.explainer.shap_values(sample, check_additivity=False)
            self.timings["shap"] = time.perf_counter() - started
            self.faster = min(self.timings, key=self.timings.__getitem__)
        return self.faster or "shap"  # too few rows to time yet: shap, without compiling anything

    def values(self, x: np.ndarray, choice: str, threads: int) -> tuple[np.ndarray, np.ndarray, str]:
        """(values, expected value, which implementation ran) for rows as the model compares them
        (`treeshap.model_input`)."""
        explainer = self.explainer
        if self.pick(x, choice, threads) == "compiled" or explainer is None:  # (None: for mypy)
            from explain import cpu  # noqa: PLC0415 - Numba: only for the compiled path

            values = cpu.shap_values(self.paths, x, threads=threads)
            used = cpu.threads_used(threads)
            return values, self.expected, f"treeshap-numba ({used} thread{'s' * (used != 1)})"
        values = _as_3d(explainer.shap_values(x, check_additivity=False))
        expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
        return values, expected, "shap.TreeExplainer"


@functools.lru_cache(maxsize=4)
def _cpu_trees(model_key: int, model) -> CpuTrees:
    return CpuTrees(model)


def _as_3d(values) -> np.ndarray:
    if isinstance(values, list):  # older shap: one array per output
        values = np.stack([np.asarray(v) for v in values], axis=-1)
    values = np.asarray(values, dtype=np.float64)
    return values[:, :, None] if values.ndim == 2 else values


def _outputs(model, X: np.ndarray, kind: str) -> np.ndarray:
    if kind == "margin":
        raw = model.decision_function(X)
    elif kind == "proba":
        raw = model.predict_proba(X)
    else:
        raw = model.predict(X)
    raw = np.asarray(raw, dtype=np.float64)
    return raw.reshape(len(X), -1)


@contextlib.contextmanager
def positional_columns():
    """Columns are passed by position, in the declared order; sklearn's feature-name check adds
    nothing but a warning per call."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        yield


def shap_block(
    model,
    X: np.ndarray,
    backend: str,
    background: np.ndarray | None = None,
    *,
    cpu_tree: str = "auto",
    threads: int = 0,
) -> Block:
    """SHAP values of the rows `X` (float64, features in the model's order). On the CPU, tree models
    run on `cpu_tree`: the faster of shap.TreeExplainer and the compiled path algorithm ("auto"), or
    the one named; `threads` bounds the compiled path's threads (0: one per core)."""
    with positional_columns():
        return _shap_block(model, X, backend, background, cpu_tree, threads)


def _shap_block(
    model, X: np.ndarray, backend: str, background: np.ndarray | None, cpu_tree: str, threads: int
) -> Block:
    if backend == "gpu":
        block = _gpu_block(model, X)
        off = residual(block.values, block.expected, block.output)
        if off <= GPU_ADDITIVITY_TOLERANCE * max(1.0, float(np.max(np.abs(block.output), initial=0.0))):
            return block
        # Exact TreeSHAP adds up to the model's output to rounding: a GPU block that does not is wrong
        # (a faulty device or kernel), and its rows run again on the CPU, saying so.
        logger.error("GPU SHAP values miss the model's output by %.3g: running the block on the CPU", off)
        cpu = _shap_block(model, X, "cpu", background, cpu_tree, threads)
        cpu.detail = f"{cpu.detail}, rerun after GPU values that missed the model's output"
        return cpu
    import shap  # noqa: PLC0415 - 0.8 s to import: loaded by the first explanation, not by every worker

    if supports_paths(model):
        trees = _cpu_trees(id(model), model)
        values, expected, detail = trees.values(model_input(model, X), cpu_tree, threads)
        return Block(values, expected, model_output(model, X), "cpu", detail)
    if background is None or len(background) == 0:
        raise ValueError("a background sample is needed for this model")
    if _is_linear(model):
        explainer = shap.LinearExplainer(model, background)
        values = _as_3d(explainer.shap_values(X))
        expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
        kind = "margin" if hasattr(model, "decision_function") else "predict"
        return Block(values, expected, _outputs(model, X, kind), "cpu", "shap.LinearExplainer")
    kind = "proba" if hasattr(model, "predict_proba") else "predict"
    function = model.predict_proba if kind == "proba" else model.predict
    explainer = shap.PermutationExplainer(function, shap.maskers.Independent(background, max_samples=100))
    explanation = explainer(X, silent=True)
    values = _as_3d(explanation.values)
    base = np.asarray(explanation.base_values, dtype=np.float64).reshape(len(X), -1)
    return Block(values, base.mean(axis=0), _outputs(model, X, kind), "cpu", "shap.PermutationExplainer")


def _gpu_block(model, X: np.ndarray) -> Block:
    device = _device_paths(id(model), model)
    values = device.shap_values(X).get()
    return Block(values, device.paths.expected_value(), model_output(model, X), "gpu", device.detail)


def residual(values: np.ndarray, expected: np.ndarray, output: np.ndarray) -> float:
    """Largest additivity error: |sum of SHAP values + expected value - model output|."""
    if len(values) == 0:
        return 0.0
    return float(np.max(np.abs(values.sum(axis=1) + expected[None, :] - output)))


def importance(values: np.ndarray) -> np.ndarray:
    """Global importance: mean |SHAP| per (feature, output)."""
    return np.abs(values).mean(axis=0)


# SHAP's own colours for a feature's value: blue low, red high (shap.plots.colors.red_blue).
SHAP_COLOURS = [[0.0, "#008bfb"], [1.0, "#ff0051"]]


def colour_scale(column: np.ndarray) -> np.ndarray:
    """A feature's values as colours in [0, 1], as shap's beeswarm scales them: between the 5th and
    95th percentiles (clipped), so that a few outliers do not wash out everyone else; the 1st and 99th,
    then the extremes, when those percentiles coincide. A missing value takes the middle colour."""
    finite = column[np.isfinite(column)]
    if len(finite) == 0:
        return np.full(len(column), 0.5)
    for low_q, high_q in ((5, 95), (1, 99), (0, 100)):
        low, high = np.percentile(finite, [low_q, high_q])
        if high > low:
            break
    else:
        return np.full(len(column), 0.5)
    scaled = np.clip((column - low) / (high - low), 0.0, 1.0)
    return np.where(np.isfinite(scaled), scaled, 0.5)


def figures(
    values: np.ndarray,
    X: np.ndarray,
    features: list[str],
    output: int,
    *,
    top: int = 20,
    points: int = 1000,
    seed: int = 0,
) -> dict:
    """Plotly figures as JSON: the importance bar chart and the beeswarm for one output."""
    imp = np.abs(values[:, :, output]).mean(axis=0)
    order = np.argsort(-imp)[:top]
    bar = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": [float(imp[i]) for i in order[::-1]],
                "y": [features[i] for i in order[::-1]],
            }
        ],
        "layout": {"title": {"text": "Mean |SHAP value|"}, "xaxis": {"title": {"text": "mean |SHAP|"}}},
    }
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(values), size=min(points, len(values)), replace=False) if len(values) else []
    swarm_features = order[: min(10, len(order))]
    xs, ys, colours, texts = [], [], [], []
    for rank, f in enumerate(swarm_features[::-1]):
        column = X[rows, f]
        jitter = rng.uniform(-0.3, 0.3, len(rows))
        xs += [float(v) for v in values[rows, f, output]]
        ys += [float(rank + j) for j in jitter]
        colours += [float(c) for c in colour_scale(column)]
        texts += [f"{features[f]}={float(v):g}" for v in column]
    beeswarm = {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "x": xs,
                "y": ys,
                "text": texts,
                "marker": {
                    "color": colours,
                    "colorscale": SHAP_COLOURS,
                    "cmin": 0.0,
                    "cmax": 1.0,
                    "size": 5,
                    "colorbar": {
                        "title": {"text": "feature value (low → high)", "side": "right"},
                        "tickvals": [0.0, 1.0],
                        "ticktext": ["low", "high"],
                    },
                },
            }
        ],
        "layout": {
            "title": {"text": "SHAP values by feature"},
            "xaxis": {"title": {"text": "SHAP value"}},
            "yaxis": {
                "tickvals": list(range(len(swarm_features))),
                "ticktext": [features[f] for f in swarm_features[::-1]],
            },
        },
    }
    return {"importance": bar, "beeswarm": beeswarm}
