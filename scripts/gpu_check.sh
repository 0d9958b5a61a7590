#!/usr/bin/env bash
# The checks that need a CUDA device, as one command for a GPU machine that has CuPy, NumPy,
# scikit-learn, Numba and pytest but not the service's other packages (Django and the rest are not
# needed: these tests and the benchmark import only the explain package's NumPy/CuPy modules).
#
#   scripts/gpu_check.sh            # CUDA tests, then the full TreeSHAP benchmark
#   QUICK=1 scripts/gpu_check.sh    # CUDA tests, then the benchmark's --quick run
#   METHODS=kernel_source_host_c,cupy_kernel scripts/gpu_check.sh   # also time the host C build
#   PROFILE=1 scripts/gpu_check.sh  # also Nsight Compute (ncu) on the quick benchmark's first kernels
#
# shap (and slicer) travel as wheels in .whl/ when the machine lacks them; fetch them where pip works:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl shap==0.49.1 slicer==0.0.8
# Logs go to $OUT (or var/gpu-check). Exit status: the tests' (a missing device fails them here).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-var/gpu-check}"
mkdir -p "$out"
python="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu-check-site .whl/*.whl || exit 2
  export PYTHONPATH="/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 GPU_REQUIRED=1

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  "$python" -c 'import cupy, numpy, sklearn, shap; print("cupy", cupy.__version__, "numpy", numpy.__version__, "scikit-learn", sklearn.__version__, "shap", shap.__version__)'
} 2>&1 | tee "$out/environment.txt"

# What the device's own compiler makes of each build: registers, stack, spills per entry point.
if command -v nvcc >/dev/null 2>&1; then
  for max_path in 16 64; do
    echo "== -DMAX_PATH=$max_path"
    nvcc -std=c++14 -DMAX_PATH=$max_path -arch=native -cubin -Xptxas -v -o /dev/null explain/kernels/treeshap.cu
  done 2>&1 | tee "$out/ptxas.txt"
fi

# --noconftest: tests/conftest.py sets up the Django service, which these tests do not use.
"$python" -m pytest --noconftest -p no:cacheprovider -q -rA \
  tests/explain/test_treeshap.py tests/explain/test_cuda_source.py 2>&1 | tee "$out/tests.log"
status=${PIPESTATUS[0]}

"$python" benchmarks/explain_shap.py ${QUICK:+--quick} --methods "${METHODS:-cupy_kernel}" \
  2>&1 | tee "$out/benchmark.log"

# Optional: where each layout's time goes (throughput against the device's limits, occupancy), on
# the quick benchmark's first TreeSHAP launches (calibration: 32 and 4,096 rows per layout).
if [ -n "${PROFILE:-}" ] && command -v ncu >/dev/null 2>&1; then
  ncu --target-processes all --kernel-name regex:treeshap --launch-count 4 \
    --section SpeedOfLight --section Occupancy --section ComputeWorkloadAnalysis \
    "$python" benchmarks/explain_shap.py --quick --methods cupy_kernel >"$out/ncu.txt" 2>&1 || true
fi
exit "$status"
