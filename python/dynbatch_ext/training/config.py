"""What a train-esim run is: every setting, with defaults and checks."""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Literal

from ..batching.steps import COMPOSITIONS, DEFAULT_POOL_STEPS, default_micro_batch_cap

AUTOCAST_DTYPES = (None, "bfloat16", "float16")
DEFAULT_STEP_TARGET = 32.0


def _finite_number(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))  # fmt: skip

# Settings a resumed run may change; every other one must match the checkpoint's.
RESUMABLE_CHANGES = ("epochs", "max_steps", "resume", "progress", "checkpoint_every", "out_dir",
                     "log_sample_ids", "device", "save_checkpoints", "plot")  # fmt: skip


@dataclasses.dataclass
class TrainConfig:
    """Settings of a train-esim run (the command line's options, one for one)."""

    train_file: str | None = None  # SNLI-format TSV; None: the built-in synthetic task
    valid_file: str | None = None  # None: hold out valid_fraction of the training pairs
    valid_fraction: float = 0.2
    synthetic_size: int = 6000  # pairs of the synthetic task (train + validation)
    out_dir: str = "runs/train-esim"
    epochs: int = 3
    batching: str = "budget"  # "budget": budgeted batches; "fixed": random batches of batch_size
    budget: float = 1024.0  # per micro-batch, in `cost` units (padded tokens by default)
    memory_limit: float | None = None  # bytes: calibrate cost and budget to it (budget unused)
    cost: str = "tokens"
    batch_size: int = 32  # batching="fixed" only
    # Samples (or tokens) per optimizer step; None: a step per micro-batch; "auto" (resolved
    # when the config is made, so a saved config holds the number): 32 for budgeted batches,
    # None for batching="fixed", which makes every batch its own step.
    step_target: float | Literal["auto"] | None = "auto"
    step_unit: str = "samples"
    max_batch_size: int | None = None  # None: step_target, when steps are counted in samples
    max_micro_batches: int | None = None
    # Which samples meet in a step (see StepOptions). Not the package's default: over the
    # study's 16 paired seeds on SNLI, ESIM's sorted steps ran 1.24x pooled's samples/s and
    # ended +0.17 points from fixed batches, pooled -0.57 (docs/results/2026-12-02-step-composition).
    composition: str = "sorted"
    pool_steps: int = DEFAULT_POOL_STEPS  # steps per pool, composition="pooled"
    fused: bool = True
    autocast: str | None = None  # "bfloat16" or "float16": forward passes under torch.autocast
    lstm: str = "auto"  # see dynbatch_ext.nn.bilstm: auto, packed, flipped, padded
    embedding_dim: int = 300
    hidden_size: int = 300
    dropout: float = 0.5
    lr: float = 4e-4
    clip: float = 10.0
    seed: int = 0
    device: str = "cpu"
    checkpoint_every: int = 200  # optimizer steps; a checkpoint also ends every epoch
    save_checkpoints: bool = True  # False: no checkpoint.pt at all (benchmarks)
    max_steps: int | None = None  # stop (with a checkpoint) after this many steps in all
    resume: bool = False
    progress: bool = True
    log_sample_ids: bool = False  # write each rank's sample ids per epoch (for tests/debugging)
    plot: bool = True  # training.png at the end (needs matplotlib: dynbatch_ext[plot])

    def __post_init__(self):
        problems = []
        if self.batching not in ("budget", "fixed"):
            problems.append(f"batching must be 'budget' or 'fixed', got {self.batching!r}")
        if self.step_target == "auto":
            self.step_target = None if self.batching == "fixed" else DEFAULT_STEP_TARGET
        positive = ("epochs", "synthetic_size", "batch_size", "embedding_dim", "hidden_size",
                    "checkpoint_every", "budget", "lr", "clip")  # fmt: skip
        for name in positive:
            if not _finite_number(getattr(self, name)) or not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0 and finite, got {getattr(self, name)!r}")
        for name in ("step_target", "max_batch_size", "max_micro_batches", "max_steps"):
            value = getattr(self, name)
            if value is not None and (not _finite_number(value) or not value > 0):
                problems.append(f"{name} must be > 0 and finite (or unset), got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            problems.append(f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        if self.memory_limit is not None and not self.memory_limit > 0:
            problems.append(f"memory_limit must be > 0 bytes, got {self.memory_limit}")
        if self.memory_limit is not None and self.batching == "fixed":
            problems.append("memory_limit calibrates budgeted batches: use batching='budget'")
        if not 0 < self.valid_fraction < 1:
            problems.append(f"valid_fraction must lie in (0, 1), got {self.valid_fraction}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.batching == "fixed" and self.step_target is not None:
            problems.append("batching='fixed' makes every batch its own step: leave step_target "
                            "unset")  # fmt: skip
        if self.composition not in COMPOSITIONS:
            problems.append(f"composition must be one of {COMPOSITIONS}, got {self.composition!r}")
        if self.autocast not in AUTOCAST_DTYPES:
            problems.append(f"autocast must be one of {AUTOCAST_DTYPES}, got {self.autocast!r}")
        if self.autocast == "float16" and self.device == "cpu":
            problems.append("autocast='float16' on the CPU: torch's LSTM has no float16 CPU "
                            "kernel (oneDNN refuses it); use bfloat16")  # fmt: skip
        if self.lstm not in ("auto", "packed", "flipped", "padded"):
            problems.append(f"lstm must be auto, packed, flipped or padded, got {self.lstm!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def micro_batch_cap(self) -> int | None:
        """The most samples a micro-batch may hold: never more than one step's worth."""
        if self.max_batch_size is not None:
            return int(self.max_batch_size)
        return default_micro_batch_cap(self.step_target, self.step_unit)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def differences(self, saved: dict) -> list[str]:
        """Settings that differ from a checkpoint's and may not (RESUMABLE_CHANGES may)."""
        mine = self.to_dict()
        return [
            f"{key}: checkpoint {saved.get(key)!r}, now {mine[key]!r}"
            for key in mine
            if key not in RESUMABLE_CHANGES and saved.get(key) != mine[key]
        ]
