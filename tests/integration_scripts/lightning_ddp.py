"""Run under torchrun (2 ranks, gloo, CPU) by tests/test_integration_lightning.py: Lightning's DDP
on BudgetDataModule's steps; writes, per rank, the steps it trained and its gradient error at the
first step of several micro-batches against one big batch of all ranks' samples of that step."""
import json
import sys
from pathlib import Path

import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lightning_cases import Classifier, big_batch_gradients, data_module, ragged_samples, trainer  # noqa: E402

out = Path(sys.argv[1])
samples = ragged_samples(n=150)
model = Classifier(lr=0.0)  # every step's gradient at the initial weights, as the reference's
run = trainer(strategy="ddp", devices=2, num_nodes=1)
run.fit(model, data_module(samples, step_target=40))
step = next(s for s, micro_batches in enumerate(model.steps) if len(micro_batches) > 1)
everyone = [None] * dist.get_world_size()
dist.all_gather_object(everyone, [i for micro_batch in model.steps[step] for i in micro_batch])
expected = big_batch_gradients(samples, [i for ids in everyone for i in ids])
worst = max((model.gradients[step][n] - expected[n]).abs().max().item() for n in expected)
(out / f"rank{dist.get_rank()}.json").write_text(json.dumps(
    {"steps": model.steps, "global_step": run.global_step, "worst_gradient_error": worst}))
dist.barrier()
