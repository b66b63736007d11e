"""The fused ESIM ops against the plain PyTorch ways of doing the same work.

One step = soft_align of a premise and hypothesis batch, masked_pool of both results, and the
backward of their sum, at SNLI-like lengths (drawn from SNLI dev when present, else from a
built-in distribution of the same shape) and ESIM's width d = 600. Paths, all in the same run:
  fused                 dynbatch_ext.ops (the C++ kernels)
  eager reference       dynbatch_ext.reference, pure PyTorch
  compiled reference    torch.compile of the eager reference (inductor)
  SDPA pair             two scaled_dot_product_attention calls (scale=1.0, key masks), one per
                        direction, with the padded rows zeroed, then the reference pooling (on
                        CUDA with the memory-efficient backend, the one that takes d = 600)
On CUDA also the bandwidth floor: the time to read every op's inputs once and write its outputs
once (forward and backward of both ops) at the device copy bandwidth measured in the same run.
Then the long-sequence grid of long_sequences.py (batch sizes under one quadratic budget, and
widths), in float32.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ... import corpora, ops
from ...batching.memory import peak_bytes
from ...ops import reference
from .. import figures, long_sequences
from ..pair_paths import STATE_SCALE, pair_loss, sdpa_align
from ..context import RunContext, Section
from ..targets import target, target_line
from ..timing import compare


PATHS = ("fused", "eager reference", "compiled reference", "SDPA pair")


def pair_lengths(batch: int, data_dir: Path | None, seed: int) -> tuple[np.ndarray, str]:
    """`batch` (premise, hypothesis) lengths: sampled from SNLI dev, or SNLI-shaped synthetic."""
    snli = data_dir / corpora.SNLI_DEV if data_dir else None
    if snli is not None and snli.is_file():
        pool, source = corpora.read_pairs_tsv(snli).token_lengths(), "SNLI dev"
    else:
        pool, source = corpora.synthetic_pair_lengths(100_000, seed=seed), "synthetic SNLI-like"
    rows = np.random.default_rng(seed).choice(len(pool), size=batch)
    return np.maximum(pool[rows], 1), source


def losses() -> dict:
    return {
        "fused": pair_loss(ops.soft_align, ops.masked_pool),
        "eager reference": pair_loss(reference.soft_align, reference.masked_pool),
        "compiled reference": torch.compile(pair_loss(reference.soft_align, reference.masked_pool)),
        "SDPA pair": pair_loss(sdpa_align, reference.masked_pool),
    }


def copy_bandwidth(device: str, megabytes: int = 512, repeats: int = 20) -> float:
    """Bytes per second a device-to-device copy moves, counting bytes read and written."""
    source = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device)
    target_ = torch.empty_like(source)
    target_.copy_(source)
    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        target_.copy_(source)
    end.record()
    torch.cuda.synchronize(device)
    return 2 * source.numel() * repeats / (start.elapsed_time(end) / 1e3)


def traffic_bytes(batch: int, max_a: int, max_b: int, dim: int, element: int) -> int:
    """Bytes the step must move at least: each op reads its inputs once, writes its outputs once.
    soft_align: a, b -> a~, b~; backward: g_a~, g_b~, a, b -> g_a, g_b. masked_pool (both sides):
    x -> (B, 2d); backward: g, x -> g_x. Lengths are negligible."""
    rows = batch * (max_a + max_b) * dim  # elements of a and b together
    pooled = 2 * batch * 2 * dim
    soft_align = 2 * rows + 6 * rows
    pool = (rows + pooled) + (pooled + 2 * rows)
    return (soft_align + pool) * element


def step_inputs(batch, dim, dtype, device, data_dir, seed=0):
    """a (B, La, d), b (B, Lb, d) requiring gradients, len_a, len_b, the (B, 2) lengths and where
    they came from: the inputs of one benchmark step."""
    lengths, source = pair_lengths(batch, data_dir, seed)
    generator = torch.Generator().manual_seed(seed)
    len_a = torch.as_tensor(lengths[:, 0], device=device)
    len_b = torch.as_tensor(lengths[:, 1], device=device)
    shape_a = (batch, int(lengths[:, 0].max()), dim)
    shape_b = (batch, int(lengths[:, 1].max()), dim)
    a = (torch.randn(shape_a, generator=generator) * STATE_SCALE).to(device, dtype).requires_grad_()
    b = (torch.randn(shape_b, generator=generator) * STATE_SCALE).to(device, dtype).requires_grad_()
    return a, b, len_a, len_b, lengths, source


def measure_batch(batch, dim, dtype, device, data_dir, repeats, seed=0) -> dict:
    a, b, len_a, len_b, lengths, source = step_inputs(batch, dim, dtype, device, data_dir, seed)
    shape_a, shape_b = tuple(a.shape), tuple(b.shape)

    def forget_gradients():
        a.grad = b.grad = None

    steps, values = {}, {}
    for name, loss in losses().items():
        def forward_backward(loss=loss):
            value = loss(a, b, len_a, len_b)
            value.backward()
            if a.is_cuda:  # the step is over when the device is done, not when it is queued
                torch.cuda.synchronize(a.device)
            return value.detach()

        def step(forward_backward=forward_backward):
            forget_gradients()
            return forward_backward()

        values[name] = float(step())  # also compiles the compiled path before timing
        steps[name] = (step, forward_backward)
    seconds = compare({name: step for name, (step, _) in steps.items()}, repeats=repeats, warmup=1)
    peaks = {}
    for name, (_, forward_backward) in steps.items():
        forget_gradients()  # outside the measurement: what a step allocates, not what it frees
        peaks[name] = peak_bytes(forward_backward, torch.device(device))
    reference_value = values["eager reference"]
    result = {
        "batch": batch,
        "lengths_from": source,
        "padded_shape_a": list(shape_a),
        "padded_shape_b": list(shape_b),
        "mean_len_a": float(lengths[:, 0].mean()),
        "mean_len_b": float(lengths[:, 1].mean()),
        "paths": {
            name: {
                "seconds": seconds[name],
                "peak_bytes": peaks[name],
                "loss_relative_difference": abs(values[name] - reference_value) / abs(reference_value),
            }
            for name in steps
        },
    }
    fused = seconds["fused"]
    result["speedup_of_fused"] = {name: seconds[name] / fused for name in steps if name != "fused"}
    result["traffic_bytes"] = traffic_bytes(batch, shape_a[1], shape_b[1], dim, a.element_size())
    return result


def plot(results: list[dict], path: Path, title: str) -> None:
    plt = figures.pyplot()

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    batches = [r["batch"] for r in results]
    for name in PATHS:
        left.plot(batches, [r["paths"][name]["seconds"] * 1e3 for r in results], "o-", label=name)
    left.set(xscale="log", yscale="log", xlabel="batch size (pairs)", ylabel="ms per step",
             title=f"{title}: forward + backward")  # fmt: skip
    left.legend()
    width = 0.8 / len(PATHS)
    for k, name in enumerate(PATHS):
        right.bar(np.arange(len(batches)) + k * width, [r["paths"][name]["peak_bytes"] / 2**20 for r in results],
                  width, label=name)  # fmt: skip
    right.set_xticks(np.arange(len(batches)) + 0.4 - width / 2, [str(b) for b in batches])
    right.set(xlabel="batch size (pairs)", ylabel="peak tensor memory (MiB)", title="peak memory per step")
    figures.save(figure, path)


# Batch sizes, width and repeats per mode; on the GPU, B = 512 is where its targets are set.
CPU_SIZES = {"tiny": ((4, 16), 32, 1), "quick": ((32, 256), 600, 7), "full": ((32, 256, 1024), 600, 11)}
CUDA_SIZES = {"tiny": ((4, 16), 32, 1), "quick": ((32, 512), 600, 11), "full": ((32, 512, 4096), 600, 21)}


def _targets(results: list[dict], device: str) -> dict:
    """CPU: at B=256, 3x eager and 2x compiled. CUDA: at B=512, 5x eager, 2x compiled, 1.5x the
    SDPA pair, and within 2x of the bandwidth floor."""
    key, wanted = (256, {"eager reference": 3.0, "compiled reference": 2.0}) if device == "cpu" else (
        512, {"eager reference": 5.0, "compiled reference": 2.0, "SDPA pair": 1.5})
    at = next((r for r in results if r["batch"] == key), None)
    if at is None:
        return {}
    targets = {f"vs {name} at B={key}": target(at["speedup_of_fused"][name], ">=", value)
               for name, value in wanted.items()}  # fmt: skip
    if "fused_over_floor" in at:
        targets[f"time over bandwidth floor at B={key}"] = target(at["fused_over_floor"], "<=", 2.0)
    return targets


def run(context: RunContext) -> dict:
    """One part per dtype: float32 on the CPU; float32 and bfloat16 on CUDA. The context's
    checkpoint is given the figures so far (marked "partial") after every batch, so that a run
    stopped midway (a GPU session's time limit) keeps what it measured."""
    mode, device, progress, out_dir = context.mode, context.device, context.progress, context.out_dir
    on_cuda = device.startswith("cuda")
    batches, dim, repeats = (CUDA_SIZES if on_cuda else CPU_SIZES)[mode]
    dtypes = (torch.float32, torch.bfloat16) if on_cuda else (torch.float32,)
    bandwidth = copy_bandwidth(device) if on_cuda else None
    progress.reset(total=len(batches) * len(dtypes) + long_sequences.points_in(mode))
    sections, plots = [], []
    figures = {"device": device, "dim": dim, "copy_bandwidth_bytes_per_second": bandwidth,
               "sections": sections, "plots": plots}  # fmt: skip
    for dtype in dtypes:
        name = str(dtype).split(".")[-1]
        results = []
        section = {"dtype": str(dtype), "batches": results, "targets": {}}
        sections.append(section)
        for batch in batches:
            progress.set_description(f"ops: {name}, B={batch}")
            result = measure_batch(batch, dim, dtype, device, context.data_dir, repeats)
            if bandwidth is not None:
                result["floor_seconds"] = result["traffic_bytes"] / bandwidth
                result["fused_over_floor"] = result["paths"]["fused"]["seconds"] / result["floor_seconds"]
            results.append(result)
            section["targets"] = _targets(results, device)
            context.checkpoint({**figures, "partial": True})
            progress.update()
        plot_path = out_dir / ("ops.png" if dtype == torch.float32 else f"ops-{name}.png")
        plot(results, plot_path, f"soft_align + masked_pool, d={dim}, {device}, {name}")
        plots.append(plot_path.name)
    figures["long_sequences"] = long_sequences.run(mode=mode, device=device, out_dir=out_dir,
                                                   progress=progress)
    plots += figures["long_sequences"]["plots"]
    return figures


def table(ops: dict) -> str:
    """The section's results as a text table, printed when it ends."""
    lines = []
    if ops["copy_bandwidth_bytes_per_second"]:
        lines.append(f"Device copy bandwidth: {ops['copy_bandwidth_bytes_per_second'] / 1e12:.2f} TB/s "
                     "(read + write); floor = every op's inputs read once, outputs written once")  # fmt: skip
    for section in ops["sections"]:
        first = section["batches"][0]
        lines += [
            f"Ops: soft_align + masked_pool, forward + backward, d={ops['dim']}, "
            f"{section['dtype'].split('.')[-1]}, {ops['device']} (lengths from {first['lengths_from']})",
            f"  {'B':>5} {'padded La x Lb':>15}" + "".join(f"{name:>20}" for name in first["paths"])
            + (f"{'x floor':>10}" if "fused_over_floor" in first else ""),
        ]
        for r in section["batches"]:
            shape = f"{r['padded_shape_a'][1]} x {r['padded_shape_b'][1]}"
            cells = []
            for name, path in r["paths"].items():
                ratio = "" if name == "fused" else f" ({r['speedup_of_fused'][name]:.1f}x)"
                cells.append(f"{path['seconds'] * 1e3:.2f} ms{ratio}")
            floor = f"{r['fused_over_floor']:>10.1f}" if "fused_over_floor" in r else ""
            lines.append(f"  {r['batch']:>5} {shape:>15}" + "".join(f"{c:>20}" for c in cells) + floor)
            peaks = "".join(f"{path['peak_bytes'] / 2**20:>16.1f} MiB" for path in r["paths"].values())
            lines.append(f"  {'':>5} {'peak memory':>15}{peaks}")
        lines.append("  (x) = how many times longer than fused")
        lines += [target_line(f"fused {name}", t, 2, "x") for name, t in section["targets"].items()]
        lines.append("")
    if "long_sequences" in ops:
        lines.append(long_sequences.table(ops["long_sequences"]))
    return "\n".join(lines)


SECTION = Section("ops", run, table, measures_on_device=True)
