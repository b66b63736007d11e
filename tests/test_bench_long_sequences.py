"""The ops section's long-sequence grid (bench/long_sequences.py): every figure present and sane,
and its targets judged on the worst point."""
from __future__ import annotations

import math

import torch

from dynbatch_ext.bench import long_sequences
from dynbatch_ext.bench.pair_paths import pair_loss
from dynbatch_ext.ops import reference


def test_a_point_is_timed_against_eager_compiled_and_mm():
    compiled = torch.compile(pair_loss(reference.soft_align, reference.masked_pool))
    p = long_sequences.measure(batch=3, length=40, dim=24, repeats=1, compiled=compiled)
    assert set(p["seconds"]) == {"fused", "eager reference", "compiled reference"}
    assert all(s > 0 for s in p["seconds"].values()) and p["mm_gflops"] > 0
    for name, ratio in p["over_fused"].items():
        assert ratio == p["seconds"][name] / p["seconds"]["fused"]
    assert p["fused_over_mm"] == p["fused_gflops"] / p["mm_gflops"]
    # padded to the longest drawn length of each side, as a batcher pads, lengths in [L/2, L]
    assert 20 <= p["padded_len_a"] <= 40 and 20 <= p["padded_len_b"] <= 40
    assert 1 <= p["padded_over_valid_work"] <= 4


def test_a_single_pair_has_no_padding():
    p = long_sequences.measure(batch=1, length=30, dim=8, repeats=1)
    assert p["padded_over_valid_work"] == 1.0 and "compiled reference" not in p["seconds"]


def _point(batch, length, eager, compiled, over_mm):
    return {"batch": batch, "max_len": length, "dim": 64, "fused_over_mm": over_mm,
            "over_fused": {"eager reference": eager, "compiled reference": compiled}}  # fmt: skip


def test_targets_are_judged_on_the_worst_point_and_name_it():
    points = [_point(1, 1024, 1.1, 1.3, 0.9), _point(64, 128, 2.0, 1.1, 0.3), _point(16, 256, 1.8, 1.5, 0.7)]
    t = long_sequences.targets(points, "cpu")
    eager = t["vs eager reference, every point"]
    assert (eager["measured"], eager["at"], eager["met"]) == (1.1, "B=1, L=1024, d=64", False)
    compiled = t["vs compiled reference, every point"]
    assert (compiled["measured"], compiled["at"], compiled["met"]) == (1.1, "B=64, L=128, d=64", False)
    mm = t["of torch.mm's GFLOP/s, L >= 256"]  # B=64 at L=128 is left out of this one
    assert (mm["measured"], mm["met"]) == (0.7, True)


def test_the_grid_keeps_every_batch_within_its_budget():
    for budget, batches, dims, repeats in long_sequences.GRIDS.values():
        for batch in batches:
            length = math.isqrt(budget // batch)
            assert batch * length**2 <= budget and length >= 16
