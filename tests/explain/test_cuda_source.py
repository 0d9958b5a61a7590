"""The CUDA branch of the TreeSHAP kernel, compiled where no GPU is present.

The host build (test_treeshap.py) proves the algorithm but compiles the source as C, without the
`__CUDACC__` branch. Here NVIDIA's runtime compiler (NVRTC, the compiler CuPy's RawKernel uses; the
`nvidia-cuda-nvrtc` wheel needs no GPU or driver) compiles the kernel as CuPy does, and the
compiled entry's parameters are held to the arguments the launcher passes."""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from explain import gpu

ARCHITECTURES = ["compute_90", "compute_80"]  # H100/H200, A100


def _nvrtc_library() -> ctypes.CDLL | None:
    candidates: list[str] = []
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidates += sorted(
            str(p) for p in Path(root).glob("*/lib/libnvrtc.so*") if "builtins" not in p.name
        )
    system = ctypes.util.find_library("nvrtc")
    if system:
        candidates.append(system)
    for candidate in candidates:
        try:
            return ctypes.CDLL(candidate)
        except OSError:
            continue
    return None


@pytest.fixture(scope="module")
def nvrtc():
    library = _nvrtc_library()
    if library is None:
        pytest.skip("NVRTC is not installed (the dev extra installs nvidia-cuda-nvrtc)")
    return library


def compile_ptx(nvrtc, source: str, options: list[str]) -> tuple[int, str, str]:
    """(NVRTC result code, compile log, PTX)."""
    program = ctypes.c_void_p()
    assert (
        nvrtc.nvrtcCreateProgram(ctypes.byref(program), source.encode(), b"treeshap.cu", 0, None, None) == 0
    )
    try:
        encoded = [option.encode() for option in options]
        code = nvrtc.nvrtcCompileProgram(program, len(encoded), (ctypes.c_char_p * len(encoded))(*encoded))
        size = ctypes.c_size_t()
        nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        nvrtc.nvrtcGetProgramLog(program, log)
        ptx = b""
        if code == 0:
            nvrtc.nvrtcGetPTXSize(program, ctypes.byref(size))
            buffer = ctypes.create_string_buffer(size.value)
            nvrtc.nvrtcGetPTX(program, buffer)
            ptx = buffer.value
        return code, log.value.decode(errors="replace"), ptx.decode()
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(program))


def _entry_parameter_bytes(ptx: str, name: str) -> list[int]:
    match = re.search(r"\.entry\s+" + name + r"\s*\((.*?)\)", ptx, re.S)
    assert match, f"no entry {name} in the PTX"
    return [int(bits) // 8 for bits in re.findall(r"\.param\s+\.[usb](\d+)\s", match.group(1))]


def _entry(ptx: str, name: str) -> str:
    """The PTX of one entry function, up to the next entry."""
    start = ptx.find(f".entry {name}")
    assert start >= 0, f"no entry {name} in the PTX"
    end = ptx.find(".entry ", start + 1)
    return ptx[start : end if end >= 0 else len(ptx)]


def _argument_bytes(argument) -> int:
    if isinstance(argument, np.ndarray):
        return 8  # passed as a device pointer
    assert isinstance(argument, np.generic), f"unexpected kernel argument {argument!r}"
    return argument.dtype.itemsize


@pytest.mark.slow  # NVRTC compiles the whole kernel: about 10 s per build
@pytest.mark.parametrize("max_path", gpu.KERNEL_VARIANTS)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_kernel_compiles_as_cupy_compiles_it(nvrtc, architecture, max_path):
    # cupy.RawKernel passes our options and the device's architecture
    options = [*gpu.KERNEL_OPTIONS, gpu.max_path_define(max_path), f"-arch={architecture}"]
    code, log, ptx = compile_ptx(nvrtc, gpu.kernel_source(), options)
    assert code == 0, log
    assert "warning" not in log.lower(), log
    # the tiled layout's tile is dynamic shared memory, added to with shared-memory loads and stores
    assert ".extern .shared" in ptx
    assert "st.shared.f64" in _entry(ptx, gpu.ENTRY_POINTS["tiled"])
    assert ".shared" not in _entry(ptx, gpu.ENTRY_POINTS["atomic"])
    for layout in gpu.LAYOUTS:
        body = _entry(ptx, gpu.ENTRY_POINTS[layout])
        # float64 division is a long instruction sequence on a GPU: the recurrences use the
        # reciprocal table, and the one division left is by each element's zero fraction: once per
        # element of each path length the 16-element build is compiled for (2 to 16), once in all in
        # the 64-element build
        per_element = sum(length - 1 for length in range(2, 17))
        assert body.count("div.rn.f64") <= (per_element if max_path <= 16 else 1)
        if max_path <= 16:  # unrolled with fixed trip counts: no array left in local memory
            assert "__local_depot" not in body
        else:
            assert "__local_depot" in body


@pytest.mark.slow  # compiles the whole kernel
def test_the_launch_passes_what_the_kernel_takes(nvrtc):
    options = [*gpu.KERNEL_OPTIONS, gpu.max_path_define(16), "-arch=compute_90"]
    code, log, ptx = compile_ptx(nvrtc, gpu.kernel_source(), options)
    assert code == 0, log
    paths_arrays = tuple(np.zeros(1, dtype=dtype) for dtype in (np.int64, np.int32, *[np.float64] * 4))
    atomic = gpu.kernel_arguments(np.zeros(1), 1, 1, paths_arrays, 1, np.zeros(1))
    assert [_argument_bytes(a) for a in atomic] == _entry_parameter_bytes(ptx, gpu.ENTRY_POINTS["atomic"])
    tiled = gpu.tile_arguments(np.zeros(1), 1, 1, 1, paths_arrays, 1, 1, np.zeros(1))
    assert [_argument_bytes(a) for a in tiled] == _entry_parameter_bytes(ptx, gpu.ENTRY_POINTS["tiled"])


def test_a_broken_source_fails_to_compile(nvrtc):
    """The compile check can fail: an undeclared name in the CUDA-only branch is reported."""
    broken = gpu.kernel_source().replace("atomicAdd((ptr), (value))", "atomicAddd((ptr), (value))")
    code, log, _ = compile_ptx(
        nvrtc, broken, [*gpu.KERNEL_OPTIONS, gpu.max_path_define(64), "-arch=compute_90"]
    )
    assert code != 0
    assert "atomicAddd" in log
