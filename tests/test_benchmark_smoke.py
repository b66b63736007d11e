"""The benchmark harness end to end in its tiny mode: every field present, plots written."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from dynbatch_ext.cli import main

STRATEGIES = {"budgeted (dynbatch_ext)", "fixed 32, random", "fixed 32, sorted in pools"}
TRAINING_RUNS = ("(a) fixed 32 + reference", "(b) budgeted steps of 32 + fused",
                 "(c) budgeted, a step per batch + fused", "(a) bfloat16 autocast",
                 "(b) bfloat16 autocast")  # fmt: skip
STATS = {"efficiency", "num_batches", "cost_max_over_median", "cost_max_over_min",
         "batches_over_budget", "real_tokens", "padded_tokens", "batch_size_max"}  # fmt: skip


def test_tiny_benchmark_writes_every_field(tmp_path, capsys):
    assert main(["bench", "--tiny", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    env = results["environment"]
    for key in ("date", "cpu", "cpu_cores", "python", "numpy", "torch", "dynbatch_ext", "device"):
        assert env[key] not in (None, ""), key
    planning = results["batching"]["planning"]
    assert planning["plan_seconds"] > 0 and planning["argsort_seconds"] > 0
    assert planning["plan_over_argsort"] == planning["plan_seconds"] / planning["argsort_seconds"]
    assert planning["target"]["met"] == (planning["plan_over_argsort"] <= 1.0)
    cases = results["batching"]["cases"]
    assert {"synthetic single texts", "synthetic pairs"} <= {c["case"] for c in cases}
    for case in cases:
        assert set(case["strategies"]) == STRATEGIES
        for summary in case["strategies"].values():
            assert STATS <= set(summary)
        ours = case["strategies"]["budgeted (dynbatch_ext)"]
        assert ours["batches_over_budget"] == 0 and ours["samples_repeated"] == 0
        for target in case["targets"].values():
            assert {"op", "value", "measured", "met"} <= set(target)
    ops = results["ops"]
    assert ops["device"] == "cpu" and ops["copy_bandwidth_bytes_per_second"] is None
    (section,) = ops["sections"]
    assert section["dtype"] == "torch.float32" and len(section["batches"]) >= 2
    for batch in section["batches"]:
        assert batch["traffic_bytes"] > 0
        assert set(batch["paths"]) == {"fused", "eager reference", "compiled reference", "SDPA pair"}
        for path in batch["paths"].values():
            assert path["seconds"] > 0 and path["peak_bytes"] > 0
            assert path["loss_relative_difference"] < 1e-4  # every path computes the same thing
        assert set(batch["speedup_of_fused"]) == {"eager reference", "compiled reference", "SDPA pair"}
    grid = ops["long_sequences"]  # the long-sequence grid, in the same section
    assert len(grid["points"]) == 2 and all(p["batch"] * p["max_len"] ** 2 <= grid["budget"] for p in grid["points"])
    assert "long_sequences.png" in ops["plots"]
    training = results["training"]
    assert training["device"] == "cpu" and training["cases"][0]["case"] == "synthetic pairs"
    # bfloat16 LSTMs need AVX-512-BF16 or AMX: without them the two rows are reported, not run.
    precisions = {"float32": TRAINING_RUNS[:2], "bfloat16": TRAINING_RUNS[3:]}
    if training["not_run"]:
        assert set(training["not_run"]) == set(TRAINING_RUNS[3:])
        assert all("AVX-512-BF16" in why for why in training["not_run"].values())
        assert any("not run" in note for note in training["notes"])
        del precisions["bfloat16"]
    ran = [run for pair in precisions.values() for run in pair] + [TRAINING_RUNS[2]]
    for case in training["cases"]:
        assert set(case["runs"]) == set(ran)
        for run in case["runs"].values():
            assert run["samples_per_second"] > 0 and 0 <= run["valid_accuracy"] <= 1
            assert len(run["loss_per_step"]) == run["steps"] == len(run["samples_per_step_all"])
            assert sum(run["samples_per_step_all"]) == case["train_pairs"] * case["epochs"]
        ours = case["runs"]["(b) budgeted steps of 32 + fused"]
        assert ours["samples_per_step"]["max"] <= 64  # micro-batches capped at the step target
        for precision, (base, budgeted) in precisions.items():
            assert case["speedup_b_over_a"][precision] == pytest.approx(
                case["runs"][budgeted]["samples_per_second"] / case["runs"][base]["samples_per_second"]
            )
            share = case["targets"][f"speedup (b)/(a) over the ceiling, {precision}"]["measured"]
            assert share == pytest.approx(case["speedup_b_over_a"][precision] / case["padded_tokens_a_over_b"])
            assert f"accuracy (b)-(a), {precision}" in case["targets"]
        assert len(case["targets"]) == 2 * len(precisions)
        padded = {k: r["padded_tokens_per_sample"] for k, r in case["runs"].items()}
        assert case["padded_tokens_a_over_b"] == pytest.approx(padded[TRAINING_RUNS[0]] / padded[TRAINING_RUNS[1]])
        assert all(0 < r["padding_efficiency"] <= 1 for r in case["runs"].values())
    calibration = results["calibration"]
    assert len(calibration["cases"]) == 2
    for case in calibration["cases"]:
        assert set(case["strategies"]) == {"calibrated budget", "fixed 32, random"}
        for row in case["strategies"].values():
            assert row["steps"] == len(row["fractions"]) > 0 and row["max"] >= row["median"] > 0
        assert case["fit"]["budget"] > 0 and len(case["fit"]["cost"]) == 3
        assert set(case["targets"]) == {"max fraction of the limit", "median fraction of the limit"}
    for plot in results["batching"]["plots"] + ops["plots"] + training["plots"] + calibration["plots"]:
        assert (tmp_path / plot).stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "plan_batches" in out and "soft_align + masked_pool" in out and "ESIM training" in out
    assert "Ops at long sequences" in out
    assert "Calibrated budgets" in out


def test_sections_measures_only_those_asked_for(tmp_path, capsys):
    assert main(["bench", "--tiny", "--sections", "ops", "batching", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"batching", "ops"} <= set(results) and not {"training", "calibration"} & set(results)
    out = capsys.readouterr().out
    assert out.index("plan_batches") < out.index("soft_align + masked_pool")  # the usual order
    assert "ESIM training" not in out
    with pytest.raises(SystemExit) as exit_:  # argparse's usage error
        main(["bench", "--tiny", "--sections", "speed", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "invalid choice: 'speed'" in capsys.readouterr().err


def test_a_registered_section_is_run_saved_and_shown_by_the_command(tmp_path, capsys, monkeypatch):
    # A new section is its module and one registry line: the command names none by hand.
    from dynbatch_ext.bench.context import Section
    from dynbatch_ext.bench.sections import SECTIONS

    seen = []

    def run(context):
        seen.append(context)
        context.progress.update()
        return {"answer": 42, "plots": []}

    def check(context):
        if context.mode != "tiny":
            raise ValueError("echo: only tiny")

    monkeypatch.setitem(SECTIONS, "echo", Section("echo", run, lambda r: f"echo says {r['answer']}", check))
    assert main(["bench", "--tiny", "--sections", "echo", "--out", str(tmp_path)]) == 0
    (context,) = seen
    assert context.mode == "tiny" and context.out_dir == tmp_path and context.user_case is None
    echo = json.loads((tmp_path / "results.json").read_text())["echo"]
    assert echo["answer"] == 42 and echo["seconds"] > 0 and "load" in echo
    assert "echo says 42" in capsys.readouterr().out
    assert main(["bench", "--quick", "--sections", "echo", "--out", str(tmp_path / "q")]) == 2
    assert "echo: only tiny" in capsys.readouterr().err and len(seen) == 1  # checked before running


def test_an_ops_run_stopped_midway_keeps_the_batches_it_measured(tmp_path, monkeypatch):
    # A GPU session's time limit can stop the benchmark in its ops section; what it measured
    # before that must be in results.json, marked partial, and render as a table.
    from dynbatch_ext.bench.sections import ops as ops_section
    from dynbatch_ext.bench.tools import markdown

    measure_batch, calls = ops_section.measure_batch, []

    def stops_at_the_second_batch(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise RuntimeError("stopped by the time limit")
        return measure_batch(*args, **kwargs)

    monkeypatch.setattr(ops_section, "measure_batch", stops_at_the_second_batch)
    with pytest.raises(RuntimeError, match="time limit"):
        main(["bench", "--tiny", "--sections", "ops", "--out", str(tmp_path)])
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["ops"]["partial"] is True
    (section,) = results["ops"]["sections"]
    assert [r["batch"] for r in section["batches"]] == calls[:1]
    text = markdown.render(results)
    assert "**Partial:**" in text and f"| {calls[0]} |" in text


def test_the_command_prints_no_profiler_start_stop_lines(tmp_path):
    # The ops section's CPU memory figures open a profiling session per path and batch; torch's
    # profiler would print two "USDT: ... profiler_start/stop" lines for each.
    done = subprocess.run([sys.executable, "-m", "dynbatch_ext", "bench", "--tiny", "--sections", "ops",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "peak memory" in done.stdout  # the profiled figures were measured
    assert "profiler_start" not in done.stdout + done.stderr


def test_bad_options_end_in_one_line(tmp_path, capsys):
    assert main(["bench", "--tiny", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"error: --data-dir {tmp_path / 'missing'}: no such folder"


def test_user_data_is_measured_first(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("premise\thypothesis\tlabel\n" + "a man sleeps .\tsomeone rests\t0\n" * 40)
    texts = tmp_path / "texts.csv"
    texts.write_text("".join(f'1,"{"word " * (i % 17)}"\n' for i in range(60)))
    for data in (pairs, texts):
        out = tmp_path / data.stem
        assert main(["bench", "--tiny", "--data", str(data), "--out", str(out)]) == 0
        case = json.loads((out / "results.json").read_text())["batching"]["cases"][0]
        assert case["case"] == f"your data ({data.name})"
        assert case["pairs"] == (data is pairs)
        assert case["strategies"]["budgeted (dynbatch_ext)"]["samples_missing"] == 0


def test_texts_that_are_all_empty_are_measured(tmp_path):
    texts = tmp_path / "empty.csv"
    texts.write_text('1,""\n' * 50)
    assert main(["bench", "--tiny", "--sections", "batching", "--data", str(texts), "--out", str(tmp_path)]) == 0
    case = json.loads((tmp_path / "results.json").read_text())["batching"]["cases"][0]
    assert case["strategies"]["budgeted (dynbatch_ext)"]["samples_missing"] == 0


def test_bad_data_and_device_end_in_one_line(tmp_path, capsys):
    malformed = tmp_path / "bad.tsv"
    malformed.write_text("premise\thypothesis\tlabel\nonly two\tfields\n")
    long_texts = tmp_path / "long.csv"
    long_texts.write_text("1," + "w " * 500 + "\n")
    huge_field = tmp_path / "huge.csv"
    huge_field.write_text("1,short\n1," + "w" * 10_000_000 + "\n")
    bad_labels = tmp_path / "labels.tsv"
    bad_labels.write_text("premise\thypothesis\tlabel\n" + "a man sleeps .\tsomeone rests\t0\n" * 30
                          + "a man sleeps .\tsomeone rests\t5\n")
    cases = [
        (["--data", str(tmp_path / "none.tsv")], f"error: --data {tmp_path / 'none.tsv'}: no such file"),
        (["--data", str(malformed)], f"error: {malformed}:2: expected 3 tab-separated fields, got 2"),
        (["--data", str(long_texts), "--budget", "1000"], "more than the budget 1000"),
        (["--data", str(long_texts), "--budget", "0"], "budget must be a positive finite number, got 0"),
        (["--data", str(huge_field)], f"error: {huge_field}:2: field larger than field limit"),
        (["--data", str(bad_labels)], f"error: --data {bad_labels}: pair 30 has label 5, outside [0, 3)"),
        (["--device", "tpu"], "error: --device tpu"),
    ]
    if not __import__("torch").cuda.is_available():
        cases.append((["--device", "cuda"], "error: --device cuda: torch sees no CUDA device here"))
    for options, message in cases:
        assert main(["bench", "--tiny", "--out", str(tmp_path / "out"), *options]) == 2
        error = capsys.readouterr().err.strip()
        assert "\n" not in error and message in error, error
        assert len(error) < 400 and not (tmp_path / "out" / "results.json").exists()  # nothing measured


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_gpu_figures_record_device_driver_and_versions():
    from dynbatch_ext.bench import environment

    env = environment.describe("cuda")
    for key in ("gpu", "driver", "cuda", "compute_capability", "gpu_memory_bytes", "torch", "date"):
        assert env[key] not in (None, ""), key


def test_profile_step_runs_the_fused_step_and_rejects_bad_options(capsys):
    from dynbatch_ext.bench.tools import profile_step

    profile_step.main(["--device", "cpu", "--batch", "4", "--dim", "8", "--dtypes", "float32"])
    assert "float32: one fused step, a (4, " in capsys.readouterr().out
    profile_step.main(["--device", "cpu", "--batch", "2", "--length", "40", "--dim", "8", "--dtypes", "bfloat16"])
    assert "bfloat16: one fused step, a (2, " in capsys.readouterr().out  # a long-sequence point
    with pytest.raises(SystemExit):
        profile_step.main(["--device", "cpu", "--dtypes", "float8"])
    assert "unknown ['float8']" in capsys.readouterr().err


def test_the_training_profile_runs_and_prints_each_kind_of_op(capsys):
    from dynbatch_ext.bench.tools import training_profile

    assert training_profile.main(["--steps", "2", "--dim", "8"]) == 0
    out = capsys.readouterr().out
    assert "lstm" in out and "fused ops" in out and "padded tokens per sample" in out


def test_the_training_profile_of_the_transformer_finds_dropouts_masks(capsys):
    pytest.importorskip("transformers")
    from dynbatch_ext.bench.tools import training_profile

    assert training_profile.main(["--workload", "transformer", "--reviews", "50"]) == 0
    out = capsys.readouterr().out
    assert "one epoch of 40 reviews each" in out and "dropout masks" in out
    assert "torch's bernoulli_ on a 20 x 2 x 450 x 450 block" in out


def test_unsegmented_text_is_measured_in_characters_and_oversize_is_an_option(tmp_path, capsys):
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("".join(f"1,{'好' * (5 + i % 40)}\n" for i in range(80))
                       + f"0,{'差' * 3000}\n")  # fmt: skip
    assert main(["bench", "--tiny", "--sections", "batching", "--data", str(reviews), "--out", str(tmp_path / "a")]) == 2
    error = capsys.readouterr().err
    assert "sample 80 (length 3000)" in error and "--oversize skip to leave them out" in error
    assert main(["bench", "--tiny", "--sections", "batching", "--data", str(reviews), "--oversize", "skip",
                 "--out", str(tmp_path / "b")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "lengths in characters: the texts have" in printed and "not split by spaces" in printed
    case = json.loads((tmp_path / "b" / "results.json").read_text())["batching"]["cases"][0]
    assert case["samples_left_out"] == 1 and case["num_samples"] == 81
    assert case["strategies"]["budgeted (dynbatch_ext)"]["num_batches"] > 1  # characters, not 1 token each


def test_a_measurement_under_load_is_marked(tmp_path):
    from dynbatch_ext.bench.environment import LoadMeter

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        meter = LoadMeter()
        time.sleep(1.0)
        load = meter.stop(1.0)
    finally:
        busy.kill()
    assert load is not None and load["under_load"] and load["foreign_cpu_share"] > 0.3
