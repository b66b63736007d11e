#!/usr/bin/env bash
# The CUDA build of dynbatch_ext, checked on a machine with nvcc but no GPU, before device time is
# spent on it: in .venv-cuda, against the CUDA torch of the GPU machines (torch 2.11.0+cu130 from
# PyPI, about 5 GB with its CUDA libraries; TORCH_SPEC overrides it), it builds the kernels and
# the CUDA op layer, checks that the module loads with a CUDA kernel for every op, and runs the
# test suite against that build (the tests that need a GPU skip). Extra arguments go to pytest.
# This is scripts/gpu_check.sh's build step, plus the CPU half of its tests step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# torch's CMake config finds the toolkit from the first nvcc on PATH, which must be the toolkit's
# own (a wrapper script elsewhere leaves it without headers and libraries): CUDA_HOME, else
# /usr/local/cuda, else where nvcc really lives.
CUDA_HOME=${CUDA_HOME:-$( [ -d /usr/local/cuda ] && echo /usr/local/cuda || dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")}
[ -x "$CUDA_HOME/bin/nvcc" ] || {
  echo "cuda_build_check: no nvcc in CUDA_HOME=$CUDA_HOME (install the CUDA toolkit, or set CUDA_HOME)" >&2
  exit 1
}
export CUDA_HOME PATH="$CUDA_HOME/bin:$PATH"
# Its own venv and build folder: the CPU build's .venv and build/ stay as they are.
export VENV=.venv-cuda TORCH_SPEC=${TORCH_SPEC:-torch==2.11.0} SKBUILD_BUILD_DIR="build/cuda-{wheel_tag}"
# Named on every configure, so that a toolkit found wrongly once is not kept in CMake's cache.
export SKBUILD_CMAKE_ARGS="-DCUDA_TOOLKIT_ROOT_DIR=$CUDA_HOME"
. scripts/setup_env.sh
python - <<'PY'
import torch

import dynbatch_ext

assert torch.version.cuda, f"torch {torch.__version__} has no CUDA: set TORCH_SPEC to a CUDA build"
assert dynbatch_ext.with_cuda(), "dynbatch_ext was built without its CUDA kernels"
missing = [op for op in ("soft_align", "soft_align_backward", "masked_pool", "masked_pool_backward")
           if not torch._C._dispatch_has_kernel_for_dispatch_key(f"dynbatch_ext::{op}", "CUDA")]
assert not missing, f"no CUDA kernel registered for {missing}"
print(f"CUDA build loads: torch {torch.__version__}, every op has a CUDA kernel")
PY
python -m pytest "$@"
