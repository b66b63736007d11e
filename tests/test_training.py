"""train-esim: resume to the same weights, the metrics log, checks, and the data pieces."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from dynbatch_ext.corpora import PairData
from dynbatch_ext.training import (
    EncodedPairs, FixedBatchSampler, TrainConfig, UnsupportedAutocast, Vocabulary, synthetic_pairs,
    train,
)  # fmt: skip
from dynbatch_ext.training.data import load_pairs
from dynbatch_ext.training.metrics import read_log
from dynbatch_ext.training.precision import autocast_problem

TINY = dict(synthetic_size=240, embedding_dim=8, hidden_size=8, dropout=0.3, progress=False,
            budget=256.0, step_target=16.0)  # fmt: skip


def final_weights(out_dir) -> dict:
    return torch.load(out_dir / "checkpoint.pt", weights_only=False)["model"]


@pytest.mark.parametrize("stop_at", [5, 12])  # mid-epoch 1, and mid-epoch 2
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path, stop_at):
    whole = train(TrainConfig(out_dir=str(tmp_path / "whole"), epochs=2, **TINY))
    assert whole.finished and whole.steps > stop_at
    parted = tmp_path / "parted"
    first = train(TrainConfig(out_dir=str(parted), epochs=2, max_steps=stop_at, **TINY))
    assert not first.finished and first.steps == stop_at
    second = train(TrainConfig(out_dir=str(parted), epochs=2, resume=True, **TINY))
    assert second.finished and second.steps == whole.steps
    expected, got = final_weights(tmp_path / "whole"), final_weights(parted)
    for name in expected:
        assert torch.equal(expected[name], got[name]), name  # bitwise
    # The log reads as one run: every step once, in order, with the same losses.
    steps = [r for r in read_log(parted / "metrics.jsonl") if r["kind"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, whole.steps + 1))
    losses = [r["loss"] for r in whole.history if r["kind"] == "step"]
    assert [r["loss"] for r in steps] == losses
    assert (parted / "training.png").stat().st_size > 10_000


@pytest.mark.parametrize("composition", ["sorted", "pooled"])
def test_three_epochs_resumed_from_any_step_train_the_uninterrupted_steps_bitwise(tmp_path, composition):
    """Resume as a property: stopped after any step of any epoch (boundaries included) and
    resumed, the run trains the uninterrupted run's steps (the same samples, the same losses) and
    ends on its weights bit for bit; every epoch trains every sample once, in a new order."""
    settings = dict(TINY, epochs=3, plot=False, log_sample_ids=True, composition=composition)
    whole = train(TrainConfig(out_dir=str(tmp_path / "whole"), **settings))
    per_epoch = whole.steps // 3
    epochs = [json.loads(line) for line in (tmp_path / "whole" / "samples-rank0.jsonl").read_text().splitlines()]
    assert all(sorted(e["ids"]) == list(range(192)) for e in epochs)  # 80% of 240, each once
    assert epochs[0]["ids"] != epochs[1]["ids"] != epochs[2]["ids"]
    losses = [r["loss"] for r in whole.history if r["kind"] == "step"]
    boundaries = [1, per_epoch - 1, per_epoch, per_epoch + 1, 2 * per_epoch, 3 * per_epoch - 1]
    others = sorted(set(range(2, 3 * per_epoch - 1)) - set(boundaries))
    points = sorted(set(boundaries) | set(np.random.default_rng(0).choice(others, 4, replace=False).tolist()))
    assert len(points) >= 10
    for point in points:
        parted = tmp_path / f"stop{point}"
        train(TrainConfig(out_dir=str(parted), max_steps=point, **settings))
        resumed = train(TrainConfig(out_dir=str(parted), resume=True, **settings))
        assert resumed.finished and resumed.steps == whole.steps
        steps = [r for r in read_log(parted / "metrics.jsonl") if r["kind"] == "step"]
        assert [r["loss"] for r in steps] == losses, point
        logged = [json.loads(line) for line in (parted / "samples-rank0.jsonl").read_text().splitlines()]
        assert [e["ids"] for e in logged if e["epoch"] >= point // per_epoch] == \
            [e["ids"] for e in epochs[point // per_epoch:]], point  # fmt: skip
        expected, got = final_weights(tmp_path / "whole"), final_weights(parted)
        for name in expected:
            assert torch.equal(expected[name], got[name]), (point, name)


def test_metrics_log_holds_steps_epochs_and_effective_batch(tmp_path):
    result = train(TrainConfig(out_dir=str(tmp_path), epochs=2, **TINY))
    records = read_log(tmp_path / "metrics.jsonl")
    assert records[0]["kind"] == "run" and records[0]["config"]["step_target"] == 16.0
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1]
    assert all(0 <= r["valid_accuracy"] <= 1 for r in epochs)
    steps = [r for r in records if r["kind"] == "step"]
    assert sum(r["samples"] for r in steps) == 2 * 192  # 80% of 240, twice
    assert all(np.isfinite(r["loss"]) for r in steps)
    train_pairs = load_pairs(TrainConfig(**TINY))[0]
    assert sum(r["tokens"] for r in steps) == 2 * int(train_pairs.token_lengths().sum())
    assert all(r["tokens"] <= r["padded_tokens"] for r in steps)
    assert result.valid_accuracy == epochs[-1]["valid_accuracy"]


def test_resume_refuses_other_settings_and_a_fresh_run_refuses_an_old_folder(tmp_path):
    train(TrainConfig(out_dir=str(tmp_path), epochs=1, max_steps=2, **TINY))
    with pytest.raises(ValueError, match="already holds a run"):
        train(TrainConfig(out_dir=str(tmp_path), epochs=1, **TINY))
    changed = {**TINY, "budget": 512.0}
    with pytest.raises(ValueError, match="budget: checkpoint 256.0, now 512.0"):
        train(TrainConfig(out_dir=str(tmp_path), epochs=1, resume=True, **changed))
    with pytest.raises(ValueError, match="no checkpoint"):
        train(TrainConfig(out_dir=str(tmp_path / "none"), resume=True, **TINY))


def test_memory_limit_calibrates_the_budget_and_resume_keeps_it(tmp_path):
    options = {**TINY, "memory_limit": 48 * 2**20, "epochs": 2}
    whole = train(TrainConfig(out_dir=str(tmp_path / "whole"), **options))
    run = whole.history[0]
    assert run["kind"] == "run" and run["calibration"]["memory_limit"] == 48 * 2**20
    # Fitted where it matters: at the budget's own batches, within 2% of the limit (on the small
    # probes, which are far below the limit, the refitted model may miss by more).
    assert run["calibration"]["budget"] > 0 and run["calibration"]["verification_error"] <= 0.02
    parted = tmp_path / "parted"
    train(TrainConfig(out_dir=str(parted), max_steps=7, **options))
    train(TrainConfig(out_dir=str(parted), resume=True, **options))
    expected, got = final_weights(tmp_path / "whole"), final_weights(parted)
    for name in expected:  # calibrating put the weights and RNG back: the same run
        assert torch.equal(expected[name], got[name]), name


def test_a_memory_limit_below_the_model_is_one_line(tmp_path):
    done = run_cli("--memory-limit", "64KiB", "--synthetic-size", "200", "--embedding-dim", "8",
                   "--hidden-size", "8", "--out", str(tmp_path / "run"), "--no-progress")  # fmt: skip
    assert done.returncode == 2
    (line,) = [l for l in done.stderr.splitlines() if l.startswith("error")]
    assert "leaves nothing for batches" in line and "raise the limit" in line


@pytest.mark.parametrize(
    "options",
    [dict(batching="fixed", step_target=None, fused=False, lstm="padded"),
     dict(step_target=None), dict(step_unit="tokens", step_target=150.0), dict(lstm="packed")],
)  # fmt: skip
def test_every_configuration_of_the_benchmark_trains(tmp_path, options):
    result = train(TrainConfig(out_dir=str(tmp_path), epochs=1, **{**TINY, **options}))
    steps = [r for r in result.history if r["kind"] == "step"]
    assert result.finished and sum(r["samples"] for r in steps) == 192
    if options.get("step_target", 16.0) is None:
        assert all(r["micro_batches"] == 1 for r in steps)


def test_a_diverging_run_stops_with_a_clear_error_not_nan(tmp_path, monkeypatch):
    from dynbatch_ext.training import loop

    class Diverging(loop.ESIM):  # the logits blow up on the third forward pass
        calls = 0

        def forward(self, *inputs):
            Diverging.calls += 1
            logits = super().forward(*inputs)
            return logits * float("nan") if Diverging.calls >= 3 else logits

    monkeypatch.setattr(loop, "ESIM", Diverging)
    with pytest.raises(FloatingPointError, match=r"loss became nan at step \d+ .*Lower --lr"):
        train(TrainConfig(out_dir=str(tmp_path), epochs=1, **TINY))


@pytest.mark.parametrize(
    "change, message",
    [(dict(batching="sorted"), "batching must be"), (dict(budget=0), "budget must be > 0"),
     (dict(step_target=-1), "step_target must be > 0"), (dict(lstm="x"), "lstm must be"),
     (dict(valid_fraction=1.0), "valid_fraction"), (dict(batching="fixed", step_target=64.0), "leave step_target"),
     (dict(autocast="bf16"), "autocast must be one of"), (dict(autocast="float16"), "use bfloat16")],
)  # fmt: skip
def test_bad_settings_raise_value_error(change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**change)


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dynbatch_ext", "train-esim", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)  # fmt: skip


def test_cli_bad_data_file_is_one_line(tmp_path):
    done = run_cli("--train", str(tmp_path / "missing.tsv"), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.tsv'}: no such file"]


def test_cli_trains_on_an_snli_format_file(tmp_path):
    data = synthetic_pairs(200, seed=3)
    path = tmp_path / "pairs.tsv"
    rows = ["premise\thypothesis\tlabel"]
    rows += [f"{p}\t{h}\t{l}" for p, h, l in zip(data.premises, data.hypotheses, data.labels)]
    path.write_text("\n".join(rows) + "\n")
    done = run_cli("--train", str(path), "--epochs", "1", "--embedding-dim", "8",
                   "--hidden-size", "8", "--out", str(tmp_path / "run"), "--no-progress")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "finished after" in done.stdout and "validation accuracy" in done.stdout
    assert {"metrics.jsonl", "training.png", "checkpoint.pt"} <= {p.name for p in (tmp_path / "run").iterdir()}


def test_torchrun_two_ranks_same_steps_every_sample_once(tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--standalone", "-m", "dynbatch_ext", "train-esim", "--synthetic-size", "300",
               "--embedding-dim", "8", "--hidden-size", "8", "--epochs", "2", "--budget", "256",
               "--out", str(out), "--no-progress", "--log-sample-ids"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [[json.loads(line) for line in (out / f"samples-rank{r}.jsonl").read_text().splitlines()]
             for r in range(2)]  # fmt: skip
    for epoch in range(2):
        zero, one = ranks[0][epoch], ranks[1][epoch]
        assert zero["epoch"] == one["epoch"] == epoch
        assert zero["steps"] == one["steps"]
        assert sorted(zero["ids"] + one["ids"]) == list(range(240))  # 80% of 300, each once
    steps = [r for r in read_log(out / "metrics.jsonl") if r["kind"] == "step"]
    assert sum(r["samples"] for r in steps) == 2 * 240  # logged totals cover both ranks


def test_vocabulary_and_encoding():
    vocab = Vocabulary.build(["The cat sat", "the dog"], min_count=1)
    assert vocab.tokens[:3] == ["<pad>", "<unk>", "the"]
    assert vocab.encode("THE bird").tolist() == [2, 1]
    assert vocab.encode("").tolist() == []
    with pytest.raises(ValueError, match="starts with"):
        Vocabulary(["a", "b"])


def test_encoded_pairs_collate_pads_and_checks_labels():
    data = PairData(["a b c", ""], ["a", "b b"], [0, 2])
    pairs = EncodedPairs(data, Vocabulary.build(data.premises + data.hypotheses), num_classes=3)
    batch = pairs.collate([1, 0])
    assert batch.premise.shape == (2, 3) and batch.premise_lengths.tolist() == [0, 3]
    assert batch.premise[0].tolist() == [0, 0, 0] and batch.labels.tolist() == [2, 0]
    with pytest.raises(ValueError, match="label 3"):
        EncodedPairs(PairData(["a"], ["a"], [3]), Vocabulary(["<pad>", "<unk>"]), num_classes=3)


def test_fixed_batch_sampler_covers_every_sample_and_resumes():
    sampler = FixedBatchSampler(100, 32, seed=1)
    batches = list(sampler)
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert sorted(sum(batches, [])) == list(range(100))
    resumed = FixedBatchSampler(100, 32, seed=1)
    resumed.load_state_dict(sampler.state_dict(batches_consumed=2))
    assert list(resumed) == batches[2:]
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_synthetic_task_is_balanced_and_labels_follow_the_rule():
    data = synthetic_pairs(600, seed=0)
    assert abs(np.bincount(data.labels, minlength=3) - 200).max() < 40
    for premise, hypothesis, label in zip(data.premises, data.hypotheses, data.labels):
        words, seen = hypothesis.split(), set(premise.split())
        negated = [words[i + 1] for i, w in enumerate(words) if w == "no"]
        plain = [w for i, w in enumerate(words) if w != "no" and (i == 0 or words[i - 1] != "no")]
        if label == 0:
            assert not negated and set(plain) <= seen
        elif label == 2:
            assert set(plain) <= seen and any(w in seen for w in negated)


@pytest.mark.parametrize("text, value", [("512MiB", 512 * 2**20), ("2GiB", 2 * 2**30),
                                         ("1.5GB", 1.5e9), ("300000", 3e5), ("64kib", 65536)])  # fmt: skip
def test_memory_limit_parses_units(text, value):
    from dynbatch_ext.training.memory_limit import parse_bytes

    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["lots", "12XB", "-5MiB", "0"])
def test_memory_limit_rejects_nonsense(text):
    from dynbatch_ext.training.memory_limit import parse_bytes

    with pytest.raises(ValueError, match="--memory-limit"):
        parse_bytes(text)


def test_an_autocast_the_cpu_cannot_run_is_refused_before_training(tmp_path, monkeypatch):
    # What oneDNN says on a CPU without AVX-512-BF16 or AMX, made to happen on any CPU.
    def no_bfloat16_lstm(self, *args, **kwargs):
        if torch.is_autocast_enabled("cpu"):
            raise RuntimeError("could not create a primitive descriptor for the LSTM forward "
                               "propagation primitive. Run workload with ONEDNN_VERBOSE=all")  # fmt: skip
        return original(self, *args, **kwargs)

    original = torch.nn.LSTM.forward
    monkeypatch.setattr(torch.nn.LSTM, "forward", no_bfloat16_lstm)
    with pytest.raises(UnsupportedAutocast, match="LSTM cannot run in bfloat16 on this cpu .*"
                                                  "AVX-512-BF16 or AMX. Train in float32"):  # fmt: skip
        train(TrainConfig(out_dir=str(tmp_path), epochs=1, autocast="bfloat16", **TINY))
    assert not (tmp_path / "metrics.jsonl").exists()  # refused before a step was taken


def test_training_under_bfloat16_autocast(tmp_path):
    problem = autocast_problem("bfloat16", torch.device("cpu"))
    if problem is not None:  # this CPU has no bfloat16 LSTM: the run is refused, by name
        with pytest.raises(UnsupportedAutocast, match="AVX-512-BF16"):
            train(TrainConfig(out_dir=str(tmp_path), epochs=1, autocast="bfloat16", **TINY))
        pytest.skip(problem)
    result = train(TrainConfig(out_dir=str(tmp_path), epochs=1, autocast="bfloat16", **TINY))
    steps = [r for r in result.history if r["kind"] == "step"]
    assert result.finished and steps and all(np.isfinite(r["loss"]) for r in steps)
    assert 0 <= result.valid_accuracy <= 1
    weights = final_weights(tmp_path)
    assert all(w.dtype == torch.float32 for w in weights.values() if w.is_floating_point())
