"""The fused ops at long sequences: a grid of batch sizes under one quadratic budget, and widths.

    python -m dynbatch_ext.bench.long_sequences [--quick | --tiny] [--device cuda]

Part of the bench's ops section (`bench --sections ops`); this command runs the grid alone.
At every point (B pairs, padded length L with B * L**2 = the budget, width d), valid lengths are
drawn between L/2 and L for each side and the batch is padded to its longest, as a batcher pads
it (so B = 1 has no padding at all). One step = soft_align + masked_pool of both sides, forward
+ backward, float32. Paths, timed alternately in the same run (median):
  fused                 dynbatch_ext.ops
  eager reference       dynbatch_ext.reference, pure PyTorch
  compiled reference    torch.compile of the eager reference: one compiled function for the
                        whole grid, so it meets changing shapes as a compiled model meets
                        dynamic batches (torch's automatic dynamic shapes after the first)
  SDPA pair             (CUDA only) two scaled_dot_product_attention calls, see sections/ops.py
  torch.mm              one matrix product of the same multiply-adds as the valid work
The fused path's throughput counts its valid work only: 20 * la * lb * d floating-point
operations per pair (three matrix products forward, seven backward). "padded / valid" is the
eager path's padded work over that: where both paths run their products at BLAS speed, eager /
fused cannot go much past it, which bounds the ratio at small batches of long pairs.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from .. import ops, reference
from . import figures
from .environment import describe
from .pair_paths import STATE_SCALE, pair_loss, sdpa_align
from .context import add_mode_arguments
from .targets import target, verdict
from .timing import compare

FLOPS_PER_MULTIPLY_ADD_AND_PASS = 20  # 2 flops a multiply-add, 10 matrix products

# Per mode: the quadratic budget B * L**2, the batch sizes along it, the widths, and the fewest
# alternating runs per point; a point whose fused step is short gets more, up to MAX_REPEATS, so
# that its runs add up to RUN_SECONDS of fused time (short steps are the noisiest).
GRIDS = {
    "full": (64 * 128**2, (1, 4, 16, 64, 256, 1024), (64, 256, 1024), 3),
    "quick": (64 * 128**2, (4, 256), (256,), 3),
    "tiny": (4 * 16**2, (1, 4), (16,), 1),
}
RUN_SECONDS, MAX_REPEATS = 0.25, 7
# Targets on the CPU, in float32, at every point of the grid (see targets()).
CPU_TARGETS = {"eager reference": 1.5, "compiled reference": 1.2}
MIN_FUSED_OVER_MM = 0.6  # of torch.mm's GFLOP/s, at L >= 256
MM_TARGET_FROM_LENGTH = 256


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def inputs(batch: int, length: int, dim: int, device: str = "cpu", seed: int = 0):
    """a (B, La, d), b (B, Lb, d) float32 requiring gradients (entries of LSTM states' order:
    see STATE_SCALE), len_a, len_b: valid lengths drawn in [L/2, L], each side padded to its
    longest."""
    generator = torch.Generator().manual_seed(seed)
    len_a = torch.randint(max(1, length // 2), length + 1, (batch,), generator=generator)
    len_b = torch.randint(max(1, length // 2), length + 1, (batch,), generator=generator)
    a = torch.randn(batch, int(len_a.max()), dim, generator=generator) * STATE_SCALE
    b = torch.randn(batch, int(len_b.max()), dim, generator=generator) * STATE_SCALE
    return (a.to(device).requires_grad_(), b.to(device).requires_grad_(), len_a.to(device),
            len_b.to(device))


def measure(batch: int, length: int, dim: int, repeats: int, device: str = "cpu",
            compiled=None, seed: int = 0) -> dict:
    """One point of the grid, from at least `repeats` alternating runs of each path (see
    RUN_SECONDS). `compiled`: the compiled reference to time (None: not timed)."""
    a, b, len_a, len_b = inputs(batch, length, dim, device, seed)
    max_a, max_b = a.shape[1], b.shape[1]
    losses = {"fused": pair_loss(ops.soft_align, ops.masked_pool),
              "eager reference": pair_loss(reference.soft_align, reference.masked_pool)}  # fmt: skip
    if compiled is not None:
        losses["compiled reference"] = compiled
    if device.startswith("cuda"):
        losses["SDPA pair"] = pair_loss(sdpa_align, reference.masked_pool)
    valid = int((len_a * len_b).sum())
    flops = FLOPS_PER_MULTIPLY_ADD_AND_PASS * valid * dim
    side = max(1, round((flops / 2 / dim) ** 0.5))  # (side x d) @ (d x side): the same work
    left = torch.randn(side, dim, device=device)
    right = torch.randn(dim, side, device=device)

    def step(loss):
        a.grad = b.grad = None
        loss(a, b, len_a, len_b).backward()
        _sync(device)  # the step is over when the device is done, not when it is queued

    def mm():
        torch.mm(left, right)
        _sync(device)

    candidates = {name: (lambda loss=loss: step(loss)) for name, loss in losses.items()}
    first = compare({"fused": candidates["fused"]}, repeats=1, warmup=1)["fused"]
    repeats = max(repeats, min(MAX_REPEATS, math.ceil(RUN_SECONDS / first)))
    seconds = compare({**candidates, "torch.mm": mm}, repeats=repeats, warmup=1)
    fused_gflops = flops / seconds["fused"] / 1e9
    mm_gflops = 2 * side * side * dim / seconds["torch.mm"] / 1e9
    return {
        "batch": batch, "max_len": length, "dim": dim, "padded_len_a": max_a, "padded_len_b": max_b,
        "repeats": repeats,
        "seconds": {name: seconds[name] for name in losses},
        "over_fused": {name: seconds[name] / seconds["fused"] for name in losses if name != "fused"},
        "padded_over_valid_work": batch * max_a * max_b / valid,
        "fused_gflops": fused_gflops, "mm_gflops": mm_gflops, "fused_over_mm": fused_gflops / mm_gflops,
    }  # fmt: skip


def _worst(points: list[dict], value, where=lambda p: True) -> tuple[float, str] | None:
    chosen = [p for p in points if where(p)]
    if not chosen:
        return None
    worst = min(chosen, key=value)
    return value(worst), f"B={worst['batch']}, L={worst['max_len']}, d={worst['dim']}"


def targets(points: list[dict], device: str) -> dict:
    """The grid's targets, each on its worst point. CPU: fused at least 1.5x eager and 1.2x
    compiled everywhere, and 60% of torch.mm's GFLOP/s at L >= 256. CUDA: faster than the SDPA
    pair at B <= 8 and L >= 512."""
    wanted = {}
    if device == "cpu":
        for name, value in CPU_TARGETS.items():
            wanted[f"vs {name}, every point"] = (
                _worst(points, lambda p, n=name: p["over_fused"].get(n, math.inf)), value)
        wanted[f"of torch.mm's GFLOP/s, L >= {MM_TARGET_FROM_LENGTH}"] = (
            _worst(points, lambda p: p["fused_over_mm"],
                   lambda p: p["max_len"] >= MM_TARGET_FROM_LENGTH), MIN_FUSED_OVER_MM)
    else:
        wanted["vs SDPA pair, B <= 8 and L >= 512"] = (
            _worst(points, lambda p: p["over_fused"]["SDPA pair"],
                   lambda p: p["batch"] <= 8 and p["max_len"] >= 512), 1.0)
    return {name: {**target(worst[0], ">=", value), "at": worst[1]}
            for name, (worst, value) in wanted.items() if worst is not None}  # fmt: skip


def plot(grid: dict, path: Path) -> None:
    plt = figures.pyplot()
    points = grid["points"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, dim in enumerate(sorted({p["dim"] for p in points})):
        at = [p for p in points if p["dim"] == dim]
        batches = [p["batch"] for p in at]
        color = colors[k % len(colors)]
        for name, style in (("eager reference", "o-"), ("compiled reference", "s--")):
            if name in at[0]["over_fused"]:
                left.plot(batches, [p["over_fused"][name] for p in at], style, color=color,
                          label=f"{name.split()[0]} / fused, d={dim}")  # fmt: skip
        left.plot(batches, [p["padded_over_valid_work"] for p in at], ":", color=color,
                  label=f"padded / valid work, d={dim}")  # fmt: skip
        right.plot(batches, [p["fused_gflops"] for p in at], "o-", color=color, label=f"fused, d={dim}")
        right.plot(batches, [p["mm_gflops"] for p in at], "x:", color=color, label=f"torch.mm, d={dim}")
    for name, value in CPU_TARGETS.items() if grid["device"] == "cpu" else ():
        left.axhline(value, color="grey", linewidth=0.8)
        left.annotate(f"target vs {name.split()[0]}: {value}x", (0.01, value), xycoords=("axes fraction", "data"),
                      fontsize=7, color="grey", va="bottom")  # fmt: skip
    ticks = sorted({p["batch"] for p in points})
    lengths = {p["batch"]: p["max_len"] for p in points}
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xticks(ticks, [f"{b}\nL={lengths[b]}" for b in ticks])
        axis.minorticks_off()
        axis.set_xlabel(f"pairs per batch (B * L^2 = {grid['budget']:,})")
    left.set(ylabel="time / fused time", title=f"{grid['device']}: forward + backward, float32")
    right.set(ylabel="GFLOP/s on the valid work", title="fused throughput vs torch.mm")
    left.legend(fontsize=7, ncol=2)
    right.legend(fontsize=7, ncol=2)
    figures.save(figure, path)


def run(*, mode: str, device: str = "cpu", out_dir: Path | None = None, progress=None) -> dict:
    """The grid of `mode` ("full", "quick" or "tiny") on `device`; plots long_sequences.png into
    `out_dir` when given."""
    budget, batches, dims, repeats = GRIDS[mode]
    compiled = torch.compile(pair_loss(reference.soft_align, reference.masked_pool))
    points = []
    for dim in dims:
        for batch in batches:
            length = math.isqrt(budget // batch)
            if progress is not None:
                progress.set_description(f"ops: long sequences, B={batch}, L={length}, d={dim}")
            points.append(measure(batch, length, dim, repeats, device, compiled))
            if progress is not None:
                progress.update()
    grid = {"device": device, "budget": budget, "min_repeats": repeats, "points": points,
            "targets": targets(points, device), "plots": []}  # fmt: skip
    if out_dir is not None:
        plot(grid, out_dir / "long_sequences.png")
        grid["plots"].append("long_sequences.png")
    return grid


def points_in(mode: str) -> int:
    _, batches, dims, _ = GRIDS[mode]
    return len(batches) * len(dims)


def table(grid: dict) -> str:
    points = grid["points"]
    others = list(points[0]["over_fused"])
    lines = [
        f"Ops at long sequences: soft_align + masked_pool, forward + backward, float32, "
        f"{grid['device']}, B * L^2 = {grid['budget']:,}, valid lengths in [L/2, L]",
        f"  {'B':>5}{'L':>6}{'d':>6}{'fused':>11}" + "".join(f"{n.split()[0] + ' (x)':>20}" for n in others)
        + f"{'padded/valid':>14}{'fused GFLOP/s':>15}{'mm GFLOP/s':>12}{'fused/mm':>10}",
    ]  # fmt: skip
    for p in points:
        cells = "".join(f"{p['seconds'][n] * 1e3:.1f} ms ({p['over_fused'][n]:.2f}x)".rjust(20) for n in others)
        lines.append(f"  {p['batch']:>5}{p['max_len']:>6}{p['dim']:>6}{p['seconds']['fused'] * 1e3:>8.1f} ms"
                     f"{cells}{p['padded_over_valid_work']:>13.2f}x{p['fused_gflops']:>15.1f}"
                     f"{p['mm_gflops']:>12.1f}{p['fused_over_mm']:>10.2f}")  # fmt: skip
    lines.append("  (x) = how many times longer than fused")
    for name, t in grid["targets"].items():
        lines.append(f"  target fused {name} >= {t['value']}: worst {t['measured']:.2f} at {t['at']} ({verdict(t)})")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m dynbatch_ext.bench.long_sequences",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    add_mode_arguments(parser, quick="two points")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument("--out", type=Path, default=None, help="folder for long_sequences.png")
    args = parser.parse_args(argv)
    env = describe(args.device)
    print(f"{env['cpu']} ({env['cpu_cores']} cores), torch {env['torch']}", flush=True)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    grid = run(mode=args.mode, device=args.device, out_dir=args.out)
    print(table(grid))
    return grid


if __name__ == "__main__":
    main()
