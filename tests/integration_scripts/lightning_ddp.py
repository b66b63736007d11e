"""Run under torchrun (2 ranks, gloo, CPU) by tests/test_integration_lightning.py: Lightning's DDP
on BudgetDataModule's steps. Writes, per rank: the steps it trained; its gradient error at the
first step of several micro-batches against one big batch of all ranks' samples of that step;
how many gradient all-reduces ran; and, from a checkpoint in the middle of the third epoch, the
steps a resumed run trained and whether its weights equal the uninterrupted run's."""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lightning_cases import Classifier, big_batch_gradients, data_module, ragged_samples, trainer  # noqa: E402

out = Path(sys.argv[1])
samples = ragged_samples(n=150)
all_reduces = [0]


class CountAllReduces(Callback):
    """Counts DDP's gradient all-reduces (Lightning registers comm hooks on CUDA only)."""

    def on_train_start(self, trainer, pl_module):
        def counting(state, bucket):
            all_reduces[0] += 1
            return default_hooks.allreduce_hook(state, bucket)

        trainer.strategy.model.register_comm_hook(None, counting)


model = Classifier(lr=0.0)  # every step's gradient at the initial weights, as the reference's
run = trainer(strategy="ddp", devices=2, num_nodes=1, callbacks=[CountAllReduces()])
run.fit(model, data_module(samples, step_target=40))
step = next(s for s, micro_batches in enumerate(model.steps) if len(micro_batches) > 1)
everyone = [None] * dist.get_world_size()
dist.all_gather_object(everyone, [i for micro_batch in model.steps[step] for i in micro_batch])
expected = big_batch_gradients(samples, [i for ids in everyone for i in ids])
worst = max((model.gradients[step][n] - expected[n]).abs().max().item() for n in expected)
micro_batches = sum(len(s) for s in model.steps)

# Three epochs with dropout, a checkpoint after every step; then a resume in the third epoch.
checkpoints = ModelCheckpoint(dirpath=out / "checkpoints", every_n_train_steps=1, save_top_k=-1, filename="{step}")
whole = Classifier(dropout=0.2)
trainer(strategy="ddp", devices=2, num_nodes=1, max_epochs=3, enable_checkpointing=True,
        callbacks=[checkpoints]).fit(whole, data_module(samples, step_target=40))
per_epoch = len(whole.steps) // 3
point = 2 * per_epoch + per_epoch // 2
resumed = Classifier(dropout=0.2)
trainer(strategy="ddp", devices=2, num_nodes=1, max_epochs=3).fit(
    resumed, data_module(samples, step_target=40), ckpt_path=str(out / "checkpoints" / f"step={point}.ckpt"))
same_weights = all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
(out / f"rank{dist.get_rank()}.json").write_text(json.dumps({
    "steps": model.steps, "global_step": run.global_step, "worst_gradient_error": worst,
    "all_reduces": all_reduces[0], "micro_batches": micro_batches,
    "whole_steps": whole.steps, "resumed_at": point, "resumed_steps": resumed.steps,
    "resumed_same_weights": same_weights}))
dist.barrier()
dist.destroy_process_group()  # after the barrier: gloo aborts a rank whose peer is still running
