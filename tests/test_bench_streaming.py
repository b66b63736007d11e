"""The bench's streaming section end to end in tiny mode: the files read as streams, the targets,
the throughput and memory figures."""
from __future__ import annotations

import json

from dynbatch_ext.bench.sections import streaming
from dynbatch_ext.cli import main


def test_the_streaming_section_reports_every_figure(tmp_path, capsys):
    assert main(["bench", "--tiny", "--sections", "streaming", "--out", str(tmp_path)]) == 0
    section = json.loads((tmp_path / "results.json").read_text())["streaming"]
    names = [case["case"] for case in section["cases"]]
    assert names[-2:] == ["synthetic single texts, 20,000", "synthetic pairs, 20,000"]
    for case in section["cases"]:
        rows = case["rows"]
        assert list(rows) == ["in-memory plan_batches (ceiling)", "stream, buffer 10,000",
                              "stream, buffer 1,000", "fixed 32, stream order"]  # fmt: skip
        for name, row in rows.items():
            assert row["samples_missing"] == row["samples_repeated"] == 0, name
            assert 0 < row["efficiency"] <= 1
        assert rows["in-memory plan_batches (ceiling)"]["efficiency_over_ceiling"] == 1.0
        for name in ("stream, buffer 10,000", "stream, buffer 1,000"):
            assert rows[name]["batches_over_budget"] == 0
        assert all(t["met"] for t in case["targets"].values()), case["targets"]
    speed = section["throughput"]
    assert speed["samples_per_second"] > 0 and list(speed["stream_memory_bytes"]) == ["200000"]
    assert (tmp_path / "streaming.png").stat().st_size > 10_000
    assert "Batches from a stream" in capsys.readouterr().out


def test_synthetic_chunks_make_the_stream_a_chunk_at_a_time():
    chunks = list(streaming.synthetic_chunks(150_000, chunk=65_536))
    assert [len(c) for c in chunks] == [65_536, 65_536, 18_928]
    lengths = __import__("numpy").concatenate(chunks)
    assert lengths.min() >= 2 and lengths.max() <= 512
