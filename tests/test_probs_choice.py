"""The saved-or-recomputed probabilities measurement (csrc/bench/soft_align_probs.cu and
python -m dynbatch_ext.bench.tools.probs_choice), run end to end on the CPU emulator, so that the
program a GPU session runs is known to work before it gets there. Its timings here mean nothing."""
from __future__ import annotations

import json
import subprocess

import pytest

from dynbatch_ext.bench.tools import probs_choice


def test_both_choices_give_the_same_bits_and_are_timed_in_both_dtypes(probs_program, tmp_path, capsys):
    report = probs_choice.main(["--program", str(probs_program), "--batch", "5", "--dim", "9",
                                "--repeats", "3", "--out", str(tmp_path)])  # fmt: skip
    assert json.loads((tmp_path / "probs_choice.json").read_text()) == report
    measurement = report["measurement"]
    assert measurement["batch"] == 5 and measurement["dim"] == 9 and measurement["repeats"] == 3
    assert [r["dtype"] for r in measurement["results"]] == ["float32", "bfloat16"]
    for result in measurement["results"]:
        assert result["same_bits"] is True  # the emulator compiles both choices' arithmetic alike
        assert result["max_relative_difference"] == 0
        assert result["saved_bytes_written_and_read"] > 0
        for choice in ("recompute", "save"):
            t = result[choice]
            assert 0 < t["step_ms_q25"] <= t["step_ms"] <= t["step_ms_q75"]
            assert t["forward_ms"] > 0 and t["backward_ms"] > 0
    assert [row["dtype"] for row in report["choices"]] == ["float32", "bfloat16"]
    assert "save/recompute" in capsys.readouterr().out


@pytest.mark.parametrize("stdin, message", [
    ("3 -1\n", "pair 0 has a negative length"),
    ("3 x\n", 'expected one "la lb" line'),
    ("", "no pairs"),
])  # fmt: skip
def test_the_program_refuses_bad_lengths_with_a_message(probs_program, stdin, message):
    done = subprocess.run([str(probs_program), "8", "2"], input=stdin, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 1 and message in done.stderr


def test_a_failing_program_raises_with_its_message(tmp_path):
    fake = tmp_path / "fails"
    fake.write_text("#!/bin/sh\necho 'saving the probabilities changed the results' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeError, match="changed the results"):
        probs_choice.run_program(fake, [(3, 4)], dim=8, repeats=2)


def test_a_missing_program_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        probs_choice.main(["--program", str(tmp_path / "absent"), "--out", str(tmp_path)])
    assert "build it with nvcc first" in capsys.readouterr().err


def step(ms, q25, q75):
    return {"forward_ms": ms / 2, "backward_ms": ms / 2, "step_ms": ms, "step_ms_q25": q25,
            "step_ms_q75": q75}  # fmt: skip


def test_the_faster_choice_is_named_only_outside_the_noise():
    clear = {"dtype": "float32", "recompute": step(1.0, 0.98, 1.02), "save": step(1.2, 1.18, 1.22)}
    noisy = {"dtype": "bfloat16", "recompute": step(1.0, 0.9, 1.1), "save": step(0.95, 0.9, 1.05)}
    rows = probs_choice.choices({"results": [clear, noisy]})
    assert rows[0]["faster"] == "recompute" and rows[0]["save_over_recompute"] == pytest.approx(1.2)
    assert rows[1]["faster"] == "neither (within noise)"
    saved = {"dtype": "float32", "recompute": step(1.3, 1.28, 1.32), "save": step(1.0, 0.99, 1.01)}
    assert probs_choice.choices({"results": [saved]})[0]["faster"] == "save"
