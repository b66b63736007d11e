"""BucketBatchSampler: budgeted batches for `DataLoader(batch_sampler=...)`."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from .checks import as_lengths, replicas_and_rank
from .options import plan_options
from .plan import Plan, make_plan, warn_left_out
from .resumable import ResumableBatchSampler
from .stats import PaddingStats, padding_stats
from .steps import DEFAULT_COMPOSITION, DEFAULT_POOL_STEPS, step_options


class BucketBatchSampler(ResumableBatchSampler):
    """Yields lists of sample indices whose padded cost stays within `budget`.

    Use it as `DataLoader(dataset, batch_sampler=BucketBatchSampler(lengths, budget))`, call
    `set_epoch(epoch)` before each epoch for a new order, and save `state_dict()` in checkpoints
    to resume mid-epoch with exactly the batches not yet consumed.

    Every keyword of `dynbatch_ext.plan_batches` is taken and means the same (the fields of
    `PlanOptions`). Under `torch.distributed`, `num_replicas` and `rank` default to the world
    size and this process's rank; every rank gets the same number of batches, and the batches of
    one round have similar cost.

    Step mode (`step_target=...`, see `dynbatch_ext.plan_steps`): the batches become
    micro-batches, yielded one optimizer step after another, each step holding about
    `step_target` samples (`step_unit="samples"`) or real tokens (`"tokens"`) over all ranks,
    composed as `composition` says (see `StepOptions`).
    `group_steps(loader)` hands them to the training loop a step at a time; `steps()` and
    `micro_batches_per_step()` describe the layout.
    """

    def __init__(
        self,
        lengths,
        budget: float,
        *,
        num_replicas: int | None = None,
        rank: int | None = None,
        step_target: float | None = None,
        step_unit: str = "samples",
        max_micro_batches: int | None = None,
        composition: str = DEFAULT_COMPOSITION,
        pool_steps: int = DEFAULT_POOL_STEPS,
        **options,
    ):
        self.lengths = as_lengths(lengths)
        self.num_replicas, self.rank = replicas_and_rank(num_replicas, rank)
        self.options = plan_options(budget, {**options, "num_replicas": self.num_replicas})
        self.step_options = step_options(step_target, step_unit, max_micro_batches, composition,
                                         pool_steps)  # fmt: skip
        super().__init__()
        self._cached: tuple[int, Plan] | None = None
        self._lengths_digest: str | None = None
        warn_left_out(self._plan())  # plan epoch 0 now: bad options fail here, not mid-training

    def _plan(self) -> Plan:
        if self._cached is None or self._cached[0] != self.epoch:
            plan = make_plan(self.lengths, self.options, self.epoch, self.step_options)
            self._cached = (self.epoch, plan)
        return self._cached[1]

    def batches(self) -> list[np.ndarray]:
        """This rank's batches for the current epoch, as int64 index arrays."""
        return self._plan().for_rank(self.rank, self.num_replicas)

    def _step_layout(self) -> list[int] | None:
        return None if self.step_options is None else self._plan().rounds_per_step.tolist()

    def step_totals(self) -> np.ndarray:
        """Samples (or real tokens) of each step of the current epoch, summed over ranks."""
        self.micro_batches_per_step()  # says how to get steps when there are none
        return self._plan().step_totals

    @property
    def skipped(self) -> np.ndarray:
        """Samples left out because they alone exceed the budget (oversize="skip")."""
        return self._plan().skipped

    def _settings(self) -> dict:
        """Everything that shapes the plan: the lengths (a digest), every plan and step option
        and the world size."""
        if self._lengths_digest is None:  # once: hashing 10M lengths takes a while
            self._lengths_digest = hashlib.sha256(self.lengths.tobytes()).hexdigest()
        steps = {} if self.step_options is None else dataclasses.asdict(self.step_options)
        return {
            "num_samples": len(self.lengths),
            "lengths_sha256": self._lengths_digest,
            "num_replicas": self.num_replicas,
            **dataclasses.asdict(self.options),
            "step_mode": self.step_options is not None,
            **{f"step_{name}": value for name, value in steps.items()},
        }

    def stats(self) -> PaddingStats:
        """padding_stats of this rank's batches in the current epoch."""
        return padding_stats(
            self.lengths, self.batches(), cost=self.options.cost, budget=self.options.budget,
            pad_multiple=self.options.pad_multiple,
        )  # fmt: skip
