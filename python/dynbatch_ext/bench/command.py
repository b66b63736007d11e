"""`python -m dynbatch_ext bench`: measure what the package buys, against the plain way, in one run.

Prints a table, and writes results.json (machine, versions, every figure) and PNG plots into the
output folder it names at the end.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import corpora, with_cuda
from . import environment, figures
from .context import RunContext, add_mode_arguments
from .length_cases import check_user_case
from .sections import SECTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_mode_arguments(parser, quick="a run of 2-4 minutes on 2 cores (smaller data and "
                                     "models; 1M lengths for the planning speed)")  # fmt: skip
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
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS),
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
    sections = [section for name, section in SECTIONS.items() if name in args.sections]  # in order
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise ValueError(f"--data-dir {args.data_dir}: no such folder")
    device = _check_device(args.device)
    user_case = None
    if args.data is not None:
        user_case = check_user_case(args.data, args.budget, args.unit, args.oversize)
        print(f"--data {args.data}: {len(user_case.lengths):,} samples, {user_case.note}", flush=True)
    context = RunContext(mode=args.mode, out_dir=args.out, device=device, user_case=user_case,
                         data_dir=args.data_dir or corpora.default_data_dir())  # fmt: skip
    for section in sections:
        section.check(context)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"mode": args.mode, "environment": environment.describe(device)}

    def save(name: str, measured: dict) -> None:  # sets a section's figures, rewrites results.json
        results[name] = measured
        (args.out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))

    env = results["environment"]
    gpu = f" | {env['gpu']} (driver {env['driver']}, CUDA {env['cuda']})" if "gpu" in env else ""
    print(f"dynbatch_ext {env['dynbatch_ext']} | torch {env['torch']} | {env['cpu']} "
          f"({env['cpu_cores']} cores){gpu} | {args.mode} mode\n", flush=True)  # fmt: skip
    # disable=None: no bar where stderr is not a terminal (a log file), so that none
    # interleaves with the tables.
    with tqdm(unit="step", leave=False, disable=None) as progress:
        for section in sections:
            progress.set_description(section.name)
            started, load = time.perf_counter(), environment.LoadMeter()
            measured = section.run(dataclasses.replace(
                context, progress=progress, checkpoint=functools.partial(save, section.name)))
            measured["seconds"] = time.perf_counter() - started  # the section's own run time
            measured["load"] = load.stop(measured["seconds"])
            # Each section is saved and shown when done: a later one that fails loses nothing.
            save(section.name, measured)
            progress.write(section.table(measured).rstrip("\n") + "\n"
                           + _timing_line(section.name, measured) + "\n")  # fmt: skip
    plots = [p for section in sections for p in results[section.name]["plots"]]
    print(f"results.json and plots ({', '.join(plots)}) are in {args.out.resolve()}/")
    return 0
