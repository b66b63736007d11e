"""Constant effective batch: optimizer steps of about equal size, and exact loss weights.

Budgeted micro-batches range from a handful of long samples to hundreds of short ones. Feeding
each to the optimizer as it comes makes the effective batch size (and so the gradient noise) jump
from step to step. `plan_steps` groups micro-batches into steps that each hold about `target`
samples (or real tokens), and `micro_batch_weights` weights each micro-batch's mean loss by
`its_count / step_total`, so the accumulated gradient is that of one batch of the whole step.
"""
from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import torch
import torch.distributed as dist

from . import _C
from ._checks import as_lengths, check_int, check_positive_real
from .batching import _make_plan, _Plan, _warn_left_out, plan_batches

UNITS = ("samples", "tokens")

# plan_batches' keyword arguments and their defaults (rank aside): plan_steps forwards them.
_PLAN_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(plan_batches).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "rank"
}


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


def check_step_options(target, unit, max_micro_batches) -> tuple[float, str, int]:
    target = check_positive_real("target", target)
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    room = 0 if max_micro_batches is None else check_int("max_micro_batches", max_micro_batches, 1)
    return target, unit, room


def arrange_in_steps(
    plan: _Plan, lengths: np.ndarray, *, target: float, unit: str, max_micro_batches: int,
    num_replicas: int, shuffle: bool, seed: int, epoch: int,
) -> _Plan:  # fmt: skip
    """`plan` with its batches reordered step by step, and the step layout filled in."""
    weights = batch_weights(lengths, plan.batches, unit)
    raw = _C.plan_steps(weights, target, max_micro_batches, num_replicas, shuffle, seed, epoch)
    micro, offsets = raw["micro_steps"], raw["offsets"]
    order = (micro[:, None] * num_replicas + np.arange(num_replicas)).reshape(-1)
    return dataclasses.replace(
        plan,
        batches=[plan.batches[b] for b in order],
        costs=plan.costs[order],
        step_sizes=np.diff(offsets),
        step_totals=raw["totals"],
    )


def plan_steps(
    lengths,
    budget: float,
    *,
    target: float,
    unit: str = "samples",
    max_micro_batches: int | None = None,
    rank: int = 0,
    **plan_options,
) -> StepPlan:
    """Budgeted micro-batches grouped into optimizer steps of about `target` samples or tokens.

    Args:
        lengths, budget: as for `plan_batches`; every other keyword of `plan_batches` (cost,
            max_batch_size, seed, epoch, num_replicas, ...) is accepted and means the same.
        target: samples (or real tokens, `unit="tokens"`) per optimizer step, summed over ranks.
            Micro-batches larger than this make steps larger than it; cap them with
            `max_batch_size` for a target in samples.
        max_micro_batches: at most this many micro-batches per rank in a step (None: no limit).
            When it binds, there are more, lighter steps than `target` asks for.
        rank: this process's rank among `num_replicas`.

    Returns:
        A StepPlan; `summary()` tells how much the step size varies.
    """
    unknown = set(plan_options) - set(_PLAN_DEFAULTS)
    if unknown:
        raise TypeError(f"plan_steps() got unexpected keyword argument(s) {sorted(unknown)}")
    options = {**_PLAN_DEFAULTS, **plan_options}
    target, unit, room = check_step_options(target, unit, max_micro_batches)
    replicas = check_int("num_replicas", options["num_replicas"], 1)
    rank = check_int("rank", rank, 0, replicas - 1)
    lengths = as_lengths(lengths)
    plan = _make_plan(lengths, budget, **options)
    _warn_left_out(plan)
    plan = arrange_in_steps(
        plan, lengths, target=target, unit=unit, max_micro_batches=room, num_replicas=replicas,
        shuffle=options["shuffle"], seed=options["seed"], epoch=options["epoch"],
    )  # fmt: skip
    mine = plan.batches[rank::replicas]
    bounds = np.concatenate([[0], np.cumsum(plan.step_sizes)])
    steps = [mine[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return StepPlan(steps=steps, totals=plan.step_totals, unit=unit, target=target)


def micro_batch_weights(counts, *, group=None, gradients_averaged: bool = True) -> list[float]:
    """Loss weights for the micro-batches of one optimizer step: `count_i / step_total`.

    Multiply micro-batch i's mean loss (a mean over its `counts[i]` samples or tokens) by the
    i-th weight before `backward()`: the accumulated gradient then equals the gradient of the
    mean loss over all samples of the step, which `loss / accumulation_steps` gets wrong as soon
    as micro-batches differ in size.

    Under `torch.distributed` the step total is summed over the ranks of `group` (one
    all-reduce). DistributedDataParallel averages gradients over ranks, so by default the weights
    are multiplied by the world size to undo that average; pass `gradients_averaged=False` when
    the gradients are summed instead.

    Args:
        counts: this rank's micro-batch sizes for the step, in the unit the loss averages over.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64).detach().cpu()
    if counts.ndim != 1 or counts.numel() == 0:
        raise ValueError(f"counts must be a non-empty 1-D sequence, got shape {tuple(counts.shape)}")
    if not torch.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"counts must be finite and >= 0, got {counts.tolist()}")
    total = counts.sum()
    scale = 1
    if dist.is_available() and dist.is_initialized():
        device = "cuda" if dist.get_backend(group) == "nccl" else "cpu"
        total = total.to(device)
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        total = total.cpu()
        if gradients_averaged:
            scale = dist.get_world_size(group)
    if not total > 0:
        raise ValueError("the step holds nothing to average over (its counts sum to 0)")
    return (counts * scale / total).tolist()
