"""The path algorithm of TreeSHAP compiled for the CPU with Numba, in parallel over blocks of rows.

The same recurrences as the CUDA kernel (`kernels/treeshap.cu`), with the same reciprocal table, but
laid out for a CPU's vector units: each thread takes a block of ROWS_PER_TASK rows and walks every
path for all of them at once, so a path's elements are read once per block and every step of the
recurrences is a loop over the block's rows, which the compiler turns into SIMD instructions. To keep
that loop free of branches, both forms of the unwinding sum (for rows that follow the element's
branch and rows that do not) are computed for every row, and each row keeps its own. Rows are
independent, so no two threads write the same output row and no atomics are needed.

Numba compiles the function on first use (a few seconds; the machine code is cached beside this
module, in NUMBA_CACHE_DIR or in the user's cache directory for the next process, where one of them
is writable). Workers choose between this and `shap.TreeExplainer` by timing both on the first rows
of a model (see `explain.explainers`).
"""

from __future__ import annotations

import numba
import numpy as np

from explain.treeshap import MAX_PATH_LENGTH, PathSet

ROWS_PER_TASK = 64  # rows a thread takes together (measured: 16, 32, 64, 128 -> 64 fastest on Adult)
RECIPROCAL = np.array([0.0] + [1.0 / k for k in range(1, MAX_PATH_LENGTH + 1)])  # as in the CUDA kernel


# The kernel is split into steps, each compiled by Numba on its own and inlined into `_shap_rows` at
# Numba's level (inline="always"), so the loops compile exactly as if written in one function.
def _compiled(function, **options):
    """`function` compiled with Numba. Numba refuses cache=True where no cache location is writable (a
    read-only install without a home directory): then each process compiles its own copy."""
    try:
        return numba.njit(cache=True, nogil=True, **options)(function)
    except RuntimeError:
        return numba.njit(nogil=True, **options)(function)


def _inlined(function):
    return _compiled(function, inline="always")


@_inlined
def _load_block(x, first, rows, xb):  # pragma: no cover
    """The block's rows, feature-major; unused columns stay 0."""
    for r in range(rows):
        for f in range(xb.shape[0]):
            xb[f, r] = x[first + r, f]


@_inlined
def _extend(
    xb, start, length, feature, lower, upper, zero, reciprocal, one, pw, scale_one
):  # pragma: no cover
    """EXTEND along one path for every row of the block: `one` says which rows follow each element's
    branch, `pw` holds the permutation weights."""
    block = xb.shape[1]
    for r in range(block):
        pw[0, r] = 1.0
    for d in range(1, length):
        f = feature[start + d]
        lo = lower[start + d]
        hi = upper[start + d]
        step = reciprocal[d + 1]
        scale_zero = zero[start + d] * step
        for r in range(block):
            v = xb[f, r]
            o = 1.0 if (v > lo and v <= hi) else 0.0
            one[d, r] = o
            scale_one[r] = o * step
            pw[d, r] = 0.0
        for i in range(d - 1, -1, -1):
            up = float(i + 1)
            down = scale_zero * (d - i)
            for r in range(block):
                p = pw[i, r]
                pw[i + 1, r] += scale_one[r] * up * p
                pw[i, r] = down * p


@_inlined
def _unwound_sums(pw, depth, z, reciprocal, next_one, follows_sum, other_sum):  # pragma: no cover
    """UNWOUND-SUM of one element with zero fraction `z`, both forms for every row: `follows_sum` for
    a row that follows the element's branch, `other_sum` (unscaled) for one that does not."""
    width = float(depth + 1)
    scale_zero = z * reciprocal[depth + 1]
    for r in range(pw.shape[1]):
        next_one[r] = pw[depth, r]
        follows_sum[r] = 0.0
        other_sum[r] = 0.0
    for i in range(depth - 1, -1, -1):
        a = width * reciprocal[i + 1]
        b = scale_zero * (depth - i)
        c = reciprocal[depth - i]
        for r in range(pw.shape[1]):
            p = pw[i, r]
            tmp = next_one[r] * a
            follows_sum[r] += tmp
            next_one[r] = p - tmp * b
            other_sum[r] += p * c


@_inlined
def _add_element(acc, one_e, z, target, value, follows_sum, other_sum, other_scale):  # pragma: no cover
    """Add one element's contribution to one output (row `target` of `acc`) for every row."""
    for r in range(acc.shape[1]):
        o = one_e[r]
        total = follows_sum[r] if o != 0.0 else other_sum[r] * other_scale
        acc[target, r] += total * (o - z) * value


@_inlined
def _store_block(acc, first, rows, n_outputs, phi):  # pragma: no cover
    for r in range(rows):
        for j in range(acc.shape[0]):
            phi[first + r, j // n_outputs, j % n_outputs] = acc[j, r]


@_inlined
def _add_path(
    path, start, length, xb, feature, lower, upper, zero, values, reciprocal, work, acc
):  # pragma: no cover
    """One path's contributions for every row of the block, added into `acc`."""
    one, pw, scale_one, next_one, follows_sum, other_sum = work
    n_outputs = values.shape[1]
    depth = length - 1
    width = float(depth + 1)
    _extend(xb, start, length, feature, lower, upper, zero, reciprocal, one, pw, scale_one)
    for e in range(1, length):
        z = zero[start + e]
        _unwound_sums(pw, depth, z, reciprocal, next_one, follows_sum, other_sum)
        other_scale = width / z if z != 0.0 else 0.0
        f = feature[start + e]
        for k in range(n_outputs):
            _add_element(
                acc, one[e], z, f * n_outputs + k, values[path, k], follows_sum, other_sum, other_scale
            )


def _shap_rows(x, path_start, feature, lower, upper, zero, values, reciprocal, phi):  # pragma: no cover
    n_rows, n_features = x.shape
    n_paths = path_start.shape[0] - 1
    n_outputs = values.shape[1]
    block = ROWS_PER_TASK
    n_tasks = (n_rows + block - 1) // block
    for task in numba.prange(n_tasks):
        first = task * block
        rows = min(block, n_rows - first)
        xb = np.zeros((n_features, block))
        _load_block(x, first, rows, xb)
        work = (
            np.zeros((MAX_PATH_LENGTH, block)),  # one: does the row follow the element's branch
            np.zeros((MAX_PATH_LENGTH, block)),  # pw: the permutation weights
            np.zeros(block),  # scale_one
            np.zeros(block),  # next_one
            np.zeros(block),  # follows_sum: the unwound sum of a row that follows the element's branch
            np.zeros(block),  # other_sum: ... and of one that does not (scaled when added)
        )
        acc = np.zeros((n_features * n_outputs, block))
        for path in range(n_paths):
            start = path_start[path]
            length = path_start[path + 1] - start
            if length >= 2:  # a single-leaf tree adds only to the expected value
                _add_path(path, start, length, xb, feature, lower, upper, zero, values, reciprocal, work, acc)
        _store_block(acc, first, rows, n_outputs, phi)


_shap_rows = _compiled(_shap_rows, parallel=True)


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
