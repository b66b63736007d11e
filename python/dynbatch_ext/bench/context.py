"""What a benchmark section is (`Section`) and is given (`RunContext`), and the size options
every bench command shares (`add_mode_arguments`)."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from .length_cases import Case

MODES = ("full", "quick", "tiny")


def add_mode_arguments(parser: argparse.ArgumentParser, quick: str,
                       tiny: str = "seconds; for smoke tests, figures not meaningful") -> None:
    """--quick and --tiny (one at most; neither: "full") into `args.mode`; `quick` and `tiny`
    say what they run."""  # fmt: skip
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="mode", const="quick", help=quick)
    size.add_argument("--tiny", action="store_const", dest="mode", const="tiny", help=tiny)
    parser.set_defaults(mode="full")


def _keep_nothing(figures_so_far: dict) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class RunContext:
    """One bench run, as its sections see it."""

    mode: str  # "full", "quick" or "tiny"
    out_dir: Path  # where sections write their plots
    data_dir: Path | None = None  # SNLI dev and ChnSentiCorp, where present
    device: str = "cpu"  # "cpu" or "cuda[:N]", for the sections that measure on a device
    user_case: Case | None = None  # the user's --data, measured first
    # Shows a section's progress (reset, set_description, update); the default shows nothing.
    progress: tqdm = dataclasses.field(default_factory=lambda: tqdm(disable=True))
    # Saves a section's figures so far, so that a run stopped midway keeps what it measured.
    checkpoint: Callable[[dict], None] = _keep_nothing

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")


def _needs_nothing(context: RunContext) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class Section:
    """A part of `bench`: `run` measures and returns its figures (a JSON-able dict with a "plots"
    list of the files it wrote into the context's out_dir), `table` shows them as text, `check`
    fails early (before any section runs) where the section cannot run at all."""

    name: str  # its --sections name and its key in results.json
    run: Callable[[RunContext], dict]
    table: Callable[[dict], str]
    check: Callable[[RunContext], None] = _needs_nothing
    measures_on_device: bool = False  # measures on --device (else on the CPU, whatever it says)
