"""ESIM training throughput: the common baseline against budgeted steps and the fused model.

Three ways to train the same ESIM on the same pairs for the same epochs, in one run:
  (a) fixed 32 + reference   random batches of 32, LSTMs over the padded tensors, the pure
                             PyTorch reference ops (what most ESIM code does)
  (b) budgeted steps + fused budgeted length-sorted micro-batches grouped into steps of ~32
                             samples with exact loss weights; padding-free LSTMs, fused ops
  (c) budgeted, step/batch   the same micro-batches without the 32 cap, one optimizer step
                             each (what the naive dynamic loader does): the effective batch
                             swings with the lengths
(a) and (b) run again under bfloat16 autocast, so that the speedup is shown at the same
precision on both sides.
Measured: training samples/s (training steps only), validation accuracy after the last epoch,
samples per step (min/median/max) and the per-step loss, whose curves the plot compares.

The speed target is what padding removal can give: where a step's time follows the tokens its
LSTMs run over, (b)/(a) cannot beat (a)'s padded tokens per sample over (b)'s (the ceiling), and
the LSTMs are most of ESIM's time. (b) must reach 0.9 of that ceiling at both precisions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ... import corpora
from ...training import TrainConfig, synthetic_pairs, train
from ...training.data import split, subset
from ...training.metrics import smooth
from ...training.precision import autocast_problem
from .. import figures
from ..context import RunContext, Section
from ..targets import target, target_line

BASELINE_OPTIONS = dict(batching="fixed", batch_size=32, fused=False, lstm="padded")
OURS_OPTIONS = dict(batching="budget", step_target=32.0)
CONFIGS = {
    "(a) fixed 32 + reference": BASELINE_OPTIONS,
    "(b) budgeted steps of 32 + fused": OURS_OPTIONS,
    "(c) budgeted, a step per batch + fused": dict(batching="budget", step_target=None),
    "(a) bfloat16 autocast": dict(BASELINE_OPTIONS, autocast="bfloat16"),
    "(b) bfloat16 autocast": dict(OURS_OPTIONS, autocast="bfloat16"),
}
BASELINE, OURS, NAIVE, BASELINE_BF16, OURS_BF16 = CONFIGS
# (baseline, ours) at each precision the targets hold at.
PRECISIONS = {"float32": (BASELINE, OURS), "bfloat16": (BASELINE_BF16, OURS_BF16)}
# Pairs per data set (None: all), model width and epochs of each mode.
SIZES = {
    "tiny": dict(pairs=240, dims=8, epochs=1),
    "quick": dict(pairs=2500, dims=64, epochs=1),
    # One epoch: samples/s does not depend on it, and the full run has a 15-minute budget.
    "full": dict(pairs=None, dims=300, epochs=1),
}
SYNTHETIC_PAIRS = 6000  # the synthetic task's size where SIZES says "all"
CEILING_SHARE_TARGET = 0.9  # (b)/(a) in samples/s, over the ceiling from padding alone
ACCURACY_TOLERANCE = 0.01  # (b) no more than one point below (a)


def _data_sets(mode: str, data_dir: Path | None, user_pairs: Path | None, seed: int):
    limit = SIZES[mode]["pairs"]
    sets = [("synthetic pairs", synthetic_pairs(limit or SYNTHETIC_PAIRS, seed=seed))]
    snli = data_dir / corpora.SNLI_DEV if data_dir else None
    if snli is not None and snli.is_file():
        sets.append(("SNLI dev", corpora.read_pairs_tsv(snli)))
    if user_pairs is not None:
        sets.append((f"your data ({user_pairs.name})", corpora.read_pairs_tsv(user_pairs)))
    for name, data in sets:
        if limit is not None and len(data) > limit:
            data = subset(data, np.random.default_rng(seed).permutation(len(data))[:limit])
        yield name, split(data, 0.2, seed)


def _summary(result, name: str) -> dict:
    steps = [r for r in result.history if r["kind"] == "step"]
    sizes = np.array([r["samples"] for r in steps])
    losses = np.array([r["loss"] for r in steps])
    trend = np.array(smooth(losses.tolist(), 20))
    padded = sum(r["padded_tokens"] for r in steps)
    return {
        "samples_per_second": result.samples_per_second,
        "valid_accuracy": result.valid_accuracy,
        "steps": result.steps,
        # What the LSTMs run over: padded tokens per sample, and the real share of them.
        "padded_tokens_per_sample": padded / sizes.sum(),
        "padding_efficiency": sum(r["tokens"] for r in steps) / padded,
        "samples_per_step": {"min": int(sizes.min()), "median": float(np.median(sizes)),
                             "max": int(sizes.max())},  # fmt: skip
        # Step-to-step wobble of the training loss around its trend (EMA, span 20).
        "loss_noise": float(np.std(losses - trend)),
        "loss_per_step": losses.tolist(),
        "samples_per_step_all": sizes.astype(int).tolist(),
    }


def run(context: RunContext, seed: int = 0) -> dict:
    """Every configuration this device can train on the synthetic pairs, SNLI dev (where present)
    and the user's pairs (where --data holds pairs), on the context's device type."""
    size, progress, out_dir = SIZES[context.mode], context.progress, context.out_dir
    device = torch.device(context.device).type  # train() places a run by type
    user = context.user_case
    user_pairs = user.source if user is not None and user.is_pairs else None
    cases = []
    configs, not_run = _runnable_configs(torch.device(device))
    data_sets = list(_data_sets(context.mode, context.data_dir, user_pairs, seed))
    progress.reset(total=len(data_sets) * len(configs))
    for name, (train_pairs, valid_pairs) in data_sets:
        runs = {}
        for label, options in configs.items():
            progress.set_description(f"training: {name}, {label}")
            config = TrainConfig(
                out_dir=str(out_dir / "training-runs" / f"{name}-{label}".replace(" ", "_")),
                epochs=size["epochs"], embedding_dim=size["dims"], hidden_size=size["dims"],
                dropout=0.2, lr=1e-3, seed=seed, device=device, progress=False,
                save_checkpoints=False, resume=False, **options,
            )  # fmt: skip
            runs[label] = _summary(train(config, data=(train_pairs, valid_pairs)), label)
            progress.update()
        # If a step's time followed its padded tokens alone, removing padding could give this
        # much and no more: the ceiling of (b)/(a) with the same LSTM kernels.
        ceiling = (runs[BASELINE]["padded_tokens_per_sample"]
                   / runs[OURS]["padded_tokens_per_sample"])  # fmt: skip
        speedups, targets = {}, {}
        for precision, (base_label, ours_label) in PRECISIONS.items():
            if base_label not in runs:
                continue
            base, ours = runs[base_label], runs[ours_label]
            speedups[precision] = ours["samples_per_second"] / base["samples_per_second"]
            targets[f"speedup (b)/(a) over the ceiling, {precision}"] = target(
                speedups[precision] / ceiling, ">=", CEILING_SHARE_TARGET)
            targets[f"accuracy (b)-(a), {precision}"] = target(
                ours["valid_accuracy"] - base["valid_accuracy"], ">=", -ACCURACY_TOLERANCE)
        cases.append({
            "case": name,
            "train_pairs": len(train_pairs),
            "valid_pairs": len(valid_pairs),
            "epochs": size["epochs"],
            "dims": size["dims"],
            "runs": runs,
            "speedup_b_over_a": speedups,
            "padded_tokens_a_over_b": ceiling,
            "targets": targets,
        })
    plot = _plot(cases, out_dir / "training.png")
    notes = ["throughput counts training steps only (no evaluation); every run starts from the "
             "same seed, so (a), (b), (c) share initial weights"]
    notes += [f"{label}: not run, {reason}" for label, reason in not_run.items()]
    return {"device": device, "cases": cases, "plots": [plot.name], "not_run": not_run,
            "notes": notes}


def _runnable_configs(device: torch.device) -> tuple[dict, dict]:
    """The configurations this device can train, and {label: why not} for the others (bfloat16
    LSTMs need AVX-512-BF16 or AMX on the CPU)."""
    problems = {label: autocast_problem(options.get("autocast"), device)
                for label, options in CONFIGS.items()}  # fmt: skip
    configs = {label: CONFIGS[label] for label, problem in problems.items() if problem is None}
    not_run = {label: problem for label, problem in problems.items() if problem is not None}
    return configs, not_run


def _plot(cases: list[dict], path: Path) -> Path:
    plt = figures.pyplot()

    colours = dict(zip(CONFIGS, ("tab:gray", "tab:blue", "tab:red", "silver", "tab:cyan")))
    fig, axes = plt.subplots(len(cases), 2, figsize=(14, 4.5 * len(cases)), squeeze=False)
    for (ax_speed, ax_loss), case in zip(axes, cases):
        labels = list(case["runs"])
        rates = [case["runs"][k]["samples_per_second"] for k in labels]
        bars = ax_speed.barh(labels, rates, color=[colours[k] for k in labels])
        for bar, k in zip(bars, labels):
            ax_speed.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                          f" acc {case['runs'][k]['valid_accuracy']:.3f}", va="center")  # fmt: skip
        ax_speed.invert_yaxis()
        ax_speed.set_xlim(0, max(rates) * 1.3)  # room for the accuracy labels
        ax_speed.set_xlabel("training samples / s")
        ax_speed.set_title(f"{case['case']}: samples/s, accuracy after {case['epochs']} epoch(s)")
        for k in labels:
            run = case["runs"][k]
            seen = np.cumsum(run["samples_per_step_all"])
            ax_loss.plot(seen, run["loss_per_step"], color=colours[k], alpha=0.15, linewidth=0.7)
            ax_loss.plot(seen, smooth(run["loss_per_step"], 20), color=colours[k],
                         label=f"{k} (noise {run['loss_noise']:.3f})")  # fmt: skip
        ax_loss.set_xlabel("training samples seen")
        ax_loss.set_ylabel("training loss per step")
        ax_loss.set_title(f"{case['case']}: loss per step (EMA 20; raw faint)")
        ax_loss.grid(alpha=0.3)
        ax_loss.legend(fontsize=8)
    return figures.save(fig, path)


def table(section: dict) -> str:
    """The section's results as a text table, printed when it ends."""
    lines = ["ESIM training: samples/s of training steps, validation accuracy after the same epochs"]
    for case in section["cases"]:
        lines += [
            f"{case['case']}: {case['train_pairs']:,} training / {case['valid_pairs']:,} validation "
            f"pairs, d={case['dims']}, {case['epochs']} epoch(s), {section['device']}",
            f"  {'configuration':<42}{'samples/s':>10}{'accuracy':>10}{'steps':>7}"
            f"{'samples/step min-med-max':>27}{'loss noise':>12}{'real/padded':>13}",
        ]
        for name, r in case["runs"].items():
            per = r["samples_per_step"]
            spread = f"{per['min']}-{per['median']:.0f}-{per['max']}"
            lines.append(f"  {name:<42}{r['samples_per_second']:>10.0f}{r['valid_accuracy']:>10.3f}"
                         f"{r['steps']:>7}{spread:>27}{r['loss_noise']:>12.3f}"
                         f"{r['padding_efficiency']:>13.2f}")  # fmt: skip
        lines += [target_line(name, t, 2) for name, t in case["targets"].items()]
        # Where time follows padded tokens, removing padding gives this much and no more.
        lines.append(f"  ceiling from padding alone: {case['padded_tokens_a_over_b']:.2f}x "
                     "((a)'s padded tokens per sample over (b)'s)")  # fmt: skip
        lines.append("")
    lines += [f"note: {n}" for n in section["notes"]]
    return "\n".join(lines) + "\n"


SECTION = Section("training", run, table, measures_on_device=True)
