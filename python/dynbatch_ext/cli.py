"""Command line of dynbatch_ext: `python -m dynbatch_ext COMMAND`."""
from __future__ import annotations

import argparse
import sys

from .bench import command as bench_command
from .plotting import MissingExtra
from .training import command as train_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dynbatch_ext", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    bench_parser = commands.add_parser(
        "bench", help="benchmark every fast path against plain PyTorch/numpy on the same work"
    )
    bench_command.add_arguments(bench_parser)
    bench_parser.set_defaults(handler=bench_command.run)
    train_parser = commands.add_parser(
        "train-esim", help="train ESIM on budgeted batches with a constant effective batch",
        description="Train ESIM on an SNLI-format TSV (or the built-in synthetic task) with "
                    "budgeted micro-batches grouped into steps of about --step-target samples.",
    )  # fmt: skip
    train_command.add_arguments(train_parser)
    train_parser.set_defaults(handler=train_command.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, OSError, MissingExtra) as error:  # bad options or data, a missing
        # optional dependency: one line, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:  # training diverged: say so, and what to try
        print(f"error: {error}", file=sys.stderr)
        return 1
