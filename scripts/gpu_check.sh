#!/usr/bin/env bash
# Everything that needs an NVIDIA GPU (for a machine with a CUDA torch, nvcc, compute-sanitizer
# and this project's Python dependencies already installed, no network). Steps, in order:
#   build      build dynbatch_ext with its CUDA kernels (sm_80 and sm_90) into the current Python
#   tests      the whole test suite, whose op tests then also run on CUDA (float32 against the
#              float64 reference, float16/bfloat16 against the reference run in the same precision)
#   sanitizer  compute-sanitizer memcheck and racecheck over the CUDA op tests
#   bench      the benchmark with --device cuda (B = 32, 512, 4096; float32 and bfloat16)
#   profile    Nsight Compute (ncu) over the fused kernels of one benchmark step at B = 512, in
#              float32 and bfloat16: throughput against the device's peaks, DRAM traffic,
#              occupancy and launch figures per kernel (what to work on when a target is missed);
#              and at B = 4, L = 512, d = 256, where each pair is split over many blocks
#   probs      soft_align's attention probabilities recomputed in the backward (what the ops do)
#              or saved by the forward: builds csrc/bench/soft_align_probs with nvcc,
#              runs it under memcheck and racecheck on small batches, and times both choices at
#              B = 512 (python -m dynbatch_ext.bench.tools.probs_choice)
# STEPS="build tests" runs some of them (default: all; every step but build needs a CUDA build
# installed). STEP_TIMEOUT=SECONDS stops a step that runs longer (its log so far is kept and the
# next step runs), so that one slow step cannot use up a call's time limit. Extra arguments go to the benchmark (e.g. --quick, or --sections ops to time only
# the kernels where device time is short).
# Logs and results go to $GPU_RESULTS (default gpu-results/). ARCHIVE=FILE.tgz also packs them
# into one file after every step, for harnesses that bring back only a few files (and may stop
# the script).
# Exit status: non-zero if a step failed; later steps still run.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RESULTS=${GPU_RESULTS:-gpu-results}
STEPS=" ${STEPS:-build tests sanitizer bench profile probs} "
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1 DYNBATCH_DATA_DIR=${DYNBATCH_DATA_DIR:-$PWD/shared/data}
PYTHON=${PYTHON:-python3}
status=0
pack() {
  if [ -n "${ARCHIVE:-}" ]; then
    tar czf "$ARCHIVE" -C "$RESULTS" . && echo "== logs and results packed into $ARCHIVE"
  fi
}
step() {  # step NAME COMMAND...: runs, logs to $RESULTS/NAME.log, remembers a failure, packs
  local name=$1
  shift
  [ -z "${STEP_TIMEOUT:-}" ] || set -- timeout -k 30 "$STEP_TIMEOUT" "$@"
  echo "== $name: $*"
  "$@" 2>&1 | tee "$RESULTS/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc$([ "$rc" -ne 124 ] || echo " (stopped after STEP_TIMEOUT=$STEP_TIMEOUT s)")"
  [ "$rc" -eq 0 ] || status=1
  pack
  return "$rc"
}
wanted() { [[ $STEPS == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$RESULTS/gpu.txt"
if wanted build; then
  step build "$PYTHON" -m pip install --no-build-isolation --no-deps --no-index -v . || exit 1
fi
step with-cuda "$PYTHON" -c "import dynbatch_ext, torch; assert dynbatch_ext.with_cuda(), 'no CUDA kernels in this build'; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" || exit 1
if wanted tests; then
  step tests "$PYTHON" -m pytest -q -p no:cacheprovider tests
fi
# compute-sanitizer over our kernels only: their mangled names hold the namespace `dynbatch`, and
# torch's own kernels then run uninstrumented, at full speed. PYTORCH_NO_CUDA_MEMORY_CACHING=1
# gives every tensor its own allocation, so that memcheck sees a read past a tensor's end (inside
# one of the caching allocator's blocks it would not).
SANITIZE=(env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "${SANITIZER:-compute-sanitizer}" --error-exitcode 3
          --kernel-name kns=dynbatch)
if wanted sanitizer; then
  # The kernels' tests only: torch.compile's generated kernels are not ours to check, and
  # compiling under the sanitizer takes minutes. The bad-lengths test stops a kernel on purpose.
  OP_TESTS=(tests/test_ops_soft_align.py tests/test_ops_masked_pool.py tests/test_ops_low_precision.py)
  for tool in memcheck racecheck; do
    step "sanitizer-$tool" "${SANITIZE[@]}" --tool "$tool" \
      "$PYTHON" -m pytest -q -p no:cacheprovider -k "(cuda or low_precision) and not compile and not bad_lengths" \
      "${OP_TESTS[@]}"
  done
fi
if wanted bench; then
  # Without arguments, every section that measures on the GPU (the others measure the CPU; the
  # transformer section also needs the hf extra's datasets, which GPU machines may lack).
  [ $# -gt 0 ] || set -- --sections $("$PYTHON" -c 'from dynbatch_ext.bench.sections import SECTIONS
print(*(name for name, section in SECTIONS.items() if section.measures_on_device))')
  step bench "$PYTHON" -m dynbatch_ext bench --device cuda --out "$RESULTS/bench" "$@"
fi
if wanted profile; then
  # --clock-control none: leave the GPU's clocks as they are (the device notes ask for it).
  step profile "${NCU:-ncu}" --clock-control none --profile-from-start off \
    -k "regex:soft_align|masked_pool" --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --section Occupancy --section LaunchStats \
    "$PYTHON" -m dynbatch_ext.bench.tools.profile_step --batch 512
  # A small batch of long pairs, which the kernels split over many blocks: the SMs they keep busy
  # (the SpeedOfLight and Occupancy sections) is the long-sequence grid's CUDA target.
  step profile-split "${NCU:-ncu}" --clock-control none --profile-from-start off \
    -k "regex:soft_align|masked_pool" --section SpeedOfLight --section Occupancy --section LaunchStats \
    "$PYTHON" -m dynbatch_ext.bench.tools.profile_step --batch 4 --length 512 --dim 256 --dtypes float32
fi
if wanted probs; then
  program=${TMPDIR:-/tmp}/dynbatch_soft_align_probs
  if step probs-build "${NVCC:-nvcc}" -O3 -std=c++17 -arch=native -I csrc -o "$program" \
    csrc/bench/soft_align_probs.cu csrc/kernels/soft_align.cu; then
    # The saving variants run only in this program (the ops recompute), so the sanitizer checks
    # them here, at d = PROBS_CHECK_DIM (ESIM's 600) on one batch for each place the pair matrices
    # can live: the default 48 KiB of shared memory, opted-in shared memory, the global workspace
    # (the sizes are an H100's or H200's). Lengths 0 and 1 on either side included.
    declare -A PROBS_CASES=([shared]=$'0 3\n3 0\n0 0\n1 1\n17 20\n40 33'
                            [optin]=$'1 1\n100 60\n60 50\n0 2'
                            [workspace]=$'0 5\n150 150\n2 149\n1 0')
    for case in shared optin workspace; do
      for tool in memcheck racecheck; do
        step "probs-$tool-$case" "${SANITIZE[@]}" --tool "$tool" "$program" "${PROBS_CHECK_DIM:-600}" 1 <<<"${PROBS_CASES[$case]}"
      done
    done
    step probs "$PYTHON" -m dynbatch_ext.bench.tools.probs_choice --program "$program" --out "$RESULTS"
  fi
fi
exit $status
