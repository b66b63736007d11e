"""Budgeted length bucketing: `plan_batches`, the Python face of the planner in csrc/core.

`plan_batches` sorts samples by length (a radix sort; a Hilbert curve for pairs, so both fields
pad little) and cuts the sorted order into batches that each cost at most the budget (see
costs.py), choosing the cuts that pad least (a dynamic programme).
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .. import _C
from .checks import as_lengths, check_int
from .options import PlanOptions, plan_options


@dataclasses.dataclass(frozen=True)
class Plan:
    """All replicas' batches in round order (batch s * num_replicas + r is rank r's s-th)."""

    batches: list[np.ndarray]
    costs: np.ndarray
    skipped: np.ndarray
    dropped: np.ndarray
    # With optimizer steps (steps.py): the rounds (micro-batches per replica) in each step, and
    # the weight of each step summed over replicas. None for a plain plan.
    rounds_per_step: np.ndarray | None = None
    step_totals: np.ndarray | None = None

    def for_rank(self, rank: int, num_replicas: int) -> list[np.ndarray]:
        return self.batches[rank::num_replicas]


def make_plan(lengths: np.ndarray, options: PlanOptions, epoch: int, steps=None) -> Plan:
    """Every replica's batches of `epoch`, for lengths already passed through `as_lengths`; with
    `steps` (a StepOptions), in optimizer-step order, planned in one call to the core."""
    epoch = check_int("epoch", epoch, 0, 2**63 - 1)
    if steps is None:
        raw = _C.plan_batches(lengths, options, epoch)
    else:
        raw = _C.plan_epoch(lengths, options, steps, epoch)
    indices, offsets = raw["indices"], raw["offsets"].tolist()
    return Plan(
        # Plain slices (views): several times faster than np.split on 100k+ batches.
        batches=[indices[a:b] for a, b in zip(offsets[:-1], offsets[1:])],
        costs=raw["costs"],
        skipped=raw["skipped"],
        dropped=raw["dropped"],
        rounds_per_step=None if steps is None else np.diff(raw["step_offsets"]),
        step_totals=raw.get("step_totals"),
    )


def warn_left_out(plan: Plan) -> None:
    if len(plan.skipped):
        warnings.warn(
            f"oversize='skip' left out {len(plan.skipped)} sample(s) that alone exceed the budget "
            f"(first: index {int(plan.skipped[0])})",
            stacklevel=3,
        )


def plan_batches(lengths, budget: float, *, epoch: int = 0, rank: int = 0,
                 **options) -> list[np.ndarray]:  # fmt: skip
    """Cuts samples into batches whose padded cost is at most `budget`.

    Args:
        lengths: `(N,)` lengths of single texts, or `(N, 2)` (premise, hypothesis) lengths of
            pairs; non-negative integers (0 is an empty text).
        budget: the most a batch may cost under `cost` (e.g. `batch * max_len**2` for
            "quadratic").
        epoch: the plan is a pure function of its arguments; a new epoch gives a new order.
        rank: this process's rank among `num_replicas`.
        **options: any field of `PlanOptions`: cost, pad_multiple, max_batch_size, oversize,
            shuffle, seed, padding_noise, batch_overhead, num_replicas, drop_last.

    Returns:
        This rank's batches, each an int64 array of sample indices. Over all ranks, every kept
        sample appears exactly once.

    Raises:
        ValueError: bad lengths (negative, non-integer, wrong shape, empty), a budget that is not
            a positive finite number, a bad option, or a sample over budget with
            `oversize="error"`. TypeError: an option PlanOptions does not have.
    """
    settings = plan_options(budget, options)
    rank = check_int("rank", rank, 0, settings.num_replicas - 1)
    plan = make_plan(as_lengths(lengths), settings, epoch)
    warn_left_out(plan)
    return plan.for_rank(rank, settings.num_replicas)
