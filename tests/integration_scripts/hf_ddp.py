"""Run under torchrun (2 ranks, gloo, CPU) by tests/test_integration_hf.py: trains a BudgetTrainer
through the Trainer's own launch and writes, per rank, the steps it trained, its gradients at the
first step and the big-batch gradients of all ranks' first-step samples; then three epochs with
dropout and a checkpoint after every step, resumed in the middle of the third epoch: the steps
the resumed run trained and whether its weights equal the uninterrupted run's."""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hf_cases import (  # noqa: E402
    GradientsPerStep, big_batch_gradients, ragged_dataset, record_steps, record_trained, tiny_bert, trainer,
)

out = Path(sys.argv[1])
seen = record_steps()
model, dataset = tiny_bert(), ragged_dataset(n=150)
gradients = GradientsPerStep()
# learning_rate 0: every step's gradient is taken at the initial weights, as the reference's.
run = trainer(out, model=model, dataset=dataset, ddp_backend="gloo", learning_rate=0.0, step_target=40,
              ddp_find_unused_parameters=False)
run.add_callback(gradients)
run.train()
rank, world = dist.get_rank(), dist.get_world_size()
step = next(s for s, micro_batches in enumerate(seen) if len(micro_batches) > 1)  # the same on both ranks
samples = [None] * world
dist.all_gather_object(samples, [i for micro_batch in seen[step] for i in micro_batch])
expected = big_batch_gradients(tiny_bert(), dataset, [i for rank_samples in samples for i in rank_samples])
worst = max((gradients.gradients[step][n] - expected[n]).abs().max().item() for n in expected)

trained = record_trained()
settings = dict(dataset=dataset, ddp_backend="gloo", step_target=40, ddp_find_unused_parameters=False,
                num_train_epochs=3, composition="random")
whole = trainer(out / "three", model=tiny_bert(dropout=0.1), save_strategy="steps", save_steps=1, **settings)
whole.train()
whole_steps, per_epoch = list(trained), len(whole.budget_sampler.micro_batches_per_step())
point = 2 * per_epoch + per_epoch // 2
trained.clear()
resumed = trainer(out / "three", model=tiny_bert(dropout=0.1), **settings)
resumed.train(resume_from_checkpoint=str(out / "three" / f"checkpoint-{point}"))
same = all(torch.equal(a, b) for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()))
(out / f"rank{rank}.json").write_text(json.dumps({
    "steps": seen, "steps_per_epoch": len(run.budget_sampler.micro_batches_per_step()), "worst_gradient_error": worst,
    "global_step": run.state.global_step, "whole_steps": whole_steps, "resumed_at": point,
    "resumed_steps": list(trained), "resumed_same_weights": same}))
dist.barrier()
dist.destroy_process_group()  # after the barrier: gloo aborts a rank whose peer is still running
