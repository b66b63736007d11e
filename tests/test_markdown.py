"""The README's tables are rendered from a results file (python -m dynbatch_ext.bench.tools.markdown)."""
from __future__ import annotations

import copy
import json

import pytest

from dynbatch_ext.bench.tools import markdown
from dynbatch_ext.cli import main


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert main(["bench", "--tiny", "--sections", "ops", "--out", str(out)]) == 0
    return out / "results.json"


def test_every_batch_and_path_is_a_cell_of_the_table(results, capsys):
    text = markdown.main([str(results)])
    assert capsys.readouterr().out == text
    data = json.loads(results.read_text())
    assert "partial" not in data["ops"] and "Partial" not in text  # a finished run
    section = data["ops"]["sections"][0]
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| B |"))
    assert header == "| B | padded La × Lb | fused | eager reference | `torch.compile` of it | two SDPA calls |"
    for r in section["batches"]:
        row = next(line for line in lines if line.startswith(f"| {r['batch']} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{r['padded_shape_a'][1]} × {r['padded_shape_b'][1]}"
        assert cells[2] == f"**{markdown.duration(r['paths']['fused']['seconds'])}**"
        eager = r["paths"]["eager reference"]["seconds"]
        assert cells[3] == f"{markdown.duration(eager)} ({r['speedup_of_fused']['eager reference']:.1f}x)"
    assert data["environment"]["cpu"] in text and "tiny mode" in text
    grid = data["ops"]["long_sequences"]  # then the long-sequence grid, a row per point
    assert "| B | L | d | fused | eager reference | `torch.compile` of it | padded / valid work |" in text
    for p in grid["points"]:
        row = next(line for line in lines if line.startswith(f"| {p['batch']} | {p['max_len']} | {p['dim']} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] == f"**{markdown.duration(p['seconds']['fused'])}**"
        assert cells[-1] == f"{p['fused_over_mm']:.2f}"
    for name, t in grid["targets"].items():
        assert f"- fused {name}: worst {t['measured']:.2f} at {t['at']}" in text


def test_gpu_results_get_the_floor_column_provenance_and_targets(results):
    data = json.loads(results.read_text())
    gpu = copy.deepcopy(data)
    gpu["environment"].update(gpu="NVIDIA H100", driver="580.1", cuda="13.0", compute_capability="9.0")
    gpu["ops"]["copy_bandwidth_bytes_per_second"] = 3.0e12
    section = gpu["ops"]["sections"][0]
    for r in section["batches"]:
        r["fused_over_floor"] = 1.73
    section["targets"] = {"vs eager reference at B=512": {"op": ">=", "value": 5.0, "measured": 4.2, "met": False}}
    text = markdown.render(gpu)
    assert "NVIDIA H100 (driver 580.1, CUDA 13.0, compute capability 9.0)" in text
    assert "copy bandwidth 3.00 TB/s" in text
    assert "| fused / floor |" in text and text.count(" | 1.7 |") == len(section["batches"])
    assert "- vs eager reference at B=512: 4.20 (target >= 5.0, MISSED)" in text


def test_durations_keep_three_or_four_figures():
    assert [markdown.duration(s) for s in (0.3074, 0.0031, 8.4e-5, 9.6e-6)] == [
        "307.4 ms", "3.1 ms", "84 µs", "9.6 µs"]


def test_a_file_without_ops_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"mode": "tiny", "environment": {}, "batching": {}}))
    with pytest.raises(SystemExit):
        markdown.main([str(path)])
    assert "no ops section" in capsys.readouterr().err
    path.write_text(json.dumps({"ops": {"sections": []}}))
    with pytest.raises(SystemExit):
        markdown.main([str(path)])
    assert "not a results file of `bench`" in capsys.readouterr().err
