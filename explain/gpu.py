"""The TreeSHAP CUDA kernel (`kernels/treeshap.cu`): launched through CuPy on a GPU, or built as
plain C for the host so that its algorithm can be checked where no GPU is present."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import subprocess
from pathlib import Path

import numpy as np

from explain.treeshap import PathSet

KERNEL_PATH = Path(__file__).resolve().parent / "kernels" / "treeshap.cu"
THREADS_PER_BLOCK = 256
KERNEL_OPTIONS = ("--std=c++14",)
# Builds of the kernel by the longest path they take (-DMAX_PATH): up to 16 elements the working
# arrays stay in registers (loops unrolled over a fixed range); up to 64 they live in local memory.
KERNEL_VARIANTS = (16, 64)


def kernel_source() -> str:
    return KERNEL_PATH.read_text()


@functools.cache
def cuda_available() -> bool:
    """CuPy importable and at least one CUDA device visible."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no cupy, no driver, no device: all mean "no GPU here"
        return False


def device_name() -> str:
    import cupy

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
def _cuda_kernel(max_path: int):
    import cupy

    return cupy.RawKernel(
        kernel_source(), "treeshap_paths", options=(*KERNEL_OPTIONS, max_path_define(max_path))
    )


def kernel_arguments(x, n_rows: int, n_paths: int, arrays: tuple, n_outputs: int, phi) -> tuple:
    """The kernel's parameters in order: x, n_rows (long long), n_paths (int), path_start, feature,
    lower, upper, zero, values, n_outputs (int), phi. Arrays are CuPy arrays for the GPU launch,
    NumPy arrays for the host build; one function for both, and the tests hold it to the compiled
    kernel's parameter list."""
    return (x, np.int64(n_rows), np.int32(n_paths), *arrays, np.int32(n_outputs), phi)


class DevicePaths:
    """A PathSet copied to the GPU once, then used for any number of row blocks."""

    def __init__(self, paths: PathSet, max_path: int | None = None) -> None:
        import cupy

        self.paths = paths
        self.max_path = max_path or kernel_variant(paths)
        if self.max_path < kernel_variant(paths):
            raise ValueError(f"the model's paths are longer than {self.max_path} elements")
        self.arrays = tuple(cupy.asarray(array) for array in paths.kernel_arrays())

    def shap_values(self, X, *, synchronize: bool = True):
        """SHAP values (rows, features, outputs) as a CuPy array."""
        import cupy

        paths = self.paths
        x = cupy.asarray(np.ascontiguousarray(paths.prepare(X).T))  # feature-major
        n_rows = x.shape[1]
        outputs = paths.kernel_outputs
        phi = cupy.zeros((paths.n_features * outputs, n_rows), dtype=cupy.float64)
        pairs = paths.n_paths * n_rows
        blocks = (pairs + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        _cuda_kernel(self.max_path)(
            (blocks,),
            (THREADS_PER_BLOCK,),
            kernel_arguments(x, n_rows, paths.n_paths, self.arrays, outputs, phi),
        )
        values = paths.complete(phi.reshape(paths.n_features, outputs, n_rows).transpose(2, 0, 1), cupy)
        if synchronize:
            cupy.cuda.Device().synchronize()
        return values


def gpu_shap_values(
    paths: PathSet, X, *, max_pairs: int = 1 << 31, max_path: int | None = None
) -> np.ndarray:
    """SHAP values on the GPU, in row blocks of at most `max_pairs` (row, path) pairs (with the
    kernel's smallest build that fits unless `max_path` names one)."""
    device = DevicePaths(paths, max_path)
    block = max(1, max_pairs // max(paths.n_paths, 1))
    X = np.asarray(X)
    parts = [device.shap_values(X[s : s + block]).get() for s in range(0, len(X), block)]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, paths.n_features, paths.n_outputs))


def build_host_kernel(directory: Path, compiler: str = "gcc", max_path: int = 64):
    """Compile the kernel source as C for the host (the build taking paths of up to `max_path`
    elements); returns a callable like gpu_shap_values."""
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
    function = lib.treeshap_paths_host
    pointer = np.ctypeslib.ndpointer
    function.argtypes = [
        pointer(np.float64, flags="C"),
        ctypes.c_longlong,
        ctypes.c_int,
        pointer(np.int64, flags="C"),
        pointer(np.int32, flags="C"),
        pointer(np.float64, flags="C"),
        pointer(np.float64, flags="C"),
        pointer(np.float64, flags="C"),
        pointer(np.float64, flags="C"),
        ctypes.c_int,
        pointer(np.float64, flags="C"),
    ]
    function.restype = None

    def shap_values(paths: PathSet, X) -> np.ndarray:
        if kernel_variant(paths) > max_path:
            raise ValueError(f"the model's paths are longer than {max_path} elements")
        x = np.ascontiguousarray(paths.prepare(X).T)
        n_rows = x.shape[1]
        outputs = paths.kernel_outputs
        phi = np.zeros((paths.n_features * outputs, n_rows))
        function(*kernel_arguments(x, n_rows, paths.n_paths, paths.kernel_arrays(), outputs, phi))
        return paths.complete(phi.reshape(paths.n_features, outputs, n_rows).transpose(2, 0, 1).copy())

    return shap_values
