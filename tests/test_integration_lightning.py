"""dynbatch_ext.integrations.lightning: Lightning on budgeted steps, exact in float64, alone and on
2 ranks, resumed bitwise from a mid-epoch checkpoint, and the errors a user meets."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from two_ranks import run_two_ranks

from lightning_cases import (  # noqa: E402  (skips the module where lightning is absent)
    L, Classifier, big_batch_gradients, data_module, pad, ragged_samples, trainer,
)
from dynbatch_ext import BucketBatchSampler
from dynbatch_ext.integrations.lightning import BudgetDataModule
from dynbatch_ext.integrations.step_loader import StepBatches, StepCollator, StepDataset


def test_a_step_equals_one_big_batch_and_every_sample_is_trained_once_per_epoch():
    samples = ragged_samples()
    model, data = Classifier(lr=0.0), data_module(samples)
    trainer().fit(model, data)
    per_epoch = len(model.steps) // 2
    for epoch in range(2):
        steps = model.steps[epoch * per_epoch:(epoch + 1) * per_epoch]
        assert sorted(i for step in steps for mb in step for i in mb) == list(range(len(samples)))
        data.sampler.set_epoch(epoch)  # the epoch's order is the sampler's for that epoch
        assert steps == [[mb.tolist() for mb in step] for step in data.sampler.steps()]
    assert model.steps[:per_epoch] != model.steps[per_epoch:]  # a new order each epoch
    several = [s for s, step in enumerate(model.steps) if len(step) > 1]
    assert several
    for s in several[:3]:
        expected = big_batch_gradients(samples, [i for mb in model.steps[s] for i in mb])
        for name, want in expected.items():
            torch.testing.assert_close(model.gradients[s][name], want, rtol=1e-10, atol=1e-12)


def test_two_ranks_through_torchrun_every_sample_once_and_exact(tmp_path):
    ranks = run_two_ranks("lightning_ddp.py", tmp_path)
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == len(ranks[0]["steps"]) == len(ranks[1]["steps"])
    per_epoch = len(ranks[0]["steps"]) // 2
    for epoch in range(2):
        steps = [rank["steps"][epoch * per_epoch:(epoch + 1) * per_epoch] for rank in ranks]
        assert [len(s) for s in steps[0]] == [len(s) for s in steps[1]]
        assert sorted(i for rank in steps for step in rank for mb in step for i in mb) == list(range(150))
    assert max(rank["worst_gradient_error"] for rank in ranks) < 1e-10
    # One gradient all-reduce per optimizer step (one bucket: a tiny model), not per micro-batch.
    for rank in ranks:
        assert rank["all_reduces"] == rank["global_step"] < rank["micro_batches"]
    # Resumed in the middle of the third epoch: the remaining steps, and the same weights.
    for rank in ranks:
        assert rank["resumed_steps"] == rank["whole_steps"][rank["resumed_at"]:]
        assert rank["resumed_same_weights"]
    per_epoch = len(ranks[0]["whole_steps"]) // 3
    for epoch in range(3):
        ids = [i for rank in ranks for step in rank["whole_steps"][epoch * per_epoch:(epoch + 1) * per_epoch]
               for mb in step for i in mb]  # fmt: skip
        assert sorted(ids) == list(range(150))


def test_resume_from_a_mid_epoch_checkpoint_reaches_the_same_weights_bitwise(tmp_path):
    samples = ragged_samples()
    whole = Classifier()
    trainer().fit(whole, data_module(samples))
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=7, save_top_k=-1)
    parted = Classifier()
    trainer(max_steps=7, enable_checkpointing=True, callbacks=[checkpoints]).fit(parted, data_module(samples))
    saved = sorted(tmp_path.glob("*.ckpt"))
    assert saved, "no checkpoint at step 7"
    resumed = Classifier()
    trainer().fit(resumed, data_module(samples), ckpt_path=str(saved[-1]))
    assert parted.steps + resumed.steps == whole.steps  # exactly the steps not yet trained
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    other = data_module(samples, budget=200)  # a checkpoint of another plan is refused
    with pytest.raises(ValueError, match="resuming under other settings"):
        trainer().fit(Classifier(), other, ckpt_path=str(saved[-1]))


def test_budgeted_steps_train_what_a_plain_loop_trains_on_the_same_micro_batches():
    """In float64 without dropout, Lightning's manual steps (AdamW, a linear schedule, clipping at
    1.0) end on the weights of a plain loop over the same micro-batches."""
    from dynbatch_ext import micro_batch_weights

    class Scheduled(Classifier):
        gradient_clip_val = 1.0

        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.parameters(), lr=0.01, weight_decay=0.0)
            total = self.trainer.estimated_stepping_batches
            return [optimizer], [torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: max(0.0, 1 - k / total))]

    samples = ragged_samples()
    module = Scheduled()
    trainer(max_epochs=2).fit(module, data_module(samples, composition="pooled", pool_steps=4))
    model = Classifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: max(0.0, 1 - k / len(module.steps)))
    for step in module.steps:
        for mb, weight in zip(step, micro_batch_weights([len(mb) for mb in step])):
            (model.loss_of(pad([samples[i] for i in mb])) * weight).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    assert any(len(step) > 1 for step in module.steps)
    for (name, a), (_, b) in zip(module.state_dict().items(), model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9, msg=name)


def _every_epoch_trains_every_sample_once_in_a_new_order(steps, epochs, n):
    per_epoch = len(steps) // epochs
    epochs_steps = [steps[e * per_epoch:(e + 1) * per_epoch] for e in range(epochs)]
    for epoch in epochs_steps:
        assert sorted(i for step in epoch for mb in step for i in mb) == list(range(n))
    assert all(a != b for a, b in zip(epochs_steps, epochs_steps[1:]))


def test_three_epochs_resumed_from_any_step_train_the_uninterrupted_steps_bitwise(tmp_path):
    """Resume as a property: from a checkpoint after any step of any epoch (boundaries included),
    the rest trains the uninterrupted run's steps and ends on its weights bit for bit, with dropout
    on (BudgetedSteps restores the RNG)."""
    samples = ragged_samples()
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_top_k=-1,
                                                      filename="{step}")  # fmt: skip
    whole = Classifier(dropout=0.2)
    trainer(max_epochs=3, enable_checkpointing=True, callbacks=[checkpoints]).fit(whole, data_module(samples))
    per_epoch = len(whole.steps) // 3
    _every_epoch_trains_every_sample_once_in_a_new_order(whole.steps, 3, len(samples))
    boundaries = [1, per_epoch - 1, per_epoch, per_epoch + 1, 2 * per_epoch, 3 * per_epoch - 1]
    others = sorted(set(range(2, 3 * per_epoch - 1)) - set(boundaries))
    points = sorted(set(boundaries) | set(np.random.default_rng(0).choice(others, 5, replace=False).tolist()))
    assert len(points) >= 10
    for point in points:
        resumed = Classifier(dropout=0.2)
        trainer(max_epochs=3).fit(resumed, data_module(samples), ckpt_path=str(tmp_path / f"step={point}.ckpt"))
        assert resumed.steps == whole.steps[point:], f"resumed after step {point}"
        for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
            assert torch.equal(a, b), (point, name)


def test_a_mid_epoch_checkpoint_without_this_loaders_position_is_refused(tmp_path):
    samples = ragged_samples()
    module = data_module(samples)

    class PlainLoader(L.LightningDataModule):  # another DataModule: its loader keeps no position
        def train_dataloader(self):
            module.sampler = BucketBatchSampler(module.lengths, 120, cost="tokens", step_target=12)
            return torch.utils.data.DataLoader(StepDataset(samples), batch_sampler=StepBatches(module.sampler),
                                               collate_fn=StepCollator(pad))  # fmt: skip

    checkpoints = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=5, save_top_k=-1)
    trainer(max_steps=5, enable_checkpointing=True, callbacks=[checkpoints]).fit(Classifier(), PlainLoader())
    saved = next(tmp_path.glob("*.ckpt"))
    with pytest.raises(ValueError, match="resumes epoch 0 after 5 steps, but its checkpoint holds no position"):
        trainer().fit(Classifier(), data_module(samples), ckpt_path=str(saved))


def test_stale_lengths_and_an_unreadable_micro_batch_are_named():
    samples = ragged_samples()
    lengths = [max(1, len(s["input_ids"]) - 12) for s in samples]
    stale = BudgetDataModule(samples, lengths, 120, cost="tokens", step_target=12, collate_fn=pad)
    with pytest.raises(ValueError, match=r"longer than the \d+ its samples have in the plan \(sample \d+: "):
        trainer().fit(Classifier(), stale)
    unkeyed = data_module(samples, padded_length="tokens")
    with pytest.raises(ValueError, match="by its 'tokens' entry, which this micro-batch does not have"):
        trainer().fit(Classifier(), unkeyed)
    trainer(max_steps=2).fit(Classifier(), data_module(samples, padded_length=None))  # the check left out


def test_lightnings_distributed_sampler_is_refused_under_ddp():
    data = data_module(ragged_samples())
    data.trainer = types.SimpleNamespace(world_size=2, global_rank=0, current_epoch=0,
                                         _accelerator_connector=types.SimpleNamespace(use_distributed_sampler=True))  # fmt: skip
    with pytest.raises(ValueError, match="use_distributed_sampler=False"):
        data.train_dataloader()


@pytest.mark.parametrize("options, message", [
    ({"step_target": "20"}, "target must be a number, got '20'"),
    ({"step_target": float("nan")}, "target must be a positive finite number, got nan"),
    ({"step_target": 4, "step_unit": "rows"}, "unit must be one of"),
    ({"max_micro_batches": 0}, "max_micro_batches must be at least 1"),
    ({"budget": -1}, "budget must be a positive finite number"),
    ({"oversize": "drop"}, "oversize must be"),
    ({"num_replicas": 2}, "num_replicas comes from the Trainer's world_size"),
])
def test_bad_options_are_refused_when_the_data_module_is_made(options, message):
    with pytest.raises(ValueError, match=message):
        data_module(ragged_samples(), **options)


def test_a_tampered_loader_state_is_one_clear_error():
    data = data_module(ragged_samples())
    trainer(max_steps=1).fit(Classifier(), data)
    loader = data.train_dataloader()
    for bad in ({"steps_done": 3}, [1, 2], {"sampler": {"epoch": 0}, "steps_done": 1}):
        with pytest.raises(ValueError, match="not a saved state of budgeted steps|sampler state lacks"):
            loader.load_state_dict(bad)
