"""dynbatch_ext.integrations.accelerate under a real `accelerate launch` with 2 CPU processes:
prepare_loader trains every sample once per epoch with equal step counts; accelerator.prepare on
the loader is refused with a message naming prepare_loader (it lost 137 of 300 samples)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate")
SCRIPT = Path(__file__).resolve().parent / "integration_scripts" / "accelerate_loop.py"


def launch(tmp_path, mode: str) -> list[dict]:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", "0", str(SCRIPT), str(tmp_path), mode]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


def test_prepare_loader_trains_every_sample_once_per_epoch_on_two_processes(tmp_path):
    ranks = launch(tmp_path, "helper")
    for epoch in range(2):
        assert len(ranks[0]["epochs"][epoch]) == len(ranks[1]["epochs"][epoch])  # equal step counts
        ids = [i for rank in ranks for batch in rank["epochs"][epoch] for i in batch]
        assert sorted(ids) == list(range(300))
    assert ranks[0]["epochs"][0] != ranks[0]["epochs"][1]


def test_accelerator_prepare_on_the_loader_is_refused_naming_the_helper(tmp_path):
    for rank in launch(tmp_path, "prepare"):
        assert "prepare_loader(accelerator, loader)" in rank["error"]
