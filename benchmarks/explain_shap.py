"""TreeSHAP throughput: shap.TreeExplainer (the baseline), the NumPy path reference, the CUDA
kernel's source built for the host (C, one thread), the compiled CPU path (Numba, every core; what CPU
workers run when it is the faster), and the CuPy kernel when a CUDA device is present (both layouts,
atomic and tiled, of the build the service picks, the 64-element build when that differs, and as
`cupy_kernel` the layout the service chooses by timing), all on the same model, rows and machine.
`--methods` picks which run besides the baseline.

    python benchmarks/explain_shap.py --quick          # small forest, < 1 minute
    python benchmarks/explain_shap.py                  # 100 trees, depth 8: Adult (a random forest and a
                                                       # HistGradientBoosting model) and 1M x 50 synthetic

Rows/s is measured on a slice of rows per method (shap.TreeExplainer is too slow for 1,000,000 rows on
two cores); each method's slice is stated. The GPU explains every row, or as many as it does in about
5 s where that is fewer (best of up to 3, host arrays in and out included), and its float64 work is
compared with the device's peak. Every method's values are checked against shap.TreeExplainer's on
shared rows (max abs difference printed) before its speed counts.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GPU_TARGET = 300.0  # x shap.TreeExplainer, the target
GPU_SECONDS = 5.0  # a GPU method explains every row, or as many as it explains in about this long
METHODS = ("reference_numpy", "kernel_source_host_c", "compiled_cpu", "cupy_kernel")
# Float64 fused multiply-add lanes per multiprocessor, by compute capability (NVIDIA's architecture
# whitepapers: the data-centre parts run float64 at half the float32 rate, other parts at 1/32 or 1/64).
FP64_LANES = {(6, 0): 32, (7, 0): 32, (8, 0): 32, (9, 0): 64, (10, 0): 64}
CUDA_ATTRIBUTE_CLOCK_RATE = 13  # cudaDevAttrClockRate, kHz


def fp64_peak() -> tuple[float, str]:
    """(peak float64 FLOP/s without tensor cores, how it was computed) of the current CUDA device:
    multiprocessors x float64 lanes x 2 (a fused multiply-add is two operations) x the boost clock.
    (nan, why) where the device's properties cannot be read."""
    try:
        import cupy

        device = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(device.id)
        capability = (int(props["major"]), int(props["minor"]))
        sms = int(props["multiProcessorCount"])
        try:
            khz = int(cupy.cuda.runtime.deviceGetAttribute(CUDA_ATTRIBUTE_CLOCK_RATE, device.id))
        except Exception:  # a CuPy without deviceGetAttribute
            khz = int(props.get("clockRate", 0))
    except Exception as error:  # report the throughput even where the peak is unknown
        return float("nan"), f"peak unknown ({error})"
    lanes = FP64_LANES.get(capability, 2)
    how = f"{sms} SMs x {lanes} fp64 lanes x 2 x {khz / 1e6:.3f} GHz (sm_{capability[0]}{capability[1]})"
    return sms * lanes * 2 * khz * 1e3 or float("nan"), how


def adult(path: Path):
    import pandas as pd

    frame = pd.read_csv(path, skipinitialspace=True, na_values="?").dropna()
    y = (frame.pop("income").str.strip() == ">50K").astype(int).to_numpy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("category").cat.codes
    return frame.to_numpy(dtype=np.float64), y


def synthetic(rows: int, features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    w = rng.normal(size=features)
    y = (X @ w + 0.5 * np.sin(3 * X[:, 0]) * X[:, 1] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return X, y


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = function(*args)
    return time.perf_counter() - start, out


def best_time(function, x, repeats: int, budget_s: float = 10.0) -> float:
    """Best of up to `repeats` timed calls, repeating only while under `budget_s` in all."""
    times = [timed(function, x)[0]]
    while len(times) < repeats and sum(times) < budget_s:
        times.append(timed(function, x)[0])
    return min(times)


def result(name: str, value: float, unit: str, baseline: str, ratio: float) -> None:
    print(f"RESULT {name} {value:.6g} {unit} baseline={baseline} ratio={ratio:.4g}", flush=True)


def bench(
    label: str,
    X,
    y,
    trees: int,
    depth: int,
    rows: dict[str, int],
    train_rows: int | None,
    only: set[str],
    hist: bool = False,
) -> None:
    """One model (a random forest, or with `hist` a HistGradientBoosting classifier of `trees`
    iterations) and every method on it."""
    import shap
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    from explain import gpu
    from explain.treeshap import flatten, model_input

    fit_rows = slice(0, train_rows) if train_rows else slice(None)
    seconds, model = timed(
        (
            HistGradientBoostingClassifier(max_iter=trees, max_depth=depth, random_state=0)
            if hist
            else RandomForestClassifier(trees, max_depth=depth, random_state=0, n_jobs=-1)
        ).fit,
        X[fit_rows],
        y[fit_rows],
    )
    paths = flatten(model)
    flops = paths.flops_per_row()
    print(
        f"# {label}: {X.shape[0]} rows x {X.shape[1]} features; {type(model).__name__} of {trees} trees, "
        f"depth {depth}, "
        f"trained in {seconds:.1f} s on {X[fit_rows].shape[0]} rows; {paths.n_paths} paths, "
        f"{paths.lengths.mean():.2f} elements per path; {flops} flop per row (path algorithm)",
        flush=True,
    )
    check = X[:64]
    explainer = shap.TreeExplainer(model)
    truth = np.asarray(explainer.shap_values(model_input(model, check)))
    truth = truth[:, :, None] if truth.ndim == 2 else truth  # one output: (rows, features, 1) as ours

    def shap_values(x):
        return np.asarray(explainer.shap_values(model_input(model, x), check_additivity=False))

    n = rows["shap"]
    seconds, _ = timed(shap_values, X[:n])
    base = n / seconds
    print(f"# shap.TreeExplainer: {n} rows in {seconds:.2f} s", flush=True)
    result(f"treeshap_{label}_shap_rows_per_s", base, "rows/s", "shap.TreeExplainer", 1.0)

    methods = _cpu_methods(paths, X, only)
    choice: str | None = None
    gpu_rows: dict[str, int] = {}
    if "cupy_kernel" in only and gpu.cuda_available():
        choice, gpu_methods, gpu_rows = _gpu_methods(paths, X)
        methods += gpu_methods
    elif "cupy_kernel" in only:
        print("# GPU: none here (CuPy or a CUDA device missing); the CuPy kernel is not measured", flush=True)
    rates = {}
    for name, method in methods:
        diff = float(np.max(np.abs(method(check) - truth)))
        on_gpu = name.startswith("cupy_kernel")
        n = gpu_rows[name] if on_gpu else rows.get(name, rows["default"])
        seconds = best_time(method, X[:n], repeats=3 if on_gpu else 1)
        rate = n / seconds
        print(
            f"# {name}: {n} rows in {seconds:.2f} s; max |diff| vs shap on 64 rows = {diff:.2e}", flush=True
        )
        if diff > 1e-5:
            print(f"# {name}: DISAGREES with shap.TreeExplainer; figure not reported", flush=True)
            continue
        result(f"treeshap_{label}_{name}_rows_per_s", rate, "rows/s", "shap.TreeExplainer", rate / base)
        rates[name] = rate
        if on_gpu:
            _gpu_results(label, name, rate, base, flops)
    if choice in rates:  # the headline: what the service runs
        rate = rates[choice]
        print(f"# cupy_kernel: the service's choice is {choice}, measured above", flush=True)
        result(f"treeshap_{label}_cupy_kernel_rows_per_s", rate, "rows/s", "shap.TreeExplainer", rate / base)
        ratio = rate / base
        result(f"treeshap_{label}_cupy_kernel_vs_target", ratio, "x", "target-300x", ratio / GPU_TARGET)


def _cpu_methods(paths, X, only: set[str]) -> list[tuple[str, Callable]]:
    """The CPU methods asked for, each a function rows -> SHAP values."""
    from explain import gpu
    from explain.treeshap import reference_shap_values

    methods: list[tuple[str, Callable]] = []
    if "reference_numpy" in only:
        methods.append(("reference_numpy", lambda x: reference_shap_values(paths, x)))
    if "kernel_source_host_c" in only and shutil.which("gcc"):
        host = gpu.build_host_kernel(Path(tempfile.mkdtemp()))
        methods.append(("kernel_source_host_c", lambda x: host(paths, x)))
    if "compiled_cpu" in only:  # what CPU workers run when it is the faster (Numba, every core)
        from explain import cpu

        cpu.shap_values(paths, X[:1])  # compile
        print(f"# compiled_cpu: Numba, {cpu.threads_used(None)} threads", flush=True)
        methods.append(("compiled_cpu", lambda x: cpu.shap_values(paths, x)))
    return methods


def _gpu_methods(paths, X) -> tuple[str, list[tuple[str, Callable]], dict[str, int]]:
    """(the service's choice, every build and layout as a method, the rows each is timed on)."""
    from explain import gpu

    print(f"# GPU: {gpu.device_name()}", flush=True)
    # What the service runs: the fastest of each layout of the smallest build that fits and of
    # the 64-element build (local memory), timed on the first rows. Then each of them in turn.
    service = gpu.DevicePaths(paths)
    service.shap_values(X[: gpu.CALIBRATION_ROWS]).get()  # compile, warm up, choose
    smallest = service.candidates[0][0]

    def method_name(build: int, layout: str) -> str:
        return f"cupy_kernel_{layout}" + ("" if build == smallest else "_local_memory")

    timings = ", ".join(f"{method_name(*c)} {seconds * 1e3:.2f} ms" for c, seconds in service.timings.items())
    print(
        f"# cupy_kernel: the service chose {service.layout} layout, {service.max_path}-element build "
        f"(calibration on {min(len(X), gpu.CALIBRATION_ROWS)} rows: {timings or 'not timed'}; "
        f"tile width {service.width} rows)",
        flush=True,
    )
    methods: list[tuple[str, Callable]] = []
    gpu_rows: dict[str, int] = {}
    for build, layout in service.candidates:
        name = method_name(build, layout)
        device = gpu.DevicePaths(paths, build, layout)
        device.shap_values(X[:1024]).get()  # compile and warm up
        # every row, unless a slow build would take over GPU_SECONDS per call (then fewer)
        probe = X[: gpu.CALIBRATION_ROWS]
        seconds, _ = timed(lambda x, device=device: device.shap_values(x).get(), probe)
        gpu_rows[name] = min(len(X), max(len(probe), int(len(probe) / seconds * GPU_SECONDS)))
        methods.append((name, lambda x, device=device: device.shap_values(x).get()))
    return method_name(service.max_path, service.layout), methods, gpu_rows


def _gpu_results(label: str, name: str, rate: float, base: float, flops: int) -> None:
    """A GPU method's float64 work against the device's peak, and its speed against the target."""
    achieved = rate * flops
    peak, how = fp64_peak()
    print(
        f"# {name}: {achieved / 1e12:.3f} TFLOP/s of float64 work ({flops} flop per row); "
        f"peak {peak / 1e12:.1f} TFLOP/s = {how}: {100 * achieved / peak:.1f}% of peak",
        flush=True,
    )
    fraction = achieved / peak
    result(f"treeshap_{label}_{name}_fraction_of_fp64_peak", fraction, "fraction", "fp64-peak", fraction)
    result(f"treeshap_{label}_{name}_vs_target", rate / base, "x", "target-300x", rate / base / GPU_TARGET)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated, measured besides shap.TreeExplainer (default: all of "
        + ", ".join(METHODS)
        + ")",
    )
    parser.add_argument(
        "--adult", default=str(ROOT.parent / "shared" / "datasets" / "adult" / "adult.csv.gz")
    )
    args = parser.parse_args()
    only = {m.strip() for m in args.methods.split(",") if m.strip()}
    unknown = only - set(METHODS)
    if unknown:
        parser.error(f"--methods: unknown {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")
    if args.quick:
        X, y = synthetic(20_000, 20)
        bench(
            "quick", X, y, trees=20, depth=6, rows={"shap": 2000, "default": 2000}, train_rows=None, only=only
        )
        return
    adult_path = Path(args.adult)
    if not adult_path.exists():
        adult_path = ROOT / "demo" / "data" / "adult.csv.gz"
    X, y = adult(adult_path)
    bench("adult", X, y, 100, 8, {"shap": 5000, "reference_numpy": 2000, "default": 20000}, None, only)
    rows = {"shap": 5000, "reference_numpy": 5000, "default": 20000}
    bench("adult_hist", X, y, 100, 8, rows, None, only, hist=True)
    X, y = synthetic(1_000_000, 50)
    rows = {"shap": 2000, "reference_numpy": 1000, "compiled_cpu": 10_000, "default": 5000}
    bench("synthetic_1m", X, y, 100, 8, rows, train_rows=100_000, only=only)


if __name__ == "__main__":
    main()
