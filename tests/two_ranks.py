"""Runs a script of tests/integration_scripts under torchrun on 2 CPU ranks (gloo) and reads back
what each rank wrote (rank0.json, rank1.json in the folder it is given)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "integration_scripts"


def run_two_ranks(script: str, out_dir: Path, *arguments: str) -> list[dict]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(SCRIPTS / script), str(out_dir), *arguments]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(2)]
