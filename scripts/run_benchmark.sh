#!/usr/bin/env bash
# Sets up .venv, builds dynbatch_ext, and runs the main job: the benchmark on its built-in data.
# Extra arguments go to `python -m dynbatch_ext bench` (try --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup_env.sh
python -m dynbatch_ext bench "$@"
