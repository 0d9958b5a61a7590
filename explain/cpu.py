"""The path algorithm of TreeSHAP compiled for the CPU with Numba, in parallel over rows.

The same recurrences as the CUDA kernel (`kernels/treeshap.cu`), with the same reciprocal table:
each thread takes a block of rows and walks every path for them, path by path, so a path's elements
are read once per block and stay in cache. Rows are independent, so no two threads write the same
output row and no atomics are needed.

Numba compiles the function on first use (about a second; the machine code is cached beside this
module, in NUMBA_CACHE_DIR or in the user's cache directory for the next process, where one of them
is writable). Workers choose between this and `shap.TreeExplainer` by timing both on the first rows
of a model (see `explain.explainers`).
"""

from __future__ import annotations

import numba
import numpy as np

from explain.treeshap import MAX_PATH_LENGTH, PathSet

ROWS_PER_TASK = 32
RECIPROCAL = np.array([0.0] + [1.0 / k for k in range(1, MAX_PATH_LENGTH + 1)])  # as in the CUDA kernel


def _shap_rows(x, path_start, feature, lower, upper, zero, values, reciprocal, phi):  # pragma: no cover
    n_rows = x.shape[0]
    n_paths = path_start.shape[0] - 1
    n_outputs = values.shape[1]
    n_tasks = (n_rows + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for task in numba.prange(n_tasks):
        one = np.empty(MAX_PATH_LENGTH)
        pw = np.empty(MAX_PATH_LENGTH)
        first = task * ROWS_PER_TASK
        last = min(first + ROWS_PER_TASK, n_rows)
        for path in range(n_paths):
            start = path_start[path]
            length = path_start[path + 1] - start
            if length < 2:
                continue  # a single-leaf tree adds only to the expected value
            depth = length - 1
            width = float(depth + 1)
            for row in range(first, last):
                one[0] = 1.0
                pw[0] = 1.0
                for d in range(1, length):  # EXTEND
                    v = x[row, feature[start + d]]
                    o = 1.0 if (v > lower[start + d] and v <= upper[start + d]) else 0.0
                    scale_one = o * reciprocal[d + 1]
                    scale_zero = zero[start + d] * reciprocal[d + 1]
                    one[d] = o
                    pw[d] = 0.0
                    for i in range(d - 1, -1, -1):
                        pw[i + 1] += scale_one * (i + 1) * pw[i]
                        pw[i] = scale_zero * (d - i) * pw[i]
                for e in range(1, length):  # UNWOUND-SUM
                    o = one[e]
                    z = zero[start + e]
                    total = 0.0
                    if o != 0.0:
                        scale_zero = z * reciprocal[depth + 1]
                        next_one = pw[depth]
                        for i in range(depth - 1, -1, -1):
                            tmp = next_one * width * reciprocal[i + 1]
                            total += tmp
                            next_one = pw[i] - tmp * scale_zero * (depth - i)
                    elif z != 0.0:
                        for i in range(depth - 1, -1, -1):
                            total += pw[i] * reciprocal[depth - i]
                        total *= width / z
                    weight = total * (o - z)
                    if weight != 0.0:
                        f = feature[start + e]
                        for k in range(n_outputs):
                            phi[row, f, k] += weight * values[path, k]


# Numba refuses cache=True where no cache location is writable (a read-only install without a home
# directory): then each process compiles its own copy.
try:
    _shap_rows = numba.njit(parallel=True, cache=True, nogil=True)(_shap_rows)
except RuntimeError:
    _shap_rows = numba.njit(parallel=True, nogil=True)(_shap_rows)


def threads_used(threads: int | None) -> int:
    """The threads a call with `threads` runs on: all of Numba's (one per core) for 0 or None."""
    available = numba.config.NUMBA_NUM_THREADS
    return max(1, min(int(threads), available)) if threads else available


def shap_values(paths: PathSet, X, *, threads: int | None = None) -> np.ndarray:
    """SHAP values (rows, features, outputs) of every row, on `threads` CPU threads (default: one per
    core)."""
    x = np.ascontiguousarray(paths.prepare(X))
    phi = np.zeros((len(x), paths.n_features, paths.kernel_outputs))
    previous = numba.get_num_threads()
    numba.set_num_threads(threads_used(threads))
    try:
        _shap_rows(x, *paths.kernel_arrays(), RECIPROCAL, phi)
    finally:
        numba.set_num_threads(previous)
    return paths.complete(phi)
