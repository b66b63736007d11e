#!/usr/bin/env bash
# Creates .venv (once; $VENV if set) with torch and the build tools, then builds and installs
# dynbatch_ext into it. Idempotent: a second run reuses the venv and rebuilds incrementally
# (build/).
# Source it (`. scripts/setup_env.sh`) to keep the venv active.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# torch==2.13.0 is pinned: a looser requirement on a machine without torch pulls a multi-GB
# CUDA build. Override with TORCH_SPEC (e.g. TORCH_SPEC=torch to keep what a GPU machine has).
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}  # another folder keeps another torch apart (scripts/cuda_build_check.sh)

pip_install() {
  # This workplace's pip config names an extra index that may be absent; hide that one warning.
  python -m pip install --disable-pip-version-check -q "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
pip_install "$TORCH_SPEC" "scikit-build-core>=0.10" "pybind11>=2.12" ninja
# No build isolation: compile against the torch just installed (see pyproject.toml).
pip_install --no-build-isolation ".[test,plot,hf,lightning]"
# torchdata's StatefulDataLoader, which the stream tests resume under; --no-deps: it pins an
# older torch.
pip_install --no-deps "torchdata==0.11.0"
python -c "import dynbatch_ext, torch; print(f'dynbatch_ext {dynbatch_ext.__version__} built (torch {torch.__version__}, CUDA kernels: {dynbatch_ext.with_cuda()})')"
