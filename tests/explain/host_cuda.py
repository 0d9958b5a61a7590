"""The few CuPy calls `explain.gpu` makes, answered on the host, so that the launcher's own logic
(which entry point, grid and block sizes, shared memory, argument order, the layout calibration,
completing derived outputs on device arrays) runs in CI.

Kernels run as the kernel source built for the host (`gpu.host_entry_points`): the same code the
GPU runs, with each launch's configuration checked against what the kernel needs (every (row, path)
pair covered; a tile's shared memory; the tiled grid's block count). This is not a GPU: memory
model, speed and the CUDA compiler are the lent GPU machine's tests (tests/explain/test_treeshap.py,
marked gpu) and the NVRTC compile checks (test_cuda_source.py)."""

from __future__ import annotations

import re
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from explain import gpu


class DeviceArray(np.ndarray):
    """A NumPy array with CuPy's `.get()` (copy to the host)."""

    def get(self) -> np.ndarray:
        return np.array(self, copy=True).view(np.ndarray)


def _device(array) -> DeviceArray:
    return np.asarray(array).view(DeviceArray)


_BUILDS = tempfile.TemporaryDirectory(prefix="host-cuda-")  # removed when the process exits


class RawKernel:
    builds: dict[tuple[str, int], dict] = {}  # (source, max_path) -> entry points, built once
    launches: list[dict] = []  # every launch's configuration, for the tests to inspect

    def __init__(self, source: str, name: str, options: tuple = ()) -> None:
        assert source == gpu.kernel_source()  # the source the host build compiles
        match = re.search(r"-DMAX_PATH=(\d+)", " ".join(options))
        assert match, f"no -DMAX_PATH in {options}"
        self.build = (source, int(match.group(1)))
        self.layout = {entry: layout for layout, entry in gpu.ENTRY_POINTS.items()}[name]
        if self.build not in self.builds:
            directory = Path(_BUILDS.name)
            self.builds[self.build] = gpu.host_entry_points(directory, max_path=self.build[1])

    def __call__(self, grid: tuple, block: tuple, args: tuple, *, shared_mem: int = 0) -> None:
        function = self.builds[self.build][self.layout]
        n_rows, n_paths = int(args[1]), int(args[2])
        self.launches.append(
            {
                "layout": self.layout,
                "max_path": self.build[1],
                "grid": grid,
                "block": block,
                "shared_mem": shared_mem,
                "rows": n_rows,
            }
        )
        host_args = tuple(np.asarray(a).view(np.ndarray) if isinstance(a, np.ndarray) else a for a in args)
        if self.layout == "atomic":
            assert grid[0] * block[0] >= n_paths * n_rows, "the grid leaves (row, path) pairs out"
            assert shared_mem == 0
            function(*host_args)
            return
        width = block[0]
        per_block, n_outputs, n_features = int(args[3]), int(args[-3]), int(args[-2])
        assert shared_mem >= n_features * n_outputs * width * 8, "the tile overruns its shared memory"
        assert shared_mem <= gpu.TILE_SHARED_BYTES, "more shared memory than a launch gets unasked"
        assert grid[0] == -(-n_rows // width) * -(-n_paths // per_block), "wrong number of blocks"
        function(*host_args, width, np.zeros(shared_mem // 8))


def module() -> types.ModuleType:
    """A module to stand in for `cupy`."""
    cupy = types.ModuleType("cupy")
    cupy.float64 = np.float64  # type: ignore[attr-defined]
    cupy.RawKernel = RawKernel  # type: ignore[attr-defined]
    cupy.asarray = _device  # type: ignore[attr-defined]
    cupy.ascontiguousarray = lambda a: _device(np.ascontiguousarray(a))  # type: ignore[attr-defined]
    cupy.zeros = lambda shape, dtype=np.float64: _device(np.zeros(shape, dtype))  # type: ignore[attr-defined]
    cupy.concatenate = lambda arrays, axis=0: _device(np.concatenate(arrays, axis=axis))  # type: ignore[attr-defined]

    class Device:
        id = 0

        def synchronize(self) -> None:
            pass

    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDeviceProperties=lambda _id: {"name": b"host emulation", "major": 0, "minor": 0},
    )
    cupy.cuda = types.SimpleNamespace(Device=Device, runtime=runtime)  # type: ignore[attr-defined]
    return cupy


def install(monkeypatch) -> None:
    """Put the stand-in in place of `cupy` for one test (and reset the caches that remember it)."""
    monkeypatch.setitem(sys.modules, "cupy", module())
    RawKernel.launches.clear()
    gpu.cuda_available.cache_clear()
    gpu._cuda_kernel.cache_clear()
