"""dynbatch_ext.integrations.hf: the HF Trainer on budgeted steps, exact in float64, alone and on
2 ranks, resumed bitwise, and the errors a user meets."""
from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest
import torch
from two_ranks import run_two_ranks

from hf_cases import (  # noqa: E402  (skips the module where transformers is absent)
    GradientsPerStep, big_batch_gradients, datasets, pad_collate, ragged_dataset, record_steps,
    record_trained, tiny_bert, trainer, transformers,
)
from dynbatch_ext.batching.steps import epoch_order
from dynbatch_ext.integrations.hf import BudgetTrainer, _check_world, dataset_lengths
from torch.utils.data import BatchSampler


def test_dataset_lengths_reads_columns_of_singles_and_pairs():
    dataset = datasets.Dataset.from_dict({"length": [3, 1, 4], "premise_length": [5, 9, 2],
                                          "hypothesis_length": [6, 5, 3]}).select([2, 0, 1])  # fmt: skip
    np.testing.assert_array_equal(dataset_lengths(dataset), [4, 3, 1])  # after select, in its order
    pairs = dataset_lengths(dataset, ("premise_length", "hypothesis_length"))
    np.testing.assert_array_equal(pairs, [[2, 3], [5, 6], [9, 5]])
    row_by_row = datasets.Dataset.from_dict({"length": [[3], [1]]})  # a tokenizer mapped without batched=True
    np.testing.assert_array_equal(dataset_lengths(row_by_row), [3, 1])
    with pytest.raises(ValueError, match="no column 'n_tokens'.*return_length=True"):
        dataset_lengths(dataset, "n_tokens")
    with pytest.raises(TypeError, match="reads a datasets.Dataset"):
        dataset_lengths([{"length": 3}])


def test_a_step_equals_one_big_batch_in_float64(tmp_path, monkeypatch):
    seen = record_steps(monkeypatch)
    model, dataset = tiny_bert(), ragged_dataset()
    gradients = GradientsPerStep()
    # learning_rate 0: every step's gradient is taken at the initial weights, as the reference's.
    run = trainer(tmp_path, model=model, dataset=dataset, num_train_epochs=1, learning_rate=0.0)
    run.add_callback(gradients)
    run.train()
    several = [s for s, step in enumerate(seen) if len(step) > 1]
    assert several  # steps of several micro-batches, where the weights matter
    for s in several[:3]:
        expected = big_batch_gradients(tiny_bert(), dataset, [i for mb in seen[s] for i in mb])
        for name, want in expected.items():
            torch.testing.assert_close(gradients.gradients[s][name], want, rtol=1e-10, atol=1e-12)
    # Every sample once in the epoch, and as many optimizer steps as the sampler planned.
    assert sorted(i for step in seen for mb in step for i in mb) == list(range(len(dataset)))
    assert run.state.global_step == len(seen) == len(run.budget_sampler.micro_batches_per_step())
    lengths = np.asarray(dataset["length"])
    for step in seen:  # within budget: padded tokens of each micro-batch at most 200
        assert all(len(mb) * lengths[mb].max() <= 200 and len(mb) <= 12 for mb in step)


def test_two_ranks_through_torchrun_every_sample_once_and_exact(tmp_path):
    ranks = run_two_ranks("hf_ddp.py", tmp_path)
    per_epoch = ranks[0]["steps_per_epoch"]
    assert ranks[1]["steps_per_epoch"] == per_epoch and ranks[0]["global_step"] == 2 * per_epoch
    for epoch in range(2):
        steps = [rank["steps"][epoch * per_epoch:(epoch + 1) * per_epoch] for rank in ranks]
        # Equal micro-batches per step on both ranks; every sample once across them (no double split).
        assert [len(s) for s in steps[0]] == [len(s) for s in steps[1]]
        ids = [i for rank in steps for step in rank for mb in step for i in mb]
        assert sorted(ids) == list(range(150))
    assert max(rank["worst_gradient_error"] for rank in ranks) < 1e-10
    # Three epochs of random steps, resumed in the middle of the third: the remaining steps, the
    # same weights; each step, over both ranks, is the fixed-size random batch sampler's step.
    for rank in ranks:
        assert rank["resumed_steps"] == rank["whole_steps"][rank["resumed_at"]:]
        assert rank["resumed_same_weights"]
    per_epoch = len(ranks[0]["whole_steps"]) // 3
    for epoch in range(3):
        fixed = [sorted(b) for b in BatchSampler(epoch_order(150, epoch=epoch).tolist(), 40, drop_last=False)]
        steps = [sorted(i for rank in ranks for mb in rank["whole_steps"][epoch * per_epoch + s] for i in mb)
                 for s in range(per_epoch)]  # fmt: skip
        assert steps == fixed


def test_budget_trainer_trains_what_a_plain_loop_trains_on_the_same_micro_batches(tmp_path, monkeypatch):
    """Where a gap between the HF path and a plain loop could come from, ruled out: in float64
    with dropout off, the Trainer's AdamW, linear schedule and clipping at 1.0, reproduced in a
    loop over the same micro-batches, end on the same weights."""
    from dynbatch_ext import micro_batch_weights

    seen = record_steps(monkeypatch)
    dataset = ragged_dataset()
    run = trainer(tmp_path, model=tiny_bert(), dataset=dataset, num_train_epochs=2, optim="adamw_torch",
                  learning_rate=0.01, lr_scheduler_type="linear", max_grad_norm=1.0,
                  composition="random")  # fmt: skip
    run.train()
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: max(0.0, 1 - k / len(seen)))
    model.train()
    for step in seen:
        for mb, weight in zip(step, micro_batch_weights([len(mb) for mb in step])):
            (model(**pad_collate([dataset[int(i)] for i in mb])).loss * weight).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    assert len(seen) == run.state.global_step and any(len(step) > 1 for step in seen)
    for (name, a), (_, b) in zip(run.model.state_dict().items(), model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9, msg=name)


def _every_epoch_trains_every_sample_once_in_a_new_order(steps, per_epoch, epochs, n):
    epochs_steps = [steps[e * per_epoch:(e + 1) * per_epoch] for e in range(epochs)]
    for epoch in epochs_steps:
        assert sorted(i for step in epoch for mb in step for i in mb) == list(range(n))
    assert all(a != b for a, b in zip(epochs_steps, epochs_steps[1:]))


@pytest.mark.parametrize("composition", ["sorted", "random"])
def test_three_epochs_resumed_from_any_step_train_the_uninterrupted_steps_bitwise(tmp_path, monkeypatch,
                                                                                composition):  # fmt: skip
    """Resume as a property: from a checkpoint at any step of any epoch (boundaries included),
    the rest of the run trains the uninterrupted run's steps, step by step, and ends on its
    weights bit for bit (dropout on: the Trainer restores the RNG)."""
    trained = record_trained(monkeypatch)
    dataset = ragged_dataset()
    whole = trainer(tmp_path, model=tiny_bert(dropout=0.1), dataset=dataset, num_train_epochs=3,
                    save_strategy="steps", save_steps=1, composition=composition)  # fmt: skip
    whole.train()
    steps, per_epoch = list(trained), len(whole.budget_sampler.micro_batches_per_step())
    assert whole.state.global_step == len(steps) == 3 * per_epoch
    _every_epoch_trains_every_sample_once_in_a_new_order(steps, per_epoch, 3, len(dataset))
    boundaries = [1, per_epoch - 1, per_epoch, per_epoch + 1, 2 * per_epoch, 3 * per_epoch - 1]
    others = sorted(set(range(2, 3 * per_epoch - 1)) - set(boundaries))
    points = sorted(set(boundaries) | set(np.random.default_rng(0).choice(others, 5, replace=False).tolist()))
    assert len(points) >= 10
    for point in points:
        trained.clear()
        resumed = trainer(tmp_path, model=tiny_bert(dropout=0.1), dataset=dataset, num_train_epochs=3,
                          composition=composition)  # fmt: skip
        resumed.train(resume_from_checkpoint=str(tmp_path / f"checkpoint-{point}"))
        assert trained == steps[point:], f"resumed at step {point}"
        for (name, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
            assert torch.equal(a, b), (point, name)


def test_a_resume_under_other_settings_is_refused_naming_what_changed(tmp_path):
    dataset = ragged_dataset()
    run = trainer(tmp_path, dataset=dataset, num_train_epochs=2, save_strategy="steps", save_steps=13)
    run.train()
    checkpoint = str(tmp_path / "checkpoint-13")  # inside the second epoch
    grown = ragged_dataset(n=121)
    changed = ragged_dataset(seed=1)
    others = {
        "step_target: saved with 12.0, this one has 13.0": dict(step_target=13),
        "seed: saved with 0, this one has 1": dict(seed=1),
        "budget: saved with 200.0": dict(budget=300),
        "batch_overhead: saved with 0.15": dict(plan_options={"batch_overhead": 0.5}),
        "step_composition: saved with 'pooled'": dict(composition="random"),
        "num_samples: saved with 120, this one has 121": dict(dataset=grown),
        "lengths_sha256": dict(dataset=changed),
    }
    for message, change in others.items():
        other = trainer(tmp_path, **{"dataset": dataset, **change})
        with pytest.raises(ValueError, match=f"cannot resume from .*checkpoint-13.*{message}"):
            other.train(resume_from_checkpoint=checkpoint)
    (tmp_path / "checkpoint-13" / "budget_sampler.json").unlink()  # as a plain Trainer's checkpoint
    with pytest.raises(ValueError, match="holds no budget_sampler.json: it was not saved by a BudgetTrainer"):
        trainer(tmp_path, dataset=dataset).train(resume_from_checkpoint=checkpoint)


def test_stale_lengths_are_named_when_a_micro_batch_comes_out_longer_than_planned(tmp_path):
    dataset = ragged_dataset()
    stale = dataset.map(lambda row: {"length": max(1, row["length"] - 12)})
    with pytest.raises(ValueError, match=r"collated to length \d+, longer than the \d+ its samples "
                                         r"have in the plan \(sample \d+: \d+ tokens, \d+ in the plan"):
        trainer(tmp_path, dataset=stale).train()


def test_a_cpu_launch_without_use_cpu_is_refused_under_torchrun(tmp_path):
    # transformers runs each of the 2 processes as a single-process job (args.world_size 1): each
    # would train every sample with no gradient sync.
    for rank in run_two_ranks("hf_without_use_cpu.py", tmp_path):
        assert rank["world_size"] == 1
        assert "2 processes were launched" in rank["error"] and "use_cpu=True" in rank["error"]


def test_launches_the_trainer_does_not_see_and_drop_last_are_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="no batch left over to drop: set dataloader_drop_last=False"):
        trainer(tmp_path, dataloader_drop_last=True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"2 processes were launched .* see a world of 1.*use_cpu=True"):
        _check_world(types.SimpleNamespace(world_size=1))


def test_settings_that_would_break_the_steps_are_refused(tmp_path):
    with pytest.raises(ValueError, match="set gradient_accumulation_steps=1"):
        trainer(tmp_path, gradient_accumulation_steps=4)
    class PadsToEight:  # as DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8) does
        pad_to_multiple_of = 8

        def __call__(self, rows):
            return pad_collate(rows)

    with pytest.raises(ValueError, match="disagrees with the data collator's pad_to_multiple_of=8"):
        BudgetTrainer(model=tiny_bert(), args=transformers.TrainingArguments(str(tmp_path), use_cpu=True, report_to=[]),
                      train_dataset=ragged_dataset(), data_collator=PadsToEight(), budget=2000, step_target=12,
                      plan_options={"pad_multiple": 4})  # fmt: skip
    agreed = BudgetTrainer(model=tiny_bert(), args=transformers.TrainingArguments(str(tmp_path), use_cpu=True, report_to=[]),
                           train_dataset=ragged_dataset(), data_collator=PadsToEight(), budget=2000, step_target=12)
    agreed.get_train_dataloader()
    assert agreed.budget_sampler.options.pad_multiple == 8


@pytest.mark.parametrize("options, message", [
    ({"step_target": "20"}, "target must be a number, got '20'"),
    ({"step_target": float("inf")}, "target must be a positive finite number, got inf"),
    ({"budget": 0}, "budget must be a positive finite number"),
    ({"cost": "cubic"}, "cost must be one of .* got .cubic."),
    ({"plan_options": {"seed": 3}}, "seed comes from TrainingArguments.seed"),
    ({"plan_options": {"num_replicas": 2}}, "num_replicas comes from TrainingArguments.world_size"),
    ({"plan_options": {"batch_overhead": "high"}}, "batch_overhead must be a number"),
])
def test_bad_options_are_refused_when_the_trainer_is_made(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        trainer(tmp_path, **options)


def test_the_package_imports_no_framework_and_the_module_says_what_to_install(tmp_path):
    check = ("import sys\nimport dynbatch_ext\n"
             "assert not {'transformers', 'datasets', 'accelerate', 'lightning'} & set(sys.modules), sys.modules.keys()\n"
             "sys.modules['transformers'] = None\n"
             "try:\n    import dynbatch_ext.integrations.hf\nexcept ImportError as error:\n    print(error)\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pip install 'dynbatch_ext[hf]'" in done.stdout
