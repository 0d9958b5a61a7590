"""The TreeSHAP CUDA kernel (`kernels/treeshap.cu`): launched through CuPy on a GPU, or built as
plain C for the host so that its algorithm can be checked where no GPU is present."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import subprocess
import time
from pathlib import Path

import numpy as np

from explain.treeshap import PathSet

KERNEL_PATH = Path(__file__).resolve().parent / "kernels" / "treeshap.cu"
THREADS_PER_BLOCK = 128  # the atomic layout's blocks (at 92 registers an SM holds five: 20 warps)
KERNEL_OPTIONS = ("--std=c++14",)
# Builds of the kernel by the longest path they take (-DMAX_PATH): up to 16 elements the path code
# is compiled once per length and its arrays stay in registers; up to 64 they live in local memory.
KERNEL_VARIANTS = (16, 64)
# How threads share the work (see kernels/treeshap.cu): "atomic", one thread per (row, path) pair
# adding each contribution into the output with an atomic add; "tiled", one thread per row of a
# block walking a range of paths into a tile in shared memory, added into the output once.
LAYOUTS = ("atomic", "tiled")
ENTRY_POINTS = {"atomic": "treeshap_paths", "tiled": "treeshap_tiles"}
TILE_WIDTHS = (128, 64, 32)  # rows (threads) per block of the tiled layout: the widest whose tile fits
TILE_SHARED_BYTES = 48 * 1024  # dynamic shared memory any launch may use without opting in
TILE_TARGET_BLOCKS = 8192  # split the paths into chunks until a launch has about this many blocks
TILE_MIN_PATHS = 32  # but give each block at least this many paths
CALIBRATION_ROWS = 4096  # rows each build and layout explains once per model to find the fastest
MIN_CALIBRATION_ROWS = 1024  # below this, a call runs the first candidate and the choice waits


def kernel_source() -> str:
    return KERNEL_PATH.read_text()


def _cupy():
    """CuPy, imported when first needed: only GPU workers have it."""
    import cupy  # noqa: PLC0415 - an optional dependency only GPU workers have

    return cupy


@functools.cache
def cuda_available() -> bool:
    """CuPy importable and at least one CUDA device visible."""
    try:
        return _cupy().cuda.runtime.getDeviceCount() > 0
    except Exception:  # no cupy, no driver, no device: all mean "no GPU here"
        return False


def device_name() -> str:
    cupy = _cupy()
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def kernel_variant(paths: PathSet) -> int:
    """The smallest build of the kernel that takes every path of the model."""
    longest = int(paths.lengths.max()) if paths.n_paths else 1
    for max_path in KERNEL_VARIANTS:
        if longest <= max_path:
            return max_path
    raise ValueError(f"paths of {longest} elements; the kernel takes at most {KERNEL_VARIANTS[-1]}")


def max_path_define(max_path: int) -> str:
    """The compiler option selecting one build of the kernel."""
    if max_path not in KERNEL_VARIANTS:
        raise ValueError(f"max_path must be one of {KERNEL_VARIANTS}")
    return f"-DMAX_PATH={max_path}"


@functools.cache
def _cuda_kernel(max_path: int, layout: str = "atomic"):
    cupy = _cupy()
    return cupy.RawKernel(
        kernel_source(), ENTRY_POINTS[layout], options=(*KERNEL_OPTIONS, max_path_define(max_path))
    )


def kernel_arguments(x, n_rows: int, n_paths: int, arrays: tuple, n_outputs: int, phi) -> tuple:
    """The atomic layout's parameters in order: x, n_rows (long long), n_paths (int), path_start,
    feature, lower, upper, zero, values, n_outputs (int), phi. Arrays are CuPy arrays for the GPU
    launch, NumPy arrays for the host build; one function for both, and the tests hold it to the
    compiled kernel's parameter list."""
    return (x, np.int64(n_rows), np.int32(n_paths), *arrays, np.int32(n_outputs), phi)


def tile_arguments(
    x, n_rows: int, n_paths: int, paths_per_block: int, arrays: tuple, n_outputs: int, n_features: int, phi
) -> tuple:
    """The tiled layout's parameters in order: x, n_rows (long long), n_paths (int), paths_per_block
    (int), path_start, feature, lower, upper, zero, values, n_outputs (int), n_features (int), phi."""
    return (
        x,
        np.int64(n_rows),
        np.int32(n_paths),
        np.int32(paths_per_block),
        *arrays,
        np.int32(n_outputs),
        np.int32(n_features),
        phi,
    )


def tile_width(paths: PathSet) -> int | None:
    """Rows per block of the tiled layout: the widest whose tile (features x computed outputs x rows,
    float64) fits the shared memory a launch may use; None where not even 32 rows fit (then only the
    atomic layout runs)."""
    entries = paths.n_features * paths.kernel_outputs
    for width in TILE_WIDTHS:
        if entries * width * 8 <= TILE_SHARED_BYTES:
            return width
    return None


def tile_grid(n_paths: int, n_rows: int, width: int) -> tuple[int, int]:
    """(paths per block, blocks) of a tiled launch: row tiles of `width` rows, and the paths split
    into as few chunks as give about TILE_TARGET_BLOCKS blocks (each of at least TILE_MIN_PATHS
    paths); fewer chunks mean fewer atomic adds of tiles into the output."""
    row_tiles = -(-n_rows // width)
    chunks = max(1, min(-(-n_paths // TILE_MIN_PATHS), -(-TILE_TARGET_BLOCKS // row_tiles)))
    per_block = -(-n_paths // chunks)
    return per_block, row_tiles * -(-n_paths // per_block)


class DevicePaths:
    """A PathSet copied to the GPU once, then used for any number of row blocks.

    `max_path` picks a build and `layout` a layout ("atomic" or "tiled"). Left open (None, "auto"),
    the candidates are each layout of the smallest build that fits the model's paths and of the
    64-element build: the first call with at least MIN_CALIBRATION_ROWS rows times each on up to
    CALIBRATION_ROWS of its rows and keeps the fastest for this model (`timings`: seconds by
    (build, layout)); calls before that run the first candidate."""

    def __init__(self, paths: PathSet, max_path: int | None = None, layout: str = "auto") -> None:
        cupy = _cupy()
        if layout not in ("auto", *LAYOUTS):
            raise ValueError(f"layout must be one of {('auto', *LAYOUTS)}")
        smallest = kernel_variant(paths)
        if max_path is not None and max_path < smallest:
            raise ValueError(f"the model's paths are longer than {max_path} elements")
        self.paths = paths
        self.width = tile_width(paths)
        if layout == "tiled" and self.width is None:
            raise ValueError(
                f"{paths.n_features} features x {paths.kernel_outputs} outputs: a tile of 32 rows does "
                f"not fit in {TILE_SHARED_BYTES} bytes of shared memory"
            )
        builds = [max_path] if max_path else sorted({smallest, KERNEL_VARIANTS[-1]})
        layouts = [layout] if layout != "auto" else list(LAYOUTS if self.width else LAYOUTS[:1])
        self.candidates = [(build, each) for build in builds for each in layouts]
        self.max_path, self.layout = self.candidates[0]
        self.decided = len(self.candidates) == 1
        self.timings: dict[tuple[int, str], float] = {}
        self.arrays = tuple(cupy.asarray(array) for array in paths.kernel_arrays())

    @property
    def detail(self) -> str:
        """What runs, for a job's backend detail."""
        chosen = "" if self.decided else "; not yet timed"
        return f"cupy-treeshap ({self.layout} layout, {self.max_path}-element build{chosen})"

    def shap_values(self, X, *, synchronize: bool = True):
        """SHAP values (rows, features, outputs) as a CuPy array."""
        cupy = _cupy()
        paths = self.paths
        x = cupy.asarray(np.ascontiguousarray(paths.prepare(X).T))  # feature-major
        if not self.decided and x.shape[1] >= MIN_CALIBRATION_ROWS:
            self._calibrate(x)
        phi = self._launch(x, self.max_path, self.layout)
        values = paths.unpack(phi, cupy)
        if synchronize:
            cupy.cuda.Device().synchronize()
        return values

    def _launch(self, x, max_path: int, layout: str):
        """Run one build and layout over the feature-major rows `x`; phi (features x outputs, rows)."""
        cupy = _cupy()
        paths = self.paths
        n_rows = x.shape[1]
        outputs = paths.kernel_outputs
        phi = cupy.zeros((paths.n_features * outputs, n_rows), dtype=cupy.float64)
        if n_rows == 0:
            return phi
        kernel = _cuda_kernel(max_path, layout)
        if layout == "atomic":
            blocks = -(-paths.n_paths * n_rows // THREADS_PER_BLOCK)
            arguments = kernel_arguments(x, n_rows, paths.n_paths, self.arrays, outputs, phi)
            kernel((blocks,), (THREADS_PER_BLOCK,), arguments)
        else:
            width = int(self.width or 0)
            per_block, blocks = tile_grid(paths.n_paths, n_rows, width)
            arguments = tile_arguments(
                x, n_rows, paths.n_paths, per_block, self.arrays, outputs, paths.n_features, phi
            )
            kernel((blocks,), (width,), arguments, shared_mem=paths.n_features * outputs * width * 8)
        return phi

    def _calibrate(self, x) -> None:
        cupy = _cupy()
        sample = cupy.ascontiguousarray(x[:, :CALIBRATION_ROWS])
        warm_up = cupy.ascontiguousarray(x[:, :32])
        device = cupy.cuda.Device()
        for candidate in self.candidates:
            self._launch(warm_up, *candidate)  # compile (or load the cached build) first
            device.synchronize()
            start = time.perf_counter()
            self._launch(sample, *candidate)
            device.synchronize()
            self.timings[candidate] = time.perf_counter() - start
        self.max_path, self.layout = min(self.timings, key=self.timings.__getitem__)
        self.decided = True


def gpu_shap_values(
    paths: PathSet,
    X,
    *,
    max_pairs: int = 1 << 31,
    max_path: int | None = None,
    layout: str = "auto",
) -> np.ndarray:
    """SHAP values on the GPU, in row blocks of at most `max_pairs` (row, path) pairs, on the build
    and layout named, or the fastest of the candidates (see DevicePaths)."""
    device = DevicePaths(paths, max_path, layout)
    block = max(1, max_pairs // max(paths.n_paths, 1))
    X = np.asarray(X)
    parts = [device.shap_values(X[s : s + block]).get() for s in range(0, len(X), block)]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, paths.n_features, paths.n_outputs))


def host_entry_points(directory: Path, compiler: str = "gcc", max_path: int = 64) -> dict[str, object]:
    """Compile the kernel source as C for the host (the build taking paths of up to `max_path`
    elements, cached in `directory` by the source's digest); {layout: ctypes function} taking the
    kernel's parameters (the tiled one then the tile's width and memory)."""
    source = kernel_source()
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    library = Path(directory) / f"treeshap-host-{digest}-{max_path}.so"
    if not library.exists():
        src = Path(directory) / f"treeshap-host-{digest}.c"
        src.write_text(source)
        command = [compiler, "-O2", max_path_define(max_path), "-shared", "-fPIC", "-x", "c", str(src)]
        subprocess.run(  # noqa: S603 (a fixed compiler command on our own source file)
            [*command, "-o", str(library), "-lm"],
            check=True,
            capture_output=True,
        )
    lib = ctypes.CDLL(str(library))
    pointer = np.ctypeslib.ndpointer
    floats = pointer(np.float64, flags="C")
    arrays = [pointer(np.int64, flags="C"), pointer(np.int32, flags="C"), floats, floats, floats, floats]
    out = floats
    int_ = ctypes.c_int
    atomic, tiled = lib.treeshap_paths_host, lib.treeshap_tiles_host
    atomic.argtypes = [out, ctypes.c_longlong, int_, *arrays, int_, out]
    tiled.argtypes = [out, ctypes.c_longlong, int_, int_, *arrays, int_, int_, out, int_, out]
    atomic.restype = tiled.restype = None
    return {"atomic": atomic, "tiled": tiled}


def build_host_kernel(directory: Path, compiler: str = "gcc", max_path: int = 64, layout: str = "atomic"):
    """The kernel source built for the host (see host_entry_points); returns a callable like
    gpu_shap_values running `layout`'s grid on one CPU thread. The tiled layout's callable takes
    `width` and `paths_per_block` to override tile_width and tile_grid."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    function = host_entry_points(directory, compiler, max_path)[layout]

    def shap_values(
        paths: PathSet, X, *, width: int | None = None, paths_per_block: int | None = None
    ) -> np.ndarray:
        if kernel_variant(paths) > max_path:
            raise ValueError(f"the model's paths are longer than {max_path} elements")
        x = np.ascontiguousarray(paths.prepare(X).T)
        n_rows = x.shape[1]
        outputs = paths.kernel_outputs
        phi = np.zeros((paths.n_features * outputs, n_rows))
        if layout == "atomic":
            function(*kernel_arguments(x, n_rows, paths.n_paths, paths.kernel_arrays(), outputs, phi))
        elif n_rows:
            width = width or tile_width(paths)
            if width is None:
                raise ValueError("the tile does not fit in shared memory")
            per_block = paths_per_block or tile_grid(paths.n_paths, n_rows, width)[0]
            tile = np.zeros(paths.n_features * outputs * width)
            arguments = tile_arguments(
                x, n_rows, paths.n_paths, per_block, paths.kernel_arrays(), outputs, paths.n_features, phi
            )
            function(*arguments, width, tile)
        return np.ascontiguousarray(paths.unpack(phi))

    return shap_values
