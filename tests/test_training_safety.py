"""train-esim never resumes into a silently different run, and every damaged or wrong input is
one clear error naming the file (and line): checkpoints, metrics logs, training files, settings."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

from dynbatch_ext.training import TrainConfig, synthetic_pairs, train
from dynbatch_ext.training.metrics import read_log

TINY = dict(synthetic_size=240, embedding_dim=8, hidden_size=8, dropout=0.3, progress=False,
            budget=256.0, step_target=16.0, plot=False)  # fmt: skip


def write_pairs(path, data) -> None:
    rows = ["premise\thypothesis\tlabel"]
    rows += [f"{p}\t{h}\t{l}" for p, h, l in zip(data.premises, data.hypotheses, data.labels)]
    path.write_text("\n".join(rows) + "\n")


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dynbatch_ext", "train-esim", *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def one_error_line(done) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    return lines[0]


def test_resume_refuses_a_training_file_replaced_by_another_of_the_same_size(tmp_path):
    data = tmp_path / "pairs.tsv"
    write_pairs(data, synthetic_pairs(200, seed=1))
    options = dict(TINY, train_file=str(data), out_dir=str(tmp_path / "run"), epochs=1)
    train(TrainConfig(max_steps=3, **options))
    write_pairs(data, synthetic_pairs(200, seed=2))  # same count, other pairs
    with pytest.raises(ValueError, match="training pairs are not those the run .* started with"):
        train(TrainConfig(resume=True, **options))


def test_resume_with_max_steps_below_the_checkpoints_step_is_refused(tmp_path):
    train(TrainConfig(out_dir=str(tmp_path), epochs=1, max_steps=5, **TINY))
    with pytest.raises(ValueError, match="--max-steps 3: the run in .* is already at step 5"):
        train(TrainConfig(out_dir=str(tmp_path), epochs=1, max_steps=3, resume=True, **TINY))


def test_a_resumed_runs_sample_log_holds_the_ids_trained_before_the_stop(tmp_path):
    whole = tmp_path / "whole"
    train(TrainConfig(out_dir=str(whole), epochs=1, log_sample_ids=True, **TINY))
    parted = tmp_path / "parted"
    train(TrainConfig(out_dir=str(parted), epochs=1, log_sample_ids=True, max_steps=4, **TINY))
    train(TrainConfig(out_dir=str(parted), epochs=1, log_sample_ids=True, resume=True, **TINY))
    logs = [json.loads((folder / "samples-rank0.jsonl").read_text()) for folder in (whole, parted)]
    assert logs[1]["ids"] == logs[0]["ids"] and sorted(logs[1]["ids"]) == list(range(192))


def damage(path, how: str, tmp_path) -> None:
    content = path.read_bytes()
    if how == "truncated":
        path.write_bytes(content[: len(content) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "random":
        path.write_bytes(bytes(range(256)) * 64)
    elif how == "bit-flipped":  # in the middle of the largest tensor's bytes
        flipped = bytearray(content)
        flipped[int(len(flipped) * 0.6)] ^= 0x10
        path.write_bytes(bytes(flipped))
    elif how == "hand-edited":  # a weight changed, the file otherwise as saved
        payload = torch.load(path, weights_only=True)
        payload["model"]["classifier.1.bias"] += 1.0
        torch.save(payload, path)
    elif how == "not-a-checkpoint":
        torch.save({"hello": 1}, path)
    elif how == "runs-code":  # a pickle that would create a file when loaded without weights_only
        marker = tmp_path / "code-ran"

        class Exploit:
            def __reduce__(self):
                return (open, (str(marker), "w"))

        torch.save({"format_version": 2, "model": Exploit()}, path)


@pytest.mark.parametrize("how", ["truncated", "empty", "random", "bit-flipped", "hand-edited",
                                 "not-a-checkpoint", "runs-code"])  # fmt: skip
def test_a_damaged_checkpoint_is_one_line_naming_the_file(tmp_path, how):
    out = tmp_path / "run"
    common = ("--synthetic-size", "240", "--embedding-dim", "8", "--hidden-size", "8", "--budget",
              "256", "--step-target", "16", "--epochs", "1", "--out", str(out), "--no-progress",
              "--no-plot")  # fmt: skip
    assert run_cli(*common, "--max-steps", "3").returncode == 0
    damage(out / "checkpoint.pt", how, tmp_path)
    line = one_error_line(run_cli(*common, "--resume"))
    assert str(out / "checkpoint.pt") in line and "restore a good copy" in line, line
    assert not (tmp_path / "code-ran").exists()


def test_a_torn_metrics_log_resumes_and_a_damaged_one_is_named(tmp_path):
    train(TrainConfig(out_dir=str(tmp_path), epochs=1, max_steps=4, **TINY))
    log = tmp_path / "metrics.jsonl"
    with log.open("a") as handle:
        handle.write('{"kind": "step", "step": 5, "lo')  # killed while appending
    result = train(TrainConfig(out_dir=str(tmp_path), epochs=1, resume=True, **TINY))
    steps = [r["step"] for r in read_log(log) if r["kind"] == "step"]
    assert result.finished and steps == list(range(1, result.steps + 1))
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=f"{log}:2: not a metrics record"):
        read_log(log)


@pytest.mark.parametrize("args, message", [
    (("--step-target", "inf"), "step_target must be > 0 and finite"),
    (("--seed", "-1"), r"seed must be an integer in \[0, 2\*\*63\)"),
    (("--budget", "nan"), "budget must be > 0 and finite"),
])  # fmt: skip
def test_bad_settings_name_the_option(tmp_path, args, message):
    line = one_error_line(run_cli(*args, "--out", str(tmp_path / "run"), "--no-progress"))
    assert re.search(message, line), line


def test_fixed_batches_of_another_size_need_no_step_target(tmp_path):
    config = TrainConfig(batching="fixed", batch_size=64)
    assert config.step_target is None
    with pytest.raises(ValueError, match="leave step_target unset"):
        TrainConfig(batching="fixed", batch_size=64, step_target=64.0)
    assert TrainConfig().step_target == 32.0


@pytest.mark.parametrize("content, message", [
    ("premise\thypothesis\tlabel\nthe cat\ta cat\t1\ncaf\xe9\tx\t0\n".encode("latin-1"),
     r"pairs.tsv:3: not UTF-8, byte 0xe9 at column 4"),
    ("premise\thypothesis\tlabel\na\tb\t0\n".encode("utf-16"), r"pairs.tsv:1: not UTF-8 \(it looks like UTF-16\)"),
    (b"premise\thypothesis\tlabel\na\tb\t0_1\n", r"pairs.tsv:2: label '0_1' is not a non-negative integer"),
    (b"premise\thypothesis\tlabel\na\tb\t" + b"1" * 30 + b"\n", r"pairs.tsv:2: label '1111"),
    (b"x" * 10_000_000 + b"\n", r"pairs.tsv:1: expected a header .*\.\.\. \(10,000,000 characters\)"),
    (b"premise\thypothesis\tlabel\n" + b"w " * 100_000 + b"\tb\t0\n", r"pairs.tsv:2: a field of 200,000 characters"),
])  # fmt: skip
def test_a_bad_training_file_is_one_line_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    line = one_error_line(run_cli("--train", str(path), "--out", str(tmp_path / "run"), "--no-progress"))
    assert re.search(message, line), line
    assert len(line) < 400


def test_labels_out_of_range_are_refused_before_training(tmp_path):
    path = tmp_path / "pairs.tsv"
    data = synthetic_pairs(200, seed=1)
    data.labels[150] = 7
    write_pairs(path, data)
    line = one_error_line(run_cli("--train", str(path), "--out", str(tmp_path / "run"), "--no-progress"))
    assert "has label 7, outside [0, 3)" in line
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
