"""`padding_stats`: what any list of batches costs (ours, or a fixed batch size to compare)."""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from .. import _C
from .checks import as_lengths, check_pad_multiple, check_positive_real
from .costs import Cost, resolve_cost


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
    pad_multiple = check_pad_multiple(pad_multiple)
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
