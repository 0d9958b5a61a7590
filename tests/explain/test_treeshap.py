"""The path formulation of TreeSHAP against shap.TreeExplainer: the NumPy reference, and the CUDA
kernel's source built for the host with gcc (and on a GPU when one is present)."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest
import shap
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from explain import cpu, explainers, gpu
from explain.treeshap import UnsupportedModel, flatten, model_input, model_output, reference_shap_values

TOLERANCE = 1e-5

# Skipped without a device, except where GPU_REQUIRED is set (scripts/gpu_check.sh on the lent GPU
# machine): there a missing CuPy or device fails the tests instead of skipping them.
needs_cuda = pytest.mark.skipif(
    not gpu.cuda_available() and not os.environ.get("GPU_REQUIRED"), reason="needs CuPy and a CUDA device"
)


def _data(task: str):
    if task == "regression":
        return make_regression(600, 7, n_informative=5, noise=5.0, random_state=1)
    classes = {"binary": 2, "multiclass": 3}[task]
    return make_classification(600, 7, n_informative=5, n_classes=classes, random_state=1)


CASES = [
    ("random forest regression", RandomForestRegressor(25, max_depth=7, random_state=0), "regression"),
    ("random forest binary", RandomForestClassifier(25, max_depth=7, random_state=0), "binary"),
    ("random forest multiclass", RandomForestClassifier(25, max_depth=7, random_state=0), "multiclass"),
    ("extra trees regression", ExtraTreesRegressor(25, max_depth=7, random_state=0), "regression"),
    ("extra trees binary", ExtraTreesClassifier(25, max_depth=7, random_state=0), "binary"),
    ("extra trees multiclass", ExtraTreesClassifier(25, max_depth=7, random_state=0), "multiclass"),
    (
        "gradient boosting regression",
        GradientBoostingRegressor(n_estimators=30, max_depth=4, random_state=0),
        "regression",
    ),
    (
        "gradient boosting binary",
        GradientBoostingClassifier(n_estimators=30, max_depth=4, random_state=0),
        "binary",
    ),
    ("decision tree regression", DecisionTreeRegressor(max_depth=12, random_state=0), "regression"),
    ("decision tree multiclass", DecisionTreeClassifier(max_depth=12, random_state=0), "multiclass"),
    (
        "hist gradient boosting regression",
        HistGradientBoostingRegressor(max_iter=30, random_state=0),
        "regression",
    ),
    ("hist gradient boosting binary", HistGradientBoostingClassifier(max_iter=30, random_state=0), "binary"),
    (
        "hist gradient boosting multiclass",
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
        "multiclass",
    ),
]


def _shap_reference(model, X) -> tuple[np.ndarray, np.ndarray]:
    """shap.TreeExplainer's values (rows, features, outputs) and expected value. HistGradientBoosting:
    raw outputs (log-odds), which shap gives for more than two classes only when asked."""
    hist = isinstance(model, (HistGradientBoostingClassifier, HistGradientBoostingRegressor))
    explainer = shap.TreeExplainer(model, model_output="raw") if hist else shap.TreeExplainer(model)
    values = np.asarray(explainer.shap_values(model_input(model, X)))
    values = values[:, :, None] if values.ndim == 2 else values
    return values, np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))


@pytest.fixture(scope="module")
def fitted():
    out = {}
    for name, model, task in CASES:
        X, y = _data(task)
        out[name] = (model.fit(X, y), X[:150])
    return out


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_reference_matches_shap_tree_explainer(fitted, name):
    model, X = fitted[name]
    paths = flatten(model)
    ours = reference_shap_values(paths, X)
    theirs, expected = _shap_reference(model, X)
    assert ours.shape == theirs.shape
    assert np.max(np.abs(ours - theirs)) <= TOLERANCE
    assert np.max(np.abs(paths.expected_value() - expected)) <= TOLERANCE
    # Additivity: the values and the expected value add up to the model's output.
    additivity = ours.sum(axis=1) + paths.expected_value() - model_output(model, X)
    assert np.max(np.abs(additivity)) <= TOLERANCE


def test_paths_merge_a_feature_split_twice():
    """One feature, a deep tree: every path splits on it repeatedly and the splits must merge."""
    rng = np.random.default_rng(0)
    X = rng.random((500, 2))
    y = np.sin(8 * X[:, 0]) + 0.1 * X[:, 1]
    model = DecisionTreeRegressor(max_depth=6, random_state=0).fit(X, y)
    paths = flatten(model)
    assert paths.lengths.max() <= 3  # bias + at most two distinct features, although depth is 6
    assert model.get_depth() == 6
    ours = reference_shap_values(paths, X[:100])
    theirs, _ = _shap_reference(model, X[:100])
    assert np.max(np.abs(ours - theirs)) <= TOLERANCE


def test_hist_gradient_boosting_compares_in_float64():
    """HistGradientBoosting compares float64 inputs with its thresholds: rows a hair above a threshold
    (closer than float32 can tell) follow the right branch in the paths as in the model."""
    X, y = _data("regression")
    model = HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(X, y)
    root = model._predictors[0][0].nodes[0]
    feature, threshold = int(root["feature_idx"]), float(root["num_threshold"])
    above = np.nextafter(threshold, np.inf)
    assert np.float32(above) <= threshold  # float32 rounding would send these rows left
    rows = X[:40].copy()
    rows[:, feature] = above
    paths = flatten(model)
    assert not paths.float32_input
    ours = reference_shap_values(paths, rows)
    theirs, _ = _shap_reference(model, rows)
    assert np.max(np.abs(ours - theirs)) <= TOLERANCE
    additivity = ours.sum(axis=1) + paths.expected_value() - model.predict(rows)[:, None]
    assert np.max(np.abs(additivity)) <= TOLERANCE


def test_hist_gradient_boosting_limits_are_named():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 4, 300), rng.normal(size=300)])
    y = X[:, 0] + rng.normal(size=300)
    categorical = HistGradientBoostingRegressor(max_iter=5, categorical_features=[0]).fit(X, y)
    with pytest.raises(UnsupportedModel, match="categorical splits"):
        flatten(categorical)
    poisson = HistGradientBoostingRegressor(max_iter=5, loss="poisson").fit(X, np.abs(y))
    with pytest.raises(UnsupportedModel, match="loss='poisson'"):
        flatten(poisson)


def test_multiclass_gradient_boosting_adds_up():
    """shap.TreeExplainer declines multiclass gradient boosting; the paths still explain it exactly."""
    X, y = _data("multiclass")
    model = GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0).fit(X, y)
    paths = flatten(model)
    values = reference_shap_values(paths, X[:100])
    assert values.shape == (100, 7, 3)
    raw = model.decision_function(X[:100].astype(np.float32).astype(np.float64))
    assert np.max(np.abs(values.sum(axis=1) + paths.expected_value() - raw)) <= TOLERANCE
    assert np.abs(values[:, :, 0] - values[:, :, 1]).max() > 0  # each class has its own trees


@pytest.mark.parametrize(
    ("name", "computed"),
    [
        ("random forest binary", 1),
        ("extra trees multiclass", 2),
        ("decision tree multiclass", 2),
        ("random forest regression", 1),
        ("hist gradient boosting multiclass", 3),  # one tree per class: each output has its own
    ],
)
def test_class_probabilities_compute_one_output_fewer(fitted, name, computed):
    """Where every leaf's class probabilities add up to the tree's weight, the compiled paths compute
    all classes but the last (its values are minus the others' sum), and every class still matches."""
    model, X = fitted[name]
    paths = flatten(model)
    assert paths.kernel_outputs == computed
    assert paths.kernel_arrays()[-1].shape == (paths.n_paths, computed)
    theirs, _ = _shap_reference(model, X)
    ours = cpu.shap_values(paths, X)
    assert ours.shape == theirs.shape
    assert np.max(np.abs(ours - theirs)) <= TOLERANCE


def test_a_wrong_algorithm_is_caught(fitted):
    """The comparison is sharp: perturbing one path's zero fraction breaks it."""
    model, X = fitted["random forest binary"]
    paths = flatten(model)
    paths.zero[paths.path_start[0] + 1] *= 0.9
    theirs, _ = _shap_reference(model, X)
    assert np.max(np.abs(reference_shap_values(paths, X) - theirs)) > TOLERANCE


def _require_gcc() -> None:
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler to build the kernel source for the host")


HOST_BUILDS = [(max_path, layout) for max_path in gpu.KERNEL_VARIANTS for layout in gpu.LAYOUTS]


@pytest.fixture(scope="module", params=HOST_BUILDS, ids=lambda v: f"max_path={v[0]}-{v[1]}")
def host_kernel(request, tmp_path_factory):
    """Each build of the kernel source (paths of up to 16 elements, in registers on a GPU; up to 64),
    in each layout (one thread per (row, path) pair with atomic adds; row tiles over path chunks)."""
    _require_gcc()
    max_path, layout = request.param
    return gpu.build_host_kernel(tmp_path_factory.mktemp("kernel"), max_path=max_path, layout=layout)


@pytest.fixture(scope="module")
def long_paths():
    """A tree whose paths split on more than 16 distinct features: only the 64-element build takes it."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4000, 40))
    y = X @ rng.normal(size=40) + rng.normal(size=4000)
    model = DecisionTreeRegressor(max_depth=30, min_samples_leaf=1, random_state=0).fit(X, y)
    paths = flatten(model)
    assert paths.lengths.max() > 16
    return model, paths, X[:60]


@pytest.fixture(scope="module")
def full_paths():
    """Paths of 12 to 16 elements, each length present: the 16-element build is compiled once per
    path length, and these reach its longest."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(4000, 40))
    y = X @ rng.normal(size=40) + rng.normal(size=4000)
    model = DecisionTreeRegressor(max_depth=15, random_state=0).fit(X, y)
    paths = flatten(model)
    assert set(range(12, 17)) <= set(paths.lengths.tolist())
    assert paths.lengths.max() == 16
    return model, paths, X[:80]


def test_the_models_checked_take_every_length_of_the_small_build(fitted, full_paths):
    """Each path length the 16-element build has its own code for (2 to 16) is in a model that every
    build and backend is checked against shap on."""
    lengths = set(full_paths[1].lengths.tolist())
    for model, _ in fitted.values():
        lengths |= set(flatten(model).lengths.tolist())
    assert set(range(2, 17)) <= lengths


def test_kernel_source_on_paths_filling_the_small_build(host_kernel, full_paths):
    model, paths, X = full_paths
    theirs, _ = _shap_reference(model, X)
    assert np.max(np.abs(host_kernel(paths, X) - theirs)) <= TOLERANCE


def test_long_paths_take_the_larger_build(tmp_path, long_paths):
    model, paths, X = long_paths
    assert gpu.kernel_variant(paths) == 64
    theirs, _ = _shap_reference(model, X)
    assert np.max(np.abs(gpu.build_host_kernel(tmp_path)(paths, X) - theirs)) <= TOLERANCE
    small = gpu.build_host_kernel(tmp_path, max_path=16)
    with pytest.raises(ValueError, match="longer than 16 elements"):
        small(paths, X)


@pytest.mark.parametrize("rows", [1, 31, 75])
@pytest.mark.parametrize(("width", "per_block"), [(32, 7), (32, 10_000), (64, 1)])
def test_tiled_layout_on_partial_tiles_and_chunks(tmp_path, fitted, rows, width, per_block):
    """The tiled grid's edges: a last row tile part empty, path chunks that do not divide the paths,
    one chunk holding every path, one path per block; every class of a multiclass forest."""
    _require_gcc()
    model, X = fitted["random forest multiclass"]
    paths = flatten(model)
    theirs, _ = _shap_reference(model, X[:rows])
    tiled = gpu.build_host_kernel(tmp_path, max_path=16, layout="tiled")
    ours = tiled(paths, X[:rows], width=width, paths_per_block=per_block)
    assert ours.shape == theirs.shape == (rows, 7, 3)
    assert np.max(np.abs(ours - theirs)) <= TOLERANCE


def test_tile_shape_and_grid():
    def paths_of(features: int, outputs: int):
        return type("Paths", (), {"n_features": features, "kernel_outputs": outputs})()

    assert gpu.tile_width(paths_of(14, 1)) == 128  # Adult: 14 KB of shared memory
    assert gpu.tile_width(paths_of(50, 1)) == 64  # 50 x 128 rows x 8 bytes is over 48 KB
    assert gpu.tile_width(paths_of(90, 2)) == 32
    assert gpu.tile_width(paths_of(500, 2)) is None  # only the atomic layout
    grids = [(20_000, 1_000_000, 64), (20_000, 2_000, 128), (5, 40, 32), (1500, 150, 128)]
    for n_paths, n_rows, width in grids:
        per_block, blocks = gpu.tile_grid(n_paths, n_rows, width)
        chunks = -(-n_paths // per_block)
        assert blocks == -(-n_rows // width) * chunks
        assert per_block >= min(gpu.TILE_MIN_PATHS, n_paths)
        assert (chunks - 1) * per_block < n_paths <= chunks * per_block  # every path, no empty chunk
    assert gpu.tile_grid(20_000, 1_000_000, 64)[0] == 20_000  # enough row tiles: no chunking
    assert gpu.tile_grid(20_000, 2_000, 128)[1] >= gpu.TILE_TARGET_BLOCKS // 2


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_kernel_source_on_the_host_matches_shap(fitted, host_kernel, name):
    model, X = fitted[name]
    theirs, _ = _shap_reference(model, X)
    assert np.max(np.abs(host_kernel(flatten(model), X) - theirs)) <= TOLERANCE


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("layout", gpu.LAYOUTS)
@pytest.mark.parametrize("max_path", gpu.KERNEL_VARIANTS)
@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_cuda_kernel_matches_shap(fitted, name, max_path, layout):
    model, X = fitted[name]
    theirs, _ = _shap_reference(model, X)
    values = gpu.gpu_shap_values(flatten(model), X, max_path=max_path, layout=layout)
    assert np.max(np.abs(values - theirs)) <= TOLERANCE


@pytest.mark.gpu
@needs_cuda
def test_cuda_build_and_layout_are_chosen_by_timing_each():
    """The first call with enough rows times each build and layout and keeps the fastest; the values
    match shap whichever it is, and smaller calls before it run the first candidate, untimed."""
    X, y = make_classification(3000, 12, n_informative=6, random_state=2)
    model = RandomForestClassifier(30, max_depth=8, random_state=0).fit(X, y)
    device = gpu.DevicePaths(flatten(model))
    assert device.candidates == [(16, "atomic"), (16, "tiled"), (64, "atomic"), (64, "tiled")]
    theirs, _ = _shap_reference(model, X[:200])
    small = device.shap_values(X[:200]).get()
    assert not device.decided
    assert not device.timings
    assert np.max(np.abs(small - theirs)) <= TOLERANCE
    values = device.shap_values(X).get()
    assert device.decided
    assert set(device.timings) == set(device.candidates)
    assert (device.max_path, device.layout) == min(device.timings, key=device.timings.__getitem__)
    assert np.max(np.abs(values[:200] - theirs)) <= TOLERANCE


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("layout", gpu.LAYOUTS)
@pytest.mark.parametrize("case", ["full_paths", "long_paths"])
def test_cuda_kernel_on_the_longest_paths_each_build_takes(request, case, layout):
    """Paths filling the 16-element build (registers), and longer ones (the 64-element build)."""
    model, paths, X = request.getfixturevalue(case)
    theirs, _ = _shap_reference(model, X)
    values = gpu.gpu_shap_values(paths, X, max_path=gpu.kernel_variant(paths), layout=layout)
    assert np.max(np.abs(values - theirs)) <= TOLERANCE


@pytest.mark.gpu
@needs_cuda
def test_cuda_kernel_in_row_blocks(fitted):
    """Rows split into several launches (a block holds at most max_pairs (row, path) pairs)."""
    model, X = fitted["random forest multiclass"]
    paths = flatten(model)
    whole = gpu.gpu_shap_values(paths, X)
    blocked = gpu.gpu_shap_values(paths, X, max_pairs=paths.n_paths * 7)  # 7 rows per launch
    assert blocked.shape == whole.shape == (150, 7, 3)
    assert np.max(np.abs(blocked - whole)) <= 1e-12


@pytest.mark.gpu
@needs_cuda
def test_jobs_choose_the_gpu_and_it_adds_up(fitted):
    """What a worker does for an explanation chunk: auto picks the GPU for a supported forest, and the
    block's values match shap and add up to the model's output."""
    model, X = fitted["gradient boosting binary"]
    backend, note = explainers.choose_backend(model, "auto")
    assert (backend, note) == ("gpu", "")
    block = explainers.shap_block(model, X, backend)
    assert block.backend == "gpu"
    assert re.fullmatch(
        r"cupy-treeshap \((atomic|tiled) layout, (16|64)-element build(; not yet timed)?\)", block.detail
    )
    theirs, expected = _shap_reference(model, X)
    assert np.max(np.abs(block.values - theirs)) <= TOLERANCE
    assert np.max(np.abs(block.expected - expected)) <= TOLERANCE
    assert explainers.residual(block.values, block.expected, block.output) <= TOLERANCE


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_compiled_cpu_path_matches_shap(fitted, name, threads):
    model, X = fitted[name]
    theirs, _ = _shap_reference(model, X)
    assert np.max(np.abs(cpu.shap_values(flatten(model), X, threads=threads) - theirs)) <= TOLERANCE


@pytest.mark.parametrize("case", ["full_paths", "long_paths"])
def test_compiled_cpu_path_on_the_longest_paths(request, case):
    model, paths, X = request.getfixturevalue(case)
    theirs, _ = _shap_reference(model, X)
    assert np.max(np.abs(cpu.shap_values(paths, X) - theirs)) <= TOLERANCE


def test_cpu_workers_keep_the_faster_implementation():
    """auto: too few rows to time runs shap and decides nothing; then both are timed on the first
    CALIBRATION_ROWS rows and the faster one is kept. Every choice gives shap's values."""
    X, y = _data("binary")
    model = RandomForestClassifier(30, max_depth=6, random_state=0).fit(X, y)
    theirs, expected = _shap_reference(model, X)
    trees = explainers.CpuTrees(model)
    few = X[: explainers.CALIBRATION_ROWS - 1]
    assert trees.values(few, "auto", 1)[2] == "shap.TreeExplainer"
    assert trees.faster is None
    values, ours_expected, detail = trees.values(X, "auto", 1)
    assert set(trees.timings) == {"shap", "compiled"}
    assert trees.faster == min(trees.timings, key=trees.timings.__getitem__)
    assert detail == {"shap": "shap.TreeExplainer", "compiled": "treeshap-numba (1 thread)"}[trees.faster]
    assert np.max(np.abs(values - theirs)) <= TOLERANCE
    assert np.max(np.abs(ours_expected - expected)) <= TOLERANCE
    for choice, named in (("shap", "shap.TreeExplainer"), ("compiled", "treeshap-numba (2 threads)")):
        values, _, detail = trees.values(X, choice, 2)
        assert detail == named
        assert np.max(np.abs(values - theirs)) <= TOLERANCE
    with pytest.raises(ValueError, match="must be one of"):
        trees.values(X, "fastest", 1)


def test_models_shap_declines_run_compiled():
    """shap.TreeExplainer declines multiclass gradient boosting: the compiled path explains it."""
    X, y = _data("multiclass")
    model = GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    block = explainers.shap_block(model, X[:50], "cpu", cpu_tree="shap", threads=1)
    assert block.detail == "treeshap-numba (1 thread)"
    assert explainers.residual(block.values, block.expected, block.output) <= TOLERANCE


# The launcher (explain.gpu.DevicePaths) driven through tests/explain/host_cuda.py: CuPy's calls
# answered on the host, kernels run as their host build, each launch's configuration checked. On
# the GPU machine the gpu-marked tests above run the same paths for real.


@pytest.fixture
def host_cuda(monkeypatch):
    _require_gcc()
    if gpu.cuda_available():
        pytest.skip("a CUDA device is present: the gpu-marked tests run the launcher for real")
    from tests.explain import host_cuda as emulation

    emulation.install(monkeypatch)
    explainers._device_paths.cache_clear()
    yield emulation.RawKernel.launches
    monkeypatch.undo()
    gpu.cuda_available.cache_clear()
    gpu._cuda_kernel.cache_clear()
    explainers._device_paths.cache_clear()


@pytest.mark.parametrize("layout", gpu.LAYOUTS)
@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_launcher_runs_each_layout(fitted, host_cuda, name, layout):
    model, X = fitted[name]
    paths = flatten(model)
    theirs, _ = _shap_reference(model, X)
    values = gpu.gpu_shap_values(paths, X, layout=layout)
    assert np.max(np.abs(values - theirs)) <= TOLERANCE
    assert [launch["layout"] for launch in host_cuda] == [layout]
    if layout == "tiled":
        width = gpu.tile_width(paths)
        assert host_cuda[0]["block"] == (width,)
        assert host_cuda[0]["shared_mem"] == paths.n_features * paths.kernel_outputs * width * 8


def test_launcher_times_each_build_and_layout_once_then_keeps_the_fastest(host_cuda):
    X, y = make_classification(1300, 9, n_informative=5, n_classes=3, random_state=5)
    model = RandomForestClassifier(8, max_depth=5, random_state=0).fit(X, y)
    device = gpu.DevicePaths(flatten(model))
    candidates = [(16, "atomic"), (16, "tiled"), (64, "atomic"), (64, "tiled")]
    assert device.candidates == candidates
    theirs, _ = _shap_reference(model, X[:300])
    first = device.shap_values(X[:300]).get()  # too few rows to decide: the first candidate
    assert not device.decided
    assert not device.timings
    assert device.detail == "cupy-treeshap (atomic layout, 16-element build; not yet timed)"
    assert [(launch["max_path"], launch["layout"]) for launch in host_cuda] == [(16, "atomic")]
    assert np.max(np.abs(first - theirs)) <= TOLERANCE
    host_cuda.clear()
    values = device.shap_values(X).get()
    assert set(device.timings) == set(candidates)
    chosen = min(device.timings, key=device.timings.__getitem__)
    assert (device.max_path, device.layout) == chosen
    assert device.detail == f"cupy-treeshap ({chosen[1]} layout, {chosen[0]}-element build)"
    # per candidate a warm-up on 32 rows and a timed run on the calibration rows, then the call
    launches = [(launch["max_path"], launch["layout"], launch["rows"]) for launch in host_cuda]
    assert launches == [(*c, rows) for c in candidates for rows in (32, 1300)] + [(*chosen, 1300)]
    assert np.max(np.abs(values[:300] - theirs)) <= TOLERANCE
    host_cuda.clear()
    device.shap_values(X[:50])
    assert [(launch["max_path"], launch["layout"]) for launch in host_cuda] == [chosen]


def test_launcher_candidates_follow_what_is_fixed(fitted, host_cuda):
    paths = flatten(fitted["random forest binary"][0])
    assert gpu.DevicePaths(paths, max_path=64).candidates == [(64, "atomic"), (64, "tiled")]
    assert gpu.DevicePaths(paths, layout="tiled").candidates == [(16, "tiled"), (64, "tiled")]
    fixed = gpu.DevicePaths(paths, max_path=16, layout="atomic")
    assert fixed.candidates == [(16, "atomic")]
    assert fixed.decided


def test_launcher_in_row_blocks(fitted, host_cuda):
    model, X = fitted["random forest multiclass"]
    paths = flatten(model)
    whole = gpu.gpu_shap_values(paths, X, layout="tiled")
    blocked = gpu.gpu_shap_values(paths, X, max_pairs=paths.n_paths * 7, layout="tiled")
    assert len(host_cuda) == 1 + 22  # 150 rows, 7 per launch
    assert np.max(np.abs(blocked - whole)) <= 1e-12


def test_a_tile_too_large_is_refused_by_name(host_cuda):
    X, y = make_regression(300, 200, random_state=0)
    paths = flatten(DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y))
    assert gpu.tile_width(paths) is None
    with pytest.raises(ValueError, match="200 features x 1 outputs: a tile of 32 rows does not fit"):
        gpu.DevicePaths(paths, layout="tiled")
    assert gpu.DevicePaths(paths).candidates == [(16, "atomic"), (64, "atomic")]


def test_a_worker_block_on_the_gpu_path(fitted, host_cuda):
    """What a GPU worker does for an explanation chunk, launches and all, on the host."""
    model, X = fitted["random forest binary"]
    assert explainers.choose_backend(model, "auto") == ("gpu", "")
    block = explainers.shap_block(model, X, "gpu")
    assert block.backend == "gpu"
    assert block.detail == "cupy-treeshap (atomic layout, 16-element build; not yet timed)"  # 150 rows
    theirs, expected = _shap_reference(model, X)
    assert np.max(np.abs(block.values - theirs)) <= TOLERANCE
    assert np.max(np.abs(block.expected - expected)) <= TOLERANCE
    assert explainers.residual(block.values, block.expected, block.output) <= TOLERANCE


def test_the_benchmark_measures_every_gpu_method(host_cuda, capsys):
    """benchmarks/explain_shap.py's GPU branch, which only a GPU machine runs for real: each layout of
    each build and the service's choice report a figure, and all agree with shap."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "explain_shap.py"
    spec = importlib.util.spec_from_file_location("explain_shap_benchmark", script)
    assert spec is not None
    assert spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    X, y = benchmark.synthetic(5000, 6)
    rows = {"shap": 300, "default": 300}
    benchmark.bench("check", X, y, trees=5, depth=4, rows=rows, train_rows=None, only={"cupy_kernel"})
    out = capsys.readouterr().out
    assert "DISAGREES" not in out
    layouts = [f"cupy_kernel_{layout}" for layout in gpu.LAYOUTS]
    for name in [*layouts, *(f"{name}_local_memory" for name in layouts), "cupy_kernel"]:
        assert f"RESULT treeshap_check_{name}_rows_per_s " in out
    assert "# cupy_kernel: the service's choice is cupy_kernel_" in out


def test_gpu_values_that_miss_the_output_run_again_on_the_cpu(fitted, host_cuda, monkeypatch):
    """A faulty kernel (its source with every contribution scaled by 1.01, run on the host stand-in)
    gives values that do not add up to the model's output: the block runs again on the CPU, and the
    job's detail says so."""
    source = gpu.kernel_source()
    weight = "const double weight = total * (o - z);"
    broken = source.replace(weight, weight.replace(";", " * 1.01;"))
    assert broken != source
    monkeypatch.setattr(gpu, "kernel_source", lambda: broken)
    model, X = fitted["random forest binary"]
    block = explainers.shap_block(model, X, "gpu")
    assert block.backend == "cpu"
    assert block.detail.endswith(", rerun after GPU values that missed the model's output")
    theirs, _ = _shap_reference(model, X)
    assert np.max(np.abs(block.values - theirs)) <= TOLERANCE
    monkeypatch.setattr(gpu, "kernel_source", lambda: source)
    gpu._cuda_kernel.cache_clear()
    explainers._device_paths.cache_clear()
    assert explainers.shap_block(model, X, "gpu").backend == "gpu"  # the sound kernel passes the check
