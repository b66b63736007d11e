"""`python -m dynbatch_ext bench`: measure what the package buys, against the plain way, in one run.

Prints a table, and writes results.json (machine, versions, every figure) and PNG plots into the
output folder it names at the end.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import datasets
from .batching import plan_batches


SECTIONS = ("batching", "ops", "training", "calibration")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="mode", const="quick",
                      help="a run of well under a minute (1M lengths for the planning speed)")
    size.add_argument("--tiny", action="store_const", dest="mode", const="tiny",
                      help="seconds; for smoke tests, figures not meaningful")
    parser.set_defaults(mode="full")
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="output folder (default: bench-results)")
    parser.add_argument("--data", type=Path, default=None,
                        help="your own data, measured first: an SNLI-format TSV (pairs), or a "
                             "CSV/TSV whose last column is the text (single texts)")
    parser.add_argument("--budget", type=float, default=None,
                        help="budget for --data (default: 8192 for pairs, 16*256**2 otherwise)")
    parser.add_argument("--unit", choices=("tokens", "chars"), default="tokens",
                        help="length unit of single texts in --data (default: whitespace tokens)")
    parser.add_argument("--device", default="cpu",
                        help="device of the ops benchmark: cpu (default) or cuda[:N]")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        metavar="SECTION", help=f"which to measure: {', '.join(SECTIONS)} "
                                                "(default: all)")  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with snli_1.0_dev.tsv and chnsenticorp_htl_all.csv "
                             "(default: $DYNBATCH_DATA_DIR or ../shared/data); the synthetic "
                             "cases need none")  # fmt: skip


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _target_line(name: str, t: dict, digits: int = 3, unit: str = "") -> str:
    verdict = "met" if t["met"] else "MISSED"
    return f"  target {name} {t['op']} {t['value']}{unit}: {t['measured']:.{digits}f}{unit} ({verdict})"


def _format_table(batching: dict) -> str:
    planning = batching["planning"]
    lines = [
        f"Planning {planning['num_lengths']:,} lengths (quadratic cost, shuffled): "
        f"plan_batches {planning['plan_seconds']:.3f} s vs numpy stable argsort "
        f"{planning['argsort_seconds']:.3f} s -> {planning['plan_over_argsort']:.2f}x the sort "
        f"(target <= 1.00: {'met' if planning['target']['met'] else 'MISSED'})",
        "",
    ]
    header = f"  {'strategy':<28}{'efficiency':>11}{'batches':>9}{'cost max/med':>14}{'max/min':>9}{'over budget':>13}"
    for case in batching["cases"]:
        title = f"{case['case']}: {case['num_samples']:,} samples, budget {case['budget']:,.0f} ({case['cost']})"
        if case["samples_left_out"]:
            title += f", {case['samples_left_out']} left out (alone over budget)"
        lines += [title, header]
        for name, s in case["strategies"].items():
            spread = s["cost_max_over_min"]
            lines.append(
                f"  {name:<28}{s['efficiency']:>11.3f}{s['num_batches']:>9}"
                f"{s['cost_max_over_median']:>14.2f}{spread if spread is None else format(spread, '.1f'):>9}"
                f"{s['batches_over_budget']:>13}"
            )
        lines += [_target_line(metric, t) for metric, t in case["targets"].items()]
        lines.append("")
    lines += [f"note: {n}" for n in batching["notes"]]
    return "\n".join(lines)


def _format_ops_table(ops: dict) -> str:
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
        lines += [_target_line(f"fused {name}", t, 2, "x") for name, t in section["targets"].items()]
        lines.append("")
    return "\n".join(lines)


def _format_training_table(section: dict) -> str:
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
        lines += [_target_line(name, t, 2) for name, t in case["targets"].items()]
        # Where time follows padded tokens, removing padding gives this much and no more.
        lines.append(f"  ceiling from padding alone: {case['padded_tokens_a_over_b']:.2f}x "
                     "((a)'s padded tokens per sample over (b)'s)")  # fmt: skip
        lines.append("")
    lines += [f"note: {n}" for n in section["notes"]]
    return "\n".join(lines) + "\n"


def _format_calibration_table(section: dict) -> str:
    lines = ["Calibrated budgets: peak memory of every step of one epoch, as a fraction of the limit "
             f"({section['device']})"]  # fmt: skip
    for case in section["cases"]:
        fit = case["fit"]
        lines += [
            f"{case['case']}: {case['num_samples']:,} samples, limit "
            f"{case['memory_limit'] / 2**20:.0f} MiB, fit error on the probes at most "
            f"{fit['max_relative_error']:.1%}",
            f"  {'strategy':<22}{'steps':>7}{'max':>8}{'median':>8}{'min':>8}{'max/min':>9}{'over limit':>12}",
        ]
        for name, r in case["strategies"].items():
            lines.append(f"  {name:<22}{r['steps']:>7}{r['max']:>8.2f}{r['median']:>8.2f}"
                         f"{r['min']:>8.2f}{r['max'] / r['min']:>9.1f}{r['over_limit']:>12}")  # fmt: skip
        lines += [_target_line(name, t, 2) for name, t in case["targets"].items()]
        lines.append("")
    return "\n".join(lines)


def _check_device(name: str) -> str:
    import torch

    from . import with_cuda

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device; use cpu or cuda[:N]") from None
    if device.type == "cpu":
        return "cpu"
    if device.type != "cuda":
        raise ValueError(f"--device {name}: only cpu and cuda are supported")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: torch sees no CUDA device here")
    if not with_cuda():
        raise ValueError(f"--device {name}: this build of dynbatch_ext has no CUDA kernels; "
                         "rebuild it against a CUDA torch")  # fmt: skip
    return str(device)


def run(args: argparse.Namespace) -> int:
    from .benchmarks import batching, calibration, environment, ops, training

    data_dir = args.data_dir if args.data_dir is not None else datasets.default_data_dir()
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise ValueError(f"--data-dir {args.data_dir}: no such folder")
    device = _check_device(args.device)
    extra, extra_pairs = (), None
    if args.data is not None:
        if not args.data.is_file():
            raise ValueError(f"--data {args.data}: no such file")
        case = batching.user_case(args.data, args.budget, args.unit)
        plan_batches(case.lengths, case.budget, cost=case.cost)  # fails now, in one line, if it cannot fit
        extra = (case,)
        extra_pairs = args.data if case.lengths.ndim == 2 else None
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results = {"mode": args.mode, "environment": environment.describe(device)}

    def save(**section: dict) -> None:  # sets a section's figures and rewrites results.json
        results.update(section)
        (out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))

    measure = {
        "batching": lambda progress: batching.run(
            mode=args.mode, data_dir=data_dir, out_dir=out, progress=progress, extra_cases=extra),
        "ops": lambda progress: ops.run(
            mode=args.mode, data_dir=data_dir, out_dir=out, device=device, progress=progress,
            checkpoint=lambda so_far: save(ops=so_far)),
        "training": lambda progress: training.run(
            mode=args.mode, data_dir=data_dir, out_dir=out, device=device.split(":")[0],
            progress=progress, extra_pairs=extra_pairs),
        "calibration": lambda progress: calibration.run(
            mode=args.mode, out_dir=out, device=device, progress=progress),
    }  # fmt: skip
    tables = {"batching": _format_table, "ops": _format_ops_table,
              "training": _format_training_table, "calibration": _format_calibration_table}  # fmt: skip
    sections = [name for name in SECTIONS if name in args.sections]  # in the usual order
    env = results["environment"]
    gpu = f" | {env['gpu']} (driver {env['driver']}, CUDA {env['cuda']})" if "gpu" in env else ""
    print(f"dynbatch_ext {env['dynbatch_ext']} | torch {env['torch']} | {env['cpu']} "
          f"({env['cpu_cores']} cores){gpu} | {args.mode} mode\n", flush=True)  # fmt: skip
    with tqdm(unit="step", leave=False) as progress:
        for name in sections:
            progress.set_description(name)
            # Each section is saved and shown when done: a later one that fails loses nothing.
            save(**{name: measure[name](progress)})
            progress.write(tables[name](results[name]))
    plots = [p for name in sections for p in results[name]["plots"]]
    print(f"results.json and plots ({', '.join(plots)}) are in {out.resolve()}/")
    return 0
