"""Constant effective batch: optimizer steps of about equal size.

Budgeted micro-batches range from a handful of long samples to hundreds of short ones. Feeding
each to the optimizer as it comes makes the effective batch size (and so the gradient noise) jump
from step to step. `plan_steps` groups micro-batches into steps that each hold about `target`
samples (or real tokens); `micro_batch_weights` (loss_weights.py) then weights each micro-batch's
loss so that the accumulated gradient is that of one batch of the whole step.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import _C
from .checks import as_lengths, check_int, check_positive_real
from .options import PlanOptions, plan_options
from .plan import Plan, make_plan, warn_left_out

UNITS = ("samples", "tokens")


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """How micro-batches are grouped into optimizer steps, checked once when it is made.

    target: samples (or real tokens, `unit="tokens"`) per optimizer step, summed over ranks.
    max_micro_batches: at most this many micro-batches per rank in a step (None: no limit).
    """

    target: float
    unit: str = "samples"
    max_micro_batches: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "target", check_positive_real("target", self.target))
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.max_micro_batches is not None:
            object.__setattr__(self, "max_micro_batches",
                               check_int("max_micro_batches", self.max_micro_batches, 1))  # fmt: skip


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """One rank's optimizer steps for an epoch: `steps[s]` is the list of micro-batches (int64
    index arrays) to accumulate before step s. Every rank has the same number of steps and of
    micro-batches in each step."""

    steps: list[list[np.ndarray]]
    totals: np.ndarray  # (num_steps,) samples or real tokens per step, summed over ranks
    unit: str
    target: float

    def __len__(self) -> int:
        return len(self.steps)

    def summary(self) -> dict:
        """How much the effective batch varies: min, median and max per step (all ranks)."""
        micro = np.array([len(step) for step in self.steps])
        return {
            "unit": self.unit,
            "target": self.target,
            "num_steps": len(self.steps),
            "num_micro_batches": int(micro.sum()),
            "per_step_min": float(self.totals.min()),
            "per_step_median": float(np.median(self.totals)),
            "per_step_max": float(self.totals.max()),
            "max_over_min": float(self.totals.max() / self.totals.min())
            if self.totals.min() > 0
            else float("inf"),
            "micro_batches_per_step_min": int(micro.min()),
            "micro_batches_per_step_max": int(micro.max()),
        }


def batch_weights(lengths: np.ndarray, batches, unit: str) -> np.ndarray:
    """Samples, or real tokens (both fields of a pair), of each batch as float64."""
    if unit == "samples":
        return np.array([len(b) for b in batches], dtype=np.float64)
    per_sample = lengths if lengths.ndim == 1 else lengths.sum(axis=1)
    return np.array([per_sample[b].sum() for b in batches], dtype=np.float64)


def group_into_steps(plan: Plan, lengths: np.ndarray, steps: StepOptions, options: PlanOptions,
                     epoch: int) -> Plan:  # fmt: skip
    """`plan` with its batches reordered step by step, and the step layout filled in."""
    weights = batch_weights(lengths, plan.batches, steps.unit)
    raw = _C.plan_steps(weights, steps, options, epoch)
    rounds, offsets, replicas = raw["rounds"], raw["offsets"], options.num_replicas
    order = (rounds[:, None] * replicas + np.arange(replicas)).reshape(-1)
    return dataclasses.replace(
        plan,
        batches=[plan.batches[b] for b in order],
        costs=plan.costs[order],
        step_sizes=np.diff(offsets),
        step_totals=raw["totals"],
    )


def default_micro_batch_cap(target: float | None, unit: str) -> int | None:
    """The `max_batch_size` a micro-batch gets by default under steps of `target`: never more
    samples than one step holds (None when steps are counted in tokens, or there are none)."""
    if target is None or unit != "samples":
        return None
    return max(1, int(target))


def plan_steps(lengths, budget: float, *, target: float, unit: str = "samples",
               max_micro_batches: int | None = None, epoch: int = 0, rank: int = 0,
               **options) -> StepPlan:  # fmt: skip
    """Budgeted micro-batches grouped into optimizer steps of about `target` samples or tokens.

    Args:
        lengths, budget, epoch, rank, **options: as for `plan_batches` (options: the fields of
            `PlanOptions`, e.g. cost, max_batch_size, seed, num_replicas).
        target: samples (or real tokens, `unit="tokens"`) per optimizer step, summed over ranks.
            Micro-batches larger than this make steps larger than it; cap them with
            `max_batch_size` for a target in samples.
        max_micro_batches: at most this many micro-batches per rank in a step (None: no limit).
            When it binds, there are more, lighter steps than `target` asks for.

    Returns:
        A StepPlan; `summary()` tells how much the step size varies.
    """
    settings = plan_options(budget, options)
    grouping = StepOptions(target, unit, max_micro_batches)
    replicas = settings.num_replicas
    rank = check_int("rank", rank, 0, replicas - 1)
    lengths = as_lengths(lengths)
    plan = make_plan(lengths, settings, epoch)
    warn_left_out(plan)
    plan = group_into_steps(plan, lengths, grouping, settings, epoch)
    mine = plan.for_rank(rank, replicas)
    bounds = np.concatenate([[0], np.cumsum(plan.step_sizes)])
    steps = [mine[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return StepPlan(steps=steps, totals=plan.step_totals, unit=grouping.unit,
                    target=grouping.target)  # fmt: skip
