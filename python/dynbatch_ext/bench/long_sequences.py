"""The fused ops at long sequences, against eager PyTorch and against torch.mm's throughput.

    python -m dynbatch_ext.bench.long_sequences [--repeats 5]

For each shape (B pairs of up to L tokens, width d; valid lengths drawn between L/2 and L),
soft_align + masked_pool of both sides, forward + backward, float32: the fused ops' and the eager
reference's median time (alternating runs), and the fused path's throughput on its valid work
(20 * la * lb * d floating-point operations per pair: three matrix products forward, seven
backward) beside torch.mm's on one matrix product of the same total work, measured in the same
run. The shapes are the ones the quadratic budget gives at long lengths. Beside them, the padded
work over the valid work of the lengths drawn: where both paths run their matrix products at BLAS
speed, eager / fused cannot exceed it by much.
"""
from __future__ import annotations

import argparse

import torch

from .. import ops, reference
from .environment import describe
from .op_speed import pair_loss
from .timing import compare

SHAPES = ((16, 256, 600), (8, 512, 600), (4, 1024, 256), (64, 128, 300))
FLOPS_PER_MULTIPLY_ADD_AND_PASS = 20  # 2 flops a multiply-add, 10 matrix products


def measure(batch: int, length: int, dim: int, repeats: int, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, length, dim, generator=generator, requires_grad=True)
    b = torch.randn(batch, length, dim, generator=generator, requires_grad=True)
    len_a = torch.randint(length // 2, length + 1, (batch,), generator=generator)
    len_b = torch.randint(length // 2, length + 1, (batch,), generator=generator)
    fused = pair_loss(ops.soft_align, ops.masked_pool)
    eager = pair_loss(reference.soft_align, reference.masked_pool)
    flops = FLOPS_PER_MULTIPLY_ADD_AND_PASS * int((len_a * len_b).sum()) * dim
    # torch.mm on one product of the same multiply-adds: (side x dim) @ (dim x side).
    side = max(1, round((flops / 2 / dim) ** 0.5))
    left, right = torch.randn(side, dim), torch.randn(dim, side)
    seconds = compare({"fused": lambda: fused(a, b, len_a, len_b).backward(),
                       "eager": lambda: eager(a, b, len_a, len_b).backward(),
                       "mm": lambda: torch.mm(left, right)}, repeats=repeats)  # fmt: skip
    mm_gflops = 2 * side * side * dim / seconds["mm"] / 1e9
    fused_gflops = flops / seconds["fused"] / 1e9
    padded_over_valid = batch * length * length / int((len_a * len_b).sum())
    return {"batch": batch, "max_len": length, "dim": dim, "fused_seconds": seconds["fused"],
            "padded_over_valid_work": padded_over_valid,
            "eager_seconds": seconds["eager"], "eager_over_fused": seconds["eager"] / seconds["fused"],
            "fused_gflops": fused_gflops, "mm_gflops": mm_gflops,
            "fused_over_mm": fused_gflops / mm_gflops}  # fmt: skip


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m dynbatch_ext.bench.long_sequences",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs (default 5)")
    args = parser.parse_args(argv)
    env = describe("cpu")
    print(f"{env['cpu']} ({env['cpu_cores']} cores), torch {env['torch']}, float32, valid lengths "
          "in [L/2, L]")  # fmt: skip
    print(f"{'B':>5}{'L':>6}{'d':>6}{'fused':>11}{'eager':>11}{'eager/fused':>13}"
          f"{'padded/valid':>14}{'fused GFLOP/s':>15}{'mm GFLOP/s':>12}{'fused/mm':>10}")  # fmt: skip
    rows = []
    for batch, length, dim in SHAPES:
        r = measure(batch, length, dim, args.repeats)
        rows.append(r)
        print(f"{batch:>5}{length:>6}{dim:>6}{r['fused_seconds'] * 1e3:>8.0f} ms"
              f"{r['eager_seconds'] * 1e3:>8.0f} ms{r['eager_over_fused']:>12.2f}x"
              f"{r['padded_over_valid_work']:>13.2f}x"
              f"{r['fused_gflops']:>15.1f}{r['mm_gflops']:>12.1f}{r['fused_over_mm']:>10.2f}",
              flush=True)  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
