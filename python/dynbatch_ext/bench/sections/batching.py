"""Budgeted length bucketing against fixed batches of 32 and against numpy's argsort.

Two measurements:
  planning speed   plan_batches on N synthetic lengths (lognormal, 2..512, quadratic cost,
                   shuffled) vs numpy's stable argsort of the same lengths: the sort is the floor.
  batch quality    padding efficiency, batch count, batch-cost spread and batches over budget of
                   plan_batches vs a fixed random batch of 32 and a fixed batch of 32 sorted inside
                   shuffled pools of 100 batches, on built-in synthetic data and, when present,
                   SNLI dev pairs and ChnSentiCorp reviews.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ... import corpora
from ...batching import padding_stats, plan_batches
from .. import figures
from ..context import RunContext, Section
from ..length_cases import Case
from ..targets import target, target_line, verdict
from ..timing import compare_runs


FIXED_BATCH = 32
POOL_BATCHES = 100


def planning_speed(num_lengths: int, repeats: int, budget: float = 16 * 256**2) -> dict:
    """plan_batches against numpy's argsort, alternating, `repeats` times: the target is judged on
    the medians, and the per-repeat ratios show the run-to-run noise around them."""
    lengths = corpora.synthetic_lengths(num_lengths, seed=0)
    runs = compare_runs(
        {
            "plan_batches": lambda: plan_batches(lengths, budget, cost="quadratic", seed=0),
            "numpy_argsort": lambda: np.argsort(lengths, kind="stable"),
        },
        repeats=repeats,
    )
    plan, argsort = np.median(runs["plan_batches"]), np.median(runs["numpy_argsort"])
    ratios = np.array(runs["plan_batches"]) / np.array(runs["numpy_argsort"])
    return {
        "num_lengths": num_lengths,
        "budget": budget,
        "cost": "quadratic",
        "repeats": repeats,
        "plan_seconds": float(plan),
        "argsort_seconds": float(argsort),
        "plan_over_argsort": float(plan / argsort),
        "ratio_per_repeat": {"min": float(ratios.min()), "max": float(ratios.max())},
        "num_batches": len(plan_batches(lengths, budget, cost="quadratic", seed=0)),
        "target": target(float(plan / argsort), "<=", 1.0),
    }


def default_cases(size: int, data_dir: Path | None) -> tuple[list[Case], list[str]]:
    """Synthetic cases always; real-data cases when their files are in `data_dir`."""
    cases = [
        Case("synthetic single texts", corpora.synthetic_lengths(size, seed=1), 16 * 256**2),
        Case("synthetic pairs", corpora.synthetic_pair_lengths(size, seed=2), 8192),
    ]
    notes = []
    snli = data_dir / corpora.SNLI_DEV if data_dir else None
    if snli and snli.is_file():
        pairs = corpora.read_pairs_tsv(snli).token_lengths()
        cases += [
            Case("SNLI dev pairs", pairs, 8192,
                 targets={"efficiency": (">=", 0.96), "cost_max_over_median": ("<=", 1.15),
                          "batches_over_budget": ("==", 0)}),
            Case("SNLI dev pairs", pairs, 32768,
                 targets={"efficiency": (">=", 0.90), "cost_max_over_median": ("<=", 1.15),
                          "batches_over_budget": ("==", 0)}),
        ]  # fmt: skip
    else:
        notes.append(f"the built-in SNLI dev cases were skipped: no {corpora.SNLI_DEV} in the data "
                     f"folder ({data_dir or 'none found'}; --data-dir names one)")  # fmt: skip
    chn = data_dir / corpora.CHNSENTICORP if data_dir else None
    if chn and chn.is_file():
        cases.append(
            Case("ChnSentiCorp reviews", corpora.character_lengths(corpora.read_texts(chn)),
                 16 * 256**2, oversize="skip",
                 targets={"efficiency": (">=", 0.98), "cost_max_over_median": ("<=", 1.15),
                          "batches_over_budget": ("==", 0)},
                 note="reviews over 1024 characters cost more than the budget alone; every "
                      "strategy is measured on the others")  # fmt: skip
        )
    else:
        notes.append(f"the built-in ChnSentiCorp case was skipped: no {corpora.CHNSENTICORP} in the "
                     f"data folder ({data_dir or 'none found'}; --data-dir names one)")  # fmt: skip
    return cases, notes


def fixed_random(indices: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    shuffled = rng.permutation(indices)
    return [shuffled[i : i + FIXED_BATCH] for i in range(0, len(shuffled), FIXED_BATCH)]


def fixed_sorted_in_pools(lengths: np.ndarray, indices: np.ndarray, rng) -> list[np.ndarray]:
    """The common bucket iterator: shuffle, sort each pool of 100 batches by length, cut, shuffle."""
    shuffled = rng.permutation(indices)
    pool = FIXED_BATCH * POOL_BATCHES
    batches = []
    for start in range(0, len(shuffled), pool):
        chunk = shuffled[start : start + pool]
        rows = lengths[chunk]
        order = np.lexsort(rows.T[::-1]) if rows.ndim == 2 else np.argsort(rows, kind="stable")
        chunk = chunk[order]
        batches += [chunk[i : i + FIXED_BATCH] for i in range(0, len(chunk), FIXED_BATCH)]
    return [batches[i] for i in rng.permutation(len(batches))]


def batch_quality(case: Case) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped oversize samples are reported below instead
        ours = plan_batches(case.lengths, case.budget, cost=case.cost, oversize=case.oversize, seed=0)
    kept = np.sort(np.concatenate(ours))
    rng = np.random.default_rng(0)
    strategies = {
        "budgeted (dynbatch_ext)": ours,
        "fixed 32, random": fixed_random(kept, rng),
        "fixed 32, sorted in pools": fixed_sorted_in_pools(case.lengths, kept, rng),
    }
    result = {
        "case": case.name,
        "num_samples": len(case.lengths),
        "pairs": case.lengths.ndim == 2,
        "cost": case.cost,
        "budget": case.budget,
        "samples_left_out": len(case.lengths) - len(kept),
        "note": case.note,
        "strategies": {},
    }
    per_batch = {}
    for name, batches in strategies.items():
        stats = padding_stats(case.lengths, batches, cost=case.cost, budget=case.budget)
        summary = stats.summary()
        costs = stats.batch_costs
        summary["cost_max_over_min"] = float(costs.max() / costs.min()) if costs.min() > 0 else None
        result["strategies"][name] = summary
        per_batch[name] = {"efficiency": stats.batch_efficiency, "cost": stats.batch_costs}
    ours_summary = result["strategies"]["budgeted (dynbatch_ext)"]
    result["targets"] = {
        metric: target(ours_summary[metric], op, bound) for metric, (op, bound) in case.targets.items()
    }
    return result, per_batch


def plot(cases: list[dict], per_batch: list[dict], path: Path) -> None:
    """One row per case: padding efficiency per batch, and batch cost / budget per batch."""
    plt = figures.pyplot()

    colours = {"budgeted (dynbatch_ext)": "tab:green", "fixed 32, random": "tab:red",
               "fixed 32, sorted in pools": "tab:orange"}  # fmt: skip
    figure, axes = plt.subplots(len(cases), 2, figsize=(12, 3.2 * len(cases)), squeeze=False)
    for row, (case, batches) in enumerate(zip(cases, per_batch)):
        title = f"{case['case']} (budget {case['budget']:,.0f}, {case['cost']} cost)"
        left, right = axes[row]
        for name, values in batches.items():
            efficiency = np.sort(values["efficiency"])
            left.plot(np.linspace(0, 1, len(efficiency)), efficiency, label=name, color=colours[name])
            cost = values["cost"] / case["budget"]
            right.plot(np.arange(len(cost)), cost, ".", markersize=2, label=name, color=colours[name])
        left.set(title=title, xlabel="fraction of batches", ylabel="real / padded tokens", ylim=(0, 1.02))
        right.axhline(1.0, color="black", linewidth=1, linestyle="--", label="budget")
        right.set(title="batch cost, in batch order", xlabel="batch", ylabel="cost / budget")
        right.set_yscale("log")
        if row == 0:
            left.legend(loc="lower right", fontsize=8)
            right.legend(loc="lower right", fontsize=8, markerscale=4)
    figures.save(figure, path)


def run(context: RunContext) -> dict:
    """Planning speed, then batch quality on the user's case (if any) and the built-in ones."""
    planning_lengths, repeats, case_size = {
        "tiny": (20_000, 1, 2_000),
        "quick": (1_000_000, 3, 50_000),
        "full": (10_000_000, 5, 200_000),
    }[context.mode]
    cases, notes = default_cases(case_size, context.data_dir)
    if context.user_case is not None:
        cases.insert(0, context.user_case)
    progress = context.progress
    progress.reset(total=1 + len(cases))
    progress.set_description("batching: planning speed")
    planning = planning_speed(planning_lengths, repeats)
    progress.update()
    results, per_batch = [], []
    for case in cases:
        progress.set_description(f"batching: {case.name}")
        result, batches = batch_quality(case)
        results.append(result)
        per_batch.append(batches)
        progress.update()
    plot_path = context.out_dir / "batching.png"
    plot(results, per_batch, plot_path)
    return {"planning": planning, "cases": results, "notes": notes, "plots": [plot_path.name]}


def table(batching: dict) -> str:
    """The section's results as a text table, printed when it ends."""
    planning = batching["planning"]
    spread = planning["ratio_per_repeat"]
    noise = (" (the repeats straddle 1.00: within this machine's run-to-run noise)"
             if spread["min"] <= 1.0 <= spread["max"] else "")  # fmt: skip
    lines = [
        f"Planning {planning['num_lengths']:,} lengths (quadratic cost, shuffled): "
        f"plan_batches {planning['plan_seconds']:.3f} s vs numpy stable argsort "
        f"{planning['argsort_seconds']:.3f} s -> {planning['plan_over_argsort']:.2f}x the sort, median of "
        f"{planning['repeats']} alternating repeats (each repeat {spread['min']:.2f}-{spread['max']:.2f}x) "
        f"(target <= 1.00: {verdict(planning['target'])}){noise}",
        "",
        "  efficiency: real / padded tokens; batches: how many; cost max/med and max/min: the",
        "  costliest batch over the median one and over the cheapest (1 = every batch costs the same);",
        "  over budget: batches costing more than the budget.",
        "",
    ]
    header = f"  {'strategy':<28}{'efficiency':>11}{'batches':>9}{'cost max/med':>14}{'max/min':>9}{'over budget':>13}"
    for case in batching["cases"]:
        title = f"{case['case']}: {case['num_samples']:,} samples, budget {case['budget']:,.0f} ({case['cost']})"
        if case["samples_left_out"]:
            title += f", {case['samples_left_out']} left out (alone over budget)"
        lines += [title, header]
        for name, s in case["strategies"].items():
            spread = "-" if s["cost_max_over_min"] is None else f"{s['cost_max_over_min']:.1f}"
            lines.append(
                f"  {name:<28}{s['efficiency']:>11.3f}{s['num_batches']:>9}"
                f"{s['cost_max_over_median']:>14.2f}{spread:>9}{s['batches_over_budget']:>13}"
            )
        lines += [target_line(metric, t) for metric, t in case["targets"].items()]
        if case["note"]:
            lines.append(f"  ({case['note']})")
        lines.append("")
    lines += [f"note: {n}" for n in batching["notes"]]
    return "\n".join(lines)


SECTION = Section("batching", run, table)
