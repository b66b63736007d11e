#!/usr/bin/env bash
# Sets up .venv, builds dynbatch_ext, and runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup_env.sh
python -m pytest "$@"
