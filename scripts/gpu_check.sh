#!/usr/bin/env bash
# Everything that needs an NVIDIA GPU, in one command (for a machine with a CUDA torch, nvcc,
# compute-sanitizer and this project's Python dependencies already installed, no network):
#   1. build dynbatch_ext with its CUDA kernels (sm_80 and sm_90) into the current Python;
#   2. the whole test suite, whose op tests then also run on CUDA (float32 against the float64
#      reference, float16/bfloat16 against the reference run in the same precision);
#   3. compute-sanitizer memcheck and racecheck over the CUDA op tests;
#   4. the benchmark with --device cuda (B = 32, 512, 4096; float32 and bfloat16).
# Logs and results go to $OUT (default gpu-results/). Extra arguments go to the benchmark
# (e.g. --quick, or --sections ops to time only the kernels where device time is short).
# Exit status: non-zero if a step failed; later steps still run.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 DYNBATCH_DATA_DIR=${DYNBATCH_DATA_DIR:-$PWD/shared/data}
PYTHON=${PYTHON:-python3}
status=0
step() {  # step NAME COMMAND...: runs, logs to $OUT/NAME.log, remembers a failure
  local name=$1
  shift
  echo "== $name: $*"
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc"
  [ "$rc" -eq 0 ] || status=1
  return "$rc"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
step build "$PYTHON" -m pip install --no-build-isolation --no-deps --no-index -v . || exit 1
step with-cuda "$PYTHON" -c "import dynbatch_ext, torch; assert dynbatch_ext.with_cuda(), 'no CUDA kernels in this build'; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" || exit 1
step tests "$PYTHON" -m pytest -q -p no:cacheprovider tests
OP_TESTS=(tests/test_ops_soft_align.py tests/test_ops_masked_pool.py tests/test_ops_low_precision.py)
for tool in memcheck racecheck; do
  step "sanitizer-$tool" compute-sanitizer --tool "$tool" --error-exitcode 3 \
    "$PYTHON" -m pytest -q -p no:cacheprovider -k "cuda or low_precision" "${OP_TESTS[@]}"
done
step bench "$PYTHON" -m dynbatch_ext bench --device cuda --out "$OUT/bench" "$@"
exit $status
