"""Budgeted length bucketing: the Python face of the C++ core in csrc/core.

A batch pads every field to its longest member; its cost is

    B * (const + linear * L + quadratic * L**2)                    single texts
    B * (const + linear * (Lp + Lh) + quadratic * Lp * Lh)         pairs (premise, hypothesis)

with lengths rounded up to `pad_multiple`. `plan_batches` sorts samples by length (a radix sort;
a Hilbert curve for pairs, so both fields pad little) and cuts the sorted order into batches that
each cost at most the budget, choosing the cuts that pad least (a dynamic programme). `padding_stats` reports what any list of batches costs.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from typing import Sequence, Union

import numpy as np

from . import _C
from ._checks import as_lengths, check_int, check_positive_real


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Cost of one padded sample: `const + linear * L + quadratic * L**2` (pairs: see module doc).

    Presets: `"count"` = CostModel(const=1) (a fixed batch size), `"tokens"` = CostModel(linear=1)
    (padded tokens), `"quadratic"` = CostModel(quadratic=1) (attention memory, `B * L**2`).
    """

    const: float = 0.0
    linear: float = 0.0
    quadratic: float = 0.0

    def __post_init__(self):
        for name in ("const", "linear", "quadratic"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"CostModel.{name} must be a finite number >= 0, got {value!r}")
        if self.const == self.linear == self.quadratic == 0:
            raise ValueError("CostModel is all zeros: every batch would be free")

    @property
    def coefficients(self) -> tuple[float, float, float]:
        return (float(self.const), float(self.linear), float(self.quadratic))


PRESETS: dict[str, CostModel] = {
    "count": CostModel(const=1),
    "tokens": CostModel(linear=1),
    "quadratic": CostModel(quadratic=1),
}

Cost = Union[str, CostModel]


def resolve_cost(cost: Cost) -> CostModel:
    """A CostModel from a preset name or a CostModel."""
    if isinstance(cost, CostModel):
        return cost
    if isinstance(cost, str) and cost in PRESETS:
        return PRESETS[cost]
    raise ValueError(f"cost must be one of {sorted(PRESETS)} or a CostModel, got {cost!r}")


@dataclasses.dataclass(frozen=True)
class _Plan:
    """All replicas' batches in step order (batch s * num_replicas + r is rank r's s-th)."""

    batches: list[np.ndarray]
    costs: np.ndarray
    skipped: np.ndarray
    dropped: np.ndarray
    # With steps (dynbatch_ext.steps): micro-steps (one batch per replica) in each step, and the
    # weight of each step summed over replicas. None for a plain plan.
    step_sizes: np.ndarray | None = None
    step_totals: np.ndarray | None = None


def _make_plan(
    lengths: np.ndarray,
    budget,
    *,
    cost: Cost,
    pad_multiple: int,
    max_batch_size: int | None,
    oversize: str,
    shuffle: bool,
    seed: int,
    epoch: int,
    padding_noise: float,
    batch_overhead: float,
    num_replicas: int,
    drop_last: bool,
) -> _Plan:
    budget = check_positive_real("budget", budget)
    model = resolve_cost(cost)
    pad_multiple = check_int("pad_multiple", pad_multiple, 1)
    max_batch_size = 0 if max_batch_size is None else check_int("max_batch_size", max_batch_size, 1)
    if oversize not in ("error", "alone", "skip"):
        raise ValueError(f"oversize must be 'error', 'alone' or 'skip', got {oversize!r}")
    seed = check_int("seed", seed, 0, 2**64 - 1)
    epoch = check_int("epoch", epoch, 0, 2**63 - 1)
    num_replicas = check_int("num_replicas", num_replicas, 1)
    for name, value in (("padding_noise", padding_noise), ("batch_overhead", batch_overhead)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be a number, got {value!r}")
    raw = _C.plan_batches(
        lengths, budget, model.coefficients, pad_multiple, max_batch_size, oversize,
        bool(shuffle), seed, epoch, float(padding_noise), float(batch_overhead), num_replicas,
        bool(drop_last),
    )  # fmt: skip
    indices, offsets = raw["indices"], raw["offsets"].tolist()
    return _Plan(
        # Plain slices (views): several times faster than np.split on 100k+ batches.
        batches=[indices[a:b] for a, b in zip(offsets[:-1], offsets[1:])],
        costs=raw["costs"],
        skipped=raw["skipped"],
        dropped=raw["dropped"],
    )


def _warn_left_out(plan: _Plan) -> None:
    if len(plan.skipped):
        warnings.warn(
            f"oversize='skip' left out {len(plan.skipped)} sample(s) that alone exceed the budget "
            f"(first: index {int(plan.skipped[0])})",
            stacklevel=3,
        )


def plan_batches(
    lengths,
    budget: float,
    *,
    cost: Cost = "quadratic",
    pad_multiple: int = 1,
    max_batch_size: int | None = None,
    oversize: str = "error",
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    padding_noise: float = 0.0,
    batch_overhead: float = 0.15,
    num_replicas: int = 1,
    rank: int = 0,
    drop_last: bool = False,
) -> list[np.ndarray]:
    """Cuts samples into batches whose padded cost is at most `budget`.

    Args:
        lengths: `(N,)` lengths of single texts, or `(N, 2)` (premise, hypothesis) lengths of
            pairs; non-negative integers (0 is an empty text).
        budget: the most a batch may cost under `cost` (e.g. `batch * max_len**2` for
            "quadratic").
        cost: "count", "tokens", "quadratic" or a `CostModel`.
        pad_multiple: lengths are padded up to a multiple of this (e.g. 8 for tensor cores); the
            cost counts the padding.
        max_batch_size: an upper bound on samples per batch, besides the budget.
        oversize: what to do with a sample that alone costs more than the budget: "error"
            (default, the message names it), "alone" (a batch of its own) or "skip" (left out,
            with a warning saying how many).
        shuffle: random order of batches (of steps with several replicas) and random ties among
            equal lengths, drawn from `seed` and `epoch`. False: batches from shortest to longest.
        seed, epoch: the plan is a pure function of the arguments; a new epoch gives a new order.
        padding_noise: sort by `length * (1 + U(-noise, noise))` instead of the length: a little
            more padding for more variety in which samples meet (0 to 1; 0.1 is mild).
        batch_overhead: where to cut. The planner minimises padding plus this fraction of an
            average batch's tokens for every batch, so it adds a batch only when that saves
            more padding. 0 pads least; large values approach the fewest, fullest batches.
        num_replicas, rank: data-parallel training. Every rank gets the same number of batches
            (largest batches are split, never samples dropped or repeated), and the batches of one
            step have similar cost. `drop_last=True` drops the remainder batches instead.

    Returns:
        This rank's batches, each an int64 array of sample indices. Over all ranks, every kept
        sample appears exactly once.

    Raises:
        ValueError: bad lengths (negative, non-integer, wrong shape, empty), a budget that is not
            a positive finite number, or a sample over budget with `oversize="error"`.
    """
    num_replicas = check_int("num_replicas", num_replicas, 1)
    rank = check_int("rank", rank, 0, num_replicas - 1)
    plan = _make_plan(
        as_lengths(lengths), budget, cost=cost, pad_multiple=pad_multiple,
        max_batch_size=max_batch_size, oversize=oversize, shuffle=shuffle, seed=seed,
        epoch=epoch, padding_noise=padding_noise, batch_overhead=batch_overhead,
        num_replicas=num_replicas, drop_last=drop_last,
    )  # fmt: skip
    _warn_left_out(plan)
    return plan.batches[rank::num_replicas]


@dataclasses.dataclass(frozen=True)
class PaddingStats:
    """What a list of batches costs. Per-batch arrays are in the order of the batches given."""

    num_samples: int  # samples in the data set
    num_batches: int
    samples_missing: int  # samples in no batch
    samples_repeated: int  # samples in more than one batch (or twice in one)
    real_tokens: int
    padded_tokens: int  # tokens of the padded tensors, padding included
    efficiency: float  # real_tokens / padded_tokens
    cost_max: float
    cost_median: float
    cost_max_over_median: float
    budget: float | None
    batches_over_budget: int | None
    max_cost_over_budget: float | None  # overshoot: > 1 means some batch broke the budget
    batch_size_min: int
    batch_size_median: float
    batch_size_max: int
    batch_sizes: np.ndarray = dataclasses.field(repr=False)
    batch_costs: np.ndarray = dataclasses.field(repr=False)
    batch_efficiency: np.ndarray = dataclasses.field(repr=False)

    def summary(self) -> dict:
        """The scalar fields, ready for JSON or a table."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not isinstance(getattr(self, f.name), np.ndarray)
        }


def padding_stats(
    lengths,
    batches: Sequence,
    *,
    cost: Cost = "quadratic",
    budget: float | None = None,
    pad_multiple: int = 1,
) -> PaddingStats:
    """Real vs padded tokens, cost per batch and batch sizes of `batches` (index sequences).

    Works for any batching (ours, or a fixed batch size to compare with). With `budget`, also
    counts the batches over it and the worst overshoot.
    """
    lengths = as_lengths(lengths)
    model = resolve_cost(cost)
    pad_multiple = check_int("pad_multiple", pad_multiple, 1)
    if budget is not None:
        budget = check_positive_real("budget", budget)
    if len(batches) == 0:
        raise ValueError("batches is empty: there is nothing to describe")
    parts = [as_lengths(b, name="a batch") if len(b) else np.zeros(0, np.int64) for b in batches]
    if any(p.ndim != 1 for p in parts):
        raise ValueError("each batch must be a 1-D sequence of sample indices")
    indices = np.concatenate(parts)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    raw = _C.describe_batches(lengths, indices, offsets, model.coefficients, pad_multiple)
    counts = np.bincount(indices, minlength=len(lengths))
    sizes, costs = raw["sizes"], raw["costs"]
    real, padded = int(raw["real_tokens"].sum()), int(raw["padded_tokens"].sum())
    median = float(np.median(costs))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_batch = np.where(
            raw["padded_tokens"] > 0, raw["real_tokens"] / raw["padded_tokens"], 1.0
        )
    return PaddingStats(
        num_samples=len(lengths),
        num_batches=len(parts),
        samples_missing=int((counts == 0).sum()),
        samples_repeated=int((counts > 1).sum()),
        real_tokens=real,
        padded_tokens=padded,
        efficiency=real / padded if padded else 1.0,
        cost_max=float(costs.max()),
        cost_median=median,
        cost_max_over_median=float(costs.max() / median) if median > 0 else math.inf,
        budget=budget,
        batches_over_budget=None if budget is None else int((costs > budget).sum()),
        max_cost_over_budget=None if budget is None else float(costs.max() / budget),
        batch_size_min=int(sizes.min()),
        batch_size_median=float(np.median(sizes)),
        batch_size_max=int(sizes.max()),
        batch_sizes=sizes,
        batch_costs=costs,
        batch_efficiency=per_batch,
    )
