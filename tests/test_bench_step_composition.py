"""The step-composition study: its runs end to end at the tiny size, and its statistics."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("datasets")

from dynbatch_ext.bench import step_composition  # noqa: E402


def test_the_paired_interval_is_students_t():
    differences = np.array([0.01, -0.02, 0.005, 0.0, -0.01, 0.015, -0.005, 0.002])
    mean, low, high = step_composition._interval(differences)
    half = 2.3646 * differences.std(ddof=1) / np.sqrt(8)  # t(0.975, 7)
    assert mean == pytest.approx(differences.mean())
    assert (low, high) == pytest.approx((mean - half, mean + half), rel=2e-3)


def test_every_workload_and_regime_chosen_alone_plans_its_runs():
    plan = step_composition.planned_runs
    regimes = list(step_composition.REGIMES)
    ways = len(step_composition.LOOP_WAYS)
    esim = plan(["esim"], ["loop"], regimes, 8, 3)  # ESIM alone: its 8 seeds, whatever the regimes
    assert len(esim) == 8 * ways and all(k.startswith("esim|loop|steps of 32|") for k in esim)
    both = plan(["transformer", "esim"], ["hf"], regimes, 2, 1)
    expected = 2 * len(step_composition.HF_WAYS) + 2 * ways + len(step_composition.HF_WAYS)
    assert len(both) == len(set(both)) == expected
    # The seed experiment's regime first, then ESIM, then the scale.
    assert [k.split("|")[0] + k.split("|")[2] for k in both] == sorted(
        (k.split("|")[0] + k.split("|")[2] for k in both),
        key=["transformersteps of 20", "esimsteps of 32", "transformersteps of 256"].index)
    scale = plan(["transformer"], ["loop"], ["steps of 256"], 8, 3)
    assert len(scale) == 3 * ways and all("|steps of 256|" in k for k in scale)


def test_a_tiny_study_trains_every_way_and_continues_where_it_stopped(tmp_path):
    arguments = ["--size", "tiny", "--seeds", "2", "--regimes", "steps of 20", "--paths", "hf",
                 "--out", str(tmp_path), "--data-dir", str(tmp_path / "no-data")]  # fmt: skip
    (tmp_path / "no-data").mkdir()
    assert step_composition.main(arguments) == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2 * (len(step_composition.HF_WAYS) + len(step_composition.LOOP_WAYS))  # hf, esim
    result = json.loads((tmp_path / "results.json").read_text())
    rows = {(r["workload"], r["path"], r["way"]): r for r in result["rows"]}
    pooled = rows[("transformer", "hf", "pooled")]
    assert pooled["paired_seeds"] == 2 and len(pooled["differences"]) == 2
    assert pooled["cost_max_over_budget"] <= 1.0  # every micro-batch within the budget
    assert rows[("transformer", "hf", "random")]["padding_efficiency"] > rows[("transformer", "hf", "fixed")]["padding_efficiency"]
    assert (tmp_path / "study.png").stat().st_size > 10_000 and (tmp_path / "study.md").is_file()
    # How the runs ran is the runs' own record, not the report's: one job, the cores' threads.
    assert result["runs_at_once"] == [1] and len(result["threads_per_run"]) == 1
    stamp = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()}
    assert step_composition.main(arguments) == 0  # nothing left to run: nothing run again
    assert stamp == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()}


def test_the_plain_loop_trains_fixed_and_random_on_the_same_steps():
    regime = dict(step=20, epochs=1, lr=5e-4)
    fixed = step_composition._loop_run("fixed", regime, 0, None, "tiny")
    random = step_composition._loop_run("random", regime, 0, None, "tiny")
    assert fixed["samples_per_step"] == random["samples_per_step"]  # runs of 20 of one order
    assert random["padding_efficiency"] > fixed["padding_efficiency"] and random["micro_batches_per_step"] > 1
