"""`python -m dynbatch_ext bench`: measure what the package buys, against the plain way, in one run.

Prints a table, and writes results.json (machine, versions, every figure) and PNG plots into the
output folder it names at the end.
"""
from __future__ import annotations

import argparse
import json
import re
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import corpora, with_cuda
from ..batching import plan_batches
from ..training.text import check_labels
from . import (batch_quality, calibrated_budgets, environment, esim_training, figures, op_speed,
               streaming, transformer_training)
from .tables import TABLES

SECTIONS = ("batching", "streaming", "ops", "training", "transformer", "calibration")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="mode", const="quick",
                      help="a run of about 2 minutes on 2 cores (smaller data and models; 1M "
                           "lengths for the planning speed)")
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
    parser.add_argument("--unit", choices=("auto", "tokens", "chars"), default="auto",
                        help="length unit of single texts in --data (default auto: whitespace "
                             "tokens, or characters for text without spaces such as Chinese)")
    parser.add_argument("--oversize", choices=("error", "alone", "skip"), default="error",
                        help="--data's samples that alone cost more than the budget: an error "
                             "(default), a batch of their own, or left out (counted)")
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


def _check_device(name: str) -> str:
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


def _timing_line(name: str, section: dict) -> str:
    line = f"({name}: {section['seconds']:.0f} s"
    load = section.get("load")
    if load and load["under_load"]:
        line += (f"; MEASURED UNDER LOAD: other processes took {load['foreign_cpu_share']:.0%} of the "
                 "machine's CPU time, so its timings and ratios are not this package's alone; "
                 "run again on an idle machine")  # fmt: skip
    return line + ")"


def run(args: argparse.Namespace) -> int:
    figures.pyplot()  # fails now, not after minutes of measuring, without matplotlib
    if "transformer" in args.sections:
        transformer_training.check_available()  # the hf extra, likewise
    data_dir = args.data_dir if args.data_dir is not None else corpora.default_data_dir()
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise ValueError(f"--data-dir {args.data_dir}: no such folder")
    device = _check_device(args.device)
    extra, extra_pairs = (), None
    if args.data is not None:
        if not args.data.is_file():
            raise ValueError(f"--data {args.data}: no such file")
        case = batch_quality.user_case(args.data, args.budget, args.unit, args.oversize)
        try:
            with warnings.catch_warnings():  # the section reports left-out samples itself
                warnings.simplefilter("ignore")
                plan_batches(case.lengths, case.budget, cost=case.cost, oversize=case.oversize)
        except ValueError as error:  # now, in one line, rather than after other sections
            message = re.sub(r"oversize='(\w+)'", r"--oversize \1", str(error))
            raise ValueError(f"--data {args.data}: {message.replace('raise the budget', 'raise --budget')}") from None
        print(f"--data {args.data}: {len(case.lengths):,} samples, {case.note}", flush=True)
        extra = (case,)
        extra_pairs = args.data if case.lengths.ndim == 2 else None
        if extra_pairs is not None:  # the training section trains on them: check the labels now
            try:
                check_labels(corpora.read_pairs_tsv(extra_pairs).labels)
            except ValueError as error:
                raise ValueError(f"--data {extra_pairs}: {error}") from None
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results = {"mode": args.mode, "environment": environment.describe(device)}

    def save(**section: dict) -> None:  # sets a section's figures and rewrites results.json
        results.update(section)
        (out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))

    measure = {
        "batching": lambda progress: batch_quality.run(
            mode=args.mode, data_dir=data_dir, out_dir=out, progress=progress, extra_cases=extra),
        "streaming": lambda progress: streaming.run(
            mode=args.mode, data_dir=data_dir, out_dir=out, progress=progress),
        "ops": lambda progress: op_speed.run(
            mode=args.mode, data_dir=data_dir, out_dir=out, device=device, progress=progress,
            checkpoint=lambda so_far: save(ops=so_far)),
        "training": lambda progress: esim_training.run(
            mode=args.mode, data_dir=data_dir, out_dir=out, device=device.split(":")[0],
            progress=progress, extra_pairs=extra_pairs),
        "transformer": lambda progress: transformer_training.run(
            mode=args.mode, data_dir=data_dir, out_dir=out, progress=progress),
        "calibration": lambda progress: calibrated_budgets.run(
            mode=args.mode, out_dir=out, device=device, progress=progress),
    }  # fmt: skip
    sections = [name for name in SECTIONS if name in args.sections]  # in the usual order
    env = results["environment"]
    gpu = f" | {env['gpu']} (driver {env['driver']}, CUDA {env['cuda']})" if "gpu" in env else ""
    print(f"dynbatch_ext {env['dynbatch_ext']} | torch {env['torch']} | {env['cpu']} "
          f"({env['cpu_cores']} cores){gpu} | {args.mode} mode\n", flush=True)  # fmt: skip
    # disable=None: no bar where stderr is not a terminal (a log file), so that none
    # interleaves with the tables.
    with tqdm(unit="step", leave=False, disable=None) as progress:
        for name in sections:
            progress.set_description(name)
            started, load = time.perf_counter(), environment.LoadMeter()
            section = measure[name](progress)
            section["seconds"] = time.perf_counter() - started  # the section's own run time
            section["load"] = load.stop(section["seconds"])
            # Each section is saved and shown when done: a later one that fails loses nothing.
            save(**{name: section})
            progress.write(TABLES[name](section).rstrip("\n") + "\n" + _timing_line(name, section) + "\n")
    plots = [p for name in sections for p in results[name]["plots"]]
    print(f"results.json and plots ({', '.join(plots)}) are in {out.resolve()}/")
    return 0
