"""Run under torchrun (2 ranks, CPU) by tests/test_integration_hf.py: a BudgetTrainer made with
TrainingArguments that lack use_cpu=True, which transformers then runs as one single-process job
per rank. Writes, per rank, the error BudgetTrainer raised (or none)."""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hf_cases import ragged_dataset, tiny_bert, transformers  # noqa: E402
from dynbatch_ext.integrations.hf import BudgetTrainer  # noqa: E402

out = Path(sys.argv[1])
arguments = transformers.TrainingArguments(str(out / "run"), report_to=[], num_train_epochs=1)
try:
    BudgetTrainer(model=tiny_bert(), args=arguments, train_dataset=ragged_dataset(), budget=200,
                  cost="tokens", step_target=12)
    error = None
except ValueError as raised:
    error = str(raised)
(out / f"rank{os.environ['RANK']}.json").write_text(json.dumps({"error": error, "world_size": arguments.world_size}))
