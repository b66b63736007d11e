"""python -m dynbatch_ext.bench.long_sequences on a small shape: every figure present and sane."""
from __future__ import annotations

from dynbatch_ext.bench import long_sequences


def test_a_shape_is_measured_against_eager_and_mm():
    row = long_sequences.measure(batch=3, length=40, dim=24, repeats=1)
    assert row["fused_seconds"] > 0 and row["eager_seconds"] > 0 and row["mm_gflops"] > 0
    assert row["eager_over_fused"] == row["eager_seconds"] / row["fused_seconds"]
    assert row["fused_over_mm"] == row["fused_gflops"] / row["mm_gflops"]
    assert 1 <= row["padded_over_valid_work"] <= 4  # lengths in [L/2, L]
