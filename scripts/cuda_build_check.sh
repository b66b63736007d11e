#!/usr/bin/env bash
# The CUDA build of dynbatch_ext, checked on a machine with nvcc but no GPU, before device time is
# spent on it: in .venv-cuda, against the CUDA torch of the GPU machines (torch 2.11.0+cu130 from
# PyPI, about 5 GB with its CUDA libraries; TORCH_SPEC overrides it), it builds the kernels and
# the CUDA op layer, checks that the module loads with a CUDA kernel for every op, and runs the
# test suite against that build (the tests that need a GPU skip). Extra arguments go to pytest.
# This is scripts/gpu_check.sh's build step, plus the CPU half of its tests step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v nvcc >/dev/null || { echo "cuda_build_check: no nvcc on PATH (install the CUDA toolkit)" >&2; exit 1; }
# Its own venv and build folder: the CPU build's .venv and build/ stay as they are.
export VENV=.venv-cuda TORCH_SPEC=${TORCH_SPEC:-torch==2.11.0} SKBUILD_BUILD_DIR="build/cuda-{wheel_tag}"
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
