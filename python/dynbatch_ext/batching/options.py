"""`PlanOptions`: every option of a plan, as one value, checked once when it is made."""
from __future__ import annotations

import dataclasses
import numbers

from .. import _C
from .checks import check_int, check_pad_multiple, check_positive_real
from .costs import Cost, CostModel, resolve_cost

OVERSIZE_POLICIES = tuple(_C.Oversize.__members__)  # ("error", "alone", "skip")


def _one_of(names) -> str:
    quoted = [repr(n) for n in names]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


@dataclasses.dataclass(frozen=True)
class PlanOptions:
    """How `plan_batches` cuts samples into batches. `plan_batches`, `plan_steps` and
    `BucketBatchSampler` take these fields as keyword arguments (budget aside, which comes
    second) and hand them down as one PlanOptions.

    Fields:
        budget: the most a batch may cost under `cost` (e.g. `batch * max_len**2` for
            "quadratic").
        cost: "count", "tokens", "quadratic" or a `CostModel` (held as the CostModel).
        pad_multiple: lengths are padded up to a multiple of this (e.g. 8 for tensor cores); the
            cost counts the padding.
        max_batch_size: an upper bound on samples per batch, besides the budget (None: none).
        oversize: what to do with a sample that alone costs more than the budget: "error"
            (default, the message names it), "alone" (a batch of its own) or "skip" (left out,
            with a warning saying how many).
        shuffle: random order of batches (of rounds with several replicas) and random ties among
            equal lengths, drawn from `seed` and the epoch. False: batches from shortest to
            longest.
        seed: the plan is a pure function of the lengths, these options and the epoch.
        padding_noise: sort by `length * (1 + U(-noise, noise))` instead of the length: a little
            more padding for more variety in which samples meet (0 to 1; 0.1 is mild).
        batch_overhead: where to cut. The planner minimises padding plus this fraction of an
            average batch's tokens for every batch, so it adds a batch only when that saves
            more padding. 0 pads least; large values approach the fewest, fullest batches.
        num_replicas: data-parallel training. Every replica gets the same number of batches
            (largest batches are split, never samples dropped or repeated), and the batches of
            one round (one batch per replica) have similar cost. `drop_last=True` drops the
            remainder batches instead.

    Types, names and the ranges that conversion needs are checked here, each once; the ranges of
    padding_noise and batch_overhead are the C++ core's own preconditions, checked there, with
    a ValueError that names the option.
    """

    budget: float
    cost: Cost = "quadratic"
    pad_multiple: int = 1
    max_batch_size: int | None = None
    oversize: str = "error"
    shuffle: bool = True
    seed: int = 0
    padding_noise: float = 0.0
    batch_overhead: float = 0.15
    num_replicas: int = 1
    drop_last: bool = False

    def __post_init__(self):
        def normalise(name, value):  # frozen: set once, here
            object.__setattr__(self, name, value)

        normalise("budget", check_positive_real("budget", self.budget))
        normalise("cost", resolve_cost(self.cost))
        normalise("pad_multiple", check_pad_multiple(self.pad_multiple))
        if self.max_batch_size is not None:
            normalise("max_batch_size", check_int("max_batch_size", self.max_batch_size, 1))
        if self.oversize not in OVERSIZE_POLICIES:
            raise ValueError(f"oversize must be {_one_of(OVERSIZE_POLICIES)}, got {self.oversize!r}")
        normalise("seed", check_int("seed", self.seed, 0, 2**64 - 1))
        normalise("num_replicas", check_int("num_replicas", self.num_replicas, 1))
        for name in ("padding_noise", "batch_overhead"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name} must be a number, got {value!r}")
            normalise(name, float(value))
        normalise("shuffle", bool(self.shuffle))
        normalise("drop_last", bool(self.drop_last))


def plan_options(budget, options: dict) -> PlanOptions:
    """PlanOptions from a budget and keyword arguments, naming the caller's unknown ones."""
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(PlanOptions)})
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {unknown}: the plan's options are "
                        f"the fields of dynbatch_ext.PlanOptions")  # fmt: skip
    return PlanOptions(budget, **options)
