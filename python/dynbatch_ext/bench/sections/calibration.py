"""Calibrated budgets against a memory limit: peak memory of every step of an epoch.

For two models (a small transformer encoder, whose attention memory is quadratic in the length,
and ESIM), calibrate() fits the cost model to the training step and picks the budget for a
memory limit; then every batch of one epoch runs one training step, and its peak tensor memory
(fixed memory included) is taken as a fraction of the limit. Next to it, the same for random
fixed batches of 32: how far their peaks spread, and how many break the limit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ... import corpora
from ...batching import calibrate, plan_batches
from ...batching.memory import peak_bytes
from ...nn import ESIM
from .. import figures
from ..context import RunContext, Section
from ..targets import target, target_line

SIZES = {"tiny": dict(samples=200, width=16), "quick": dict(samples=600, width=32),
         "full": dict(samples=2000, width=64)}  # fmt: skip


def transformer_probe(width: int = 32, seed: int = 0):
    """(model, step, make_batch) of a 2-layer encoder with math attention (B*h*L*L kept)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(seed)
    layer = torch.nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    optimizer = torch.optim.Adam(model.parameters())

    def step(x):
        optimizer.zero_grad(set_to_none=True)
        with sdpa_kernel(SDPBackend.MATH):
            model(x).square().mean().backward()
        optimizer.step()

    return model, step, lambda batch, length: torch.randn(batch, length, width)


def esim_probe(width: int = 32, vocab: int = 100, seed: int = 0):
    """(model, step, make_batch) of an ESIM classifier step on (premise, hypothesis) batches."""
    torch.manual_seed(seed)
    model = ESIM(vocab, width, width, dropout=0.1)
    optimizer = torch.optim.Adam(model.parameters())

    def step(batch):
        premise, len_p, hypothesis, len_h, labels = batch
        optimizer.zero_grad(set_to_none=True)
        logits = model(premise, len_p, hypothesis, len_h)
        torch.nn.functional.cross_entropy(logits, labels).backward()
        optimizer.step()

    def make_batch(batch, shape):
        lp, lh = shape
        return (torch.randint(1, vocab, (batch, lp)), torch.full((batch,), lp),
                torch.randint(1, vocab, (batch, lh)), torch.full((batch,), lh),
                torch.randint(0, 3, (batch,)))  # fmt: skip

    return model, step, make_batch


def _padded_shape(lengths: np.ndarray, batch: np.ndarray):
    rows = lengths[batch]
    return int(rows.max()) if rows.ndim == 1 else (int(rows[:, 0].max()), int(rows[:, 1].max()))


def _epoch_fractions(step, make_batch, lengths, batches, fixed, limit, device) -> np.ndarray:
    fractions = []
    for batch in batches:
        inputs = make_batch(len(batch), _padded_shape(lengths, batch))
        fractions.append((fixed + peak_bytes(lambda: step(inputs), device)) / limit)
    return np.array(fractions)


def _case(name, probe, lengths, limit, device, progress) -> dict:
    model, step, make_batch = probe
    result = calibrate(step, make_batch, lengths, memory_limit=limit, model=model,
                       device=device, progress=False)  # fmt: skip
    # batch_overhead=1: toward the fewest, fullest batches, since the point here is to use the
    # memory (the default trades some fill for less padding).
    ours = plan_batches(lengths, result.budget, cost=result.cost, seed=0, batch_overhead=1.0)
    order = np.random.default_rng(0).permutation(len(lengths))
    fixed32 = [order[i : i + 32] for i in range(0, len(order), 32)]
    rows = {}
    for label, batches in (("calibrated budget", ours), ("fixed 32, random", fixed32)):
        progress.set_description(f"calibration: {name}, {label}")
        f = _epoch_fractions(step, make_batch, lengths, batches, result.fixed_bytes, limit, device)
        rows[label] = {"steps": len(f), "max": float(f.max()), "median": float(np.median(f)),
                       "min": float(f.min()), "over_limit": int((f > 1).sum()),
                       "fractions": f.tolist()}  # fmt: skip
        progress.update()
    calibrated = rows["calibrated budget"]
    return {
        "case": name, "memory_limit": limit, "num_samples": len(lengths),
        "fit": {"cost": list(result.cost.coefficients), "budget": result.budget,
                "fixed_bytes": result.fixed_bytes, "step_overhead_bytes": result.step_overhead_bytes,
                "max_relative_error": result.max_relative_error,
                "verification_error": result.verification_error},
        "strategies": rows,
        "targets": {"max fraction of the limit": target(calibrated["max"], "<=", 1.0),
                    "median fraction of the limit": target(calibrated["median"], ">=", 0.85)},
    }  # fmt: skip


def run(context: RunContext) -> dict:
    size, progress = SIZES[context.mode], context.progress
    n, width = size["samples"], size["width"]
    device = torch.device(context.device)
    texts = corpora.synthetic_lengths(n, seed=3, low=4, high=256)
    pairs = corpora.synthetic_pair_lengths(n, seed=3)
    # Limits a few times a median fixed batch's need, so that budgets hold several samples.
    cases = [
        ("transformer encoder, synthetic texts", transformer_probe(width), texts, 24 * 2**20 * width / 32),
        ("ESIM, synthetic SNLI-like pairs", esim_probe(width), pairs, 12 * 2**20 * width / 32),
    ]
    progress.reset(total=2 * len(cases))
    results = [_case(name, probe, lengths, float(limit), device, progress)
               for name, probe, lengths, limit in cases]  # fmt: skip
    plot_path = context.out_dir / "calibration.png"
    _plot(results, plot_path)
    return {"device": str(device), "cases": results, "plots": [plot_path.name]}


def _plot(cases: list[dict], path: Path) -> None:
    plt = figures.pyplot()

    fig, axes = plt.subplots(1, len(cases), figsize=(6.5 * len(cases), 4), squeeze=False)
    for ax, case in zip(axes[0], cases):
        for (label, row), colour in zip(case["strategies"].items(), ("tab:green", "tab:red")):
            ax.plot(row["fractions"], ".", color=colour, markersize=3,
                    label=f"{label}: max {row['max']:.2f}, median {row['median']:.2f}")  # fmt: skip
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="memory limit")
        ax.set(yscale="log", xlabel="step", ylabel="peak memory / limit",
               title=f"{case['case']} (limit {case['memory_limit'] / 2**20:.0f} MiB)")  # fmt: skip
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    figures.save(fig, path)


def table(section: dict) -> str:
    """The section's results as a text table, printed when it ends."""
    lines = ["Calibrated budgets: peak memory of every step of one epoch, as a fraction of the limit "
             f"({section['device']})"]  # fmt: skip
    for case in section["cases"]:
        fit = case["fit"]
        lines += [
            f"{case['case']}: {case['num_samples']:,} samples, limit "
            f"{case['memory_limit'] / 2**20:.0f} MiB; the fit misses the budget's own batches by "
            f"{fit['verification_error']:.1%} of the limit (its small probes by up to "
            f"{fit['max_relative_error']:.0%} of their peaks)",
            f"  {'strategy':<22}{'steps':>7}{'max':>8}{'median':>8}{'min':>8}{'max/min':>9}{'over limit':>12}",
        ]
        for name, r in case["strategies"].items():
            lines.append(f"  {name:<22}{r['steps']:>7}{r['max']:>8.2f}{r['median']:>8.2f}"
                         f"{r['min']:>8.2f}{r['max'] / r['min']:>9.1f}{r['over_limit']:>12}")  # fmt: skip
        lines += [target_line(name, t, 2) for name, t in case["targets"].items()]
        lines.append("")
    return "\n".join(lines)


SECTION = Section("calibration", run, table, measures_on_device=True)
