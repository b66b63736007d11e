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
from .plan import make_plan, warn_left_out

UNITS = ("samples", "tokens")
COMPOSITIONS = ("random", "pooled", "sorted")
DEFAULT_COMPOSITION = "pooled"
DEFAULT_POOL_STEPS = 64


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """How an epoch's samples are grouped into optimizer steps, checked once when it is made.

    target: samples (or real tokens, `unit="tokens"`) per optimizer step, summed over ranks.
        With several replicas, a "random" or "pooled" step closes at the first multiple of the
        replicas at or past the target (every replica gets as many samples; target=32 over 3
        replicas gives steps of 33 and 30 samples, 32 on average).
    composition: which samples meet in a step.
        "random": the epoch's random order (`epoch_order`) cut into steps of `target`, exactly
            as a fixed-size random batch sampler cuts it; only inside a step are the samples
            sorted by length and cut into micro-batches under the budget. Each step's gradient
            is then that of a random batch of its samples: the optimisation of fixed random
            batches, with the padding removed inside each step.
        "pooled": the random order cut into pools of `pool_steps` steps; each pool is sorted and
            cut as a whole and its micro-batches dealt to its steps so that each holds about
            `target` and the pool's mix of lengths. Less padding than "random" (more samples
            sort together), steps still random mixes of lengths.
        "sorted": the whole epoch sorted and cut, its micro-batches dealt into steps of equal
            weight: the least padding, but each step holds samples of nearly one length.
    pool_steps: steps per pool ("pooled" only).
    max_micro_batches: at most this many micro-batches per rank in a step (None: no limit;
        "sorted" only, where it makes more, lighter steps when it binds).
    """

    target: float
    unit: str = "samples"
    max_micro_batches: int | None = None
    composition: str = DEFAULT_COMPOSITION
    pool_steps: int = DEFAULT_POOL_STEPS

    def __post_init__(self):
        object.__setattr__(self, "target", check_positive_real("target", self.target))
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.composition not in COMPOSITIONS:
            raise ValueError(f"composition must be one of {COMPOSITIONS}, got {self.composition!r}")
        object.__setattr__(self, "pool_steps", check_int("pool_steps", self.pool_steps, 1))
        if self.max_micro_batches is not None:
            object.__setattr__(self, "max_micro_batches",
                               check_int("max_micro_batches", self.max_micro_batches, 1))  # fmt: skip
            if self.composition != "sorted":
                raise ValueError(
                    f"max_micro_batches applies to composition='sorted' only: a "
                    f"{self.composition} step holds the samples the random order gives it, in "
                    "as many micro-batches as the budget needs"
                )


def step_options(step_target: float | None, step_unit: str = "samples",
                 max_micro_batches: int | None = None, composition: str = DEFAULT_COMPOSITION,
                 pool_steps: int = DEFAULT_POOL_STEPS) -> StepOptions | None:  # fmt: skip
    """The StepOptions of the step keywords that the sampler and the stream take, or None
    without `step_target` (then the other step keywords must keep their defaults)."""
    if step_target is None:
        if (max_micro_batches is not None or step_unit != "samples"
                or composition != DEFAULT_COMPOSITION or pool_steps != DEFAULT_POOL_STEPS):  # fmt: skip
            raise ValueError("step_unit, max_micro_batches, composition and pool_steps shape "
                             "optimizer steps: pass step_target=... for step mode")  # fmt: skip
        return None
    return StepOptions(step_target, step_unit, max_micro_batches, composition, pool_steps)


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


def default_micro_batch_cap(target: float | None, unit: str) -> int | None:
    """The `max_batch_size` a micro-batch gets by default under steps of `target`: never more
    samples than one step holds (None when steps are counted in tokens, or there are none)."""
    if target is None or unit != "samples":
        return None
    return max(1, int(target))


def epoch_order(num_samples: int, *, epoch: int = 0, seed: int = 0, shuffle: bool = True) -> np.ndarray:
    """The epoch's random order of `num_samples` samples that "random" and "pooled" steps are
    cut from (the identity with shuffle=False): `BatchSampler(epoch_order(n, ...), target)` gives
    the sample sets of the "random" steps, step by step, when no sample is left out as oversize
    (else the order is over the samples kept, in index order)."""
    count = check_int("num_samples", num_samples, 0)
    settings = PlanOptions(budget=1, seed=seed, shuffle=shuffle)
    return _C.epoch_order(count, settings, check_int("epoch", epoch, 0, 2**63 - 1))


def plan_steps(lengths, budget: float, *, target: float, unit: str = "samples",
               max_micro_batches: int | None = None, composition: str = DEFAULT_COMPOSITION,
               pool_steps: int = DEFAULT_POOL_STEPS, epoch: int = 0, rank: int = 0,
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
        composition, pool_steps: which samples meet in a step (see `StepOptions`).

    Returns:
        A StepPlan; `summary()` tells how much the step size varies.
    """
    settings = plan_options(budget, options)
    grouping = StepOptions(target, unit, max_micro_batches, composition, pool_steps)
    replicas = settings.num_replicas
    rank = check_int("rank", rank, 0, replicas - 1)
    plan = make_plan(as_lengths(lengths), settings, epoch, grouping)
    warn_left_out(plan)
    mine = plan.for_rank(rank, replicas)
    bounds = np.concatenate([[0], np.cumsum(plan.rounds_per_step)])
    steps = [mine[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return StepPlan(steps=steps, totals=plan.step_totals, unit=grouping.unit,
                    target=grouping.target)  # fmt: skip
