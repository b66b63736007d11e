"""BucketBatchSampler: budgeted batches for `DataLoader(batch_sampler=...)`."""
from __future__ import annotations

import numpy as np
import torch.distributed as dist

from ._checks import as_lengths, check_int
from .batching import Cost, PaddingStats, _make_plan, _Plan, _warn_left_out, padding_stats
from .resumable import ResumableBatchSampler
from .steps import arrange_in_steps, check_step_options


def _default_replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """Fills what the caller left out from torch.distributed when it is initialised."""
    initialised = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if initialised else 1
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    num_replicas = check_int("num_replicas", num_replicas, 1)
    return num_replicas, check_int("rank", rank, 0, num_replicas - 1)


class BucketBatchSampler(ResumableBatchSampler):
    """Yields lists of sample indices whose padded cost stays within `budget`.

    Use it as `DataLoader(dataset, batch_sampler=BucketBatchSampler(lengths, budget))`, call
    `set_epoch(epoch)` before each epoch for a new order, and save `state_dict()` in checkpoints
    to resume mid-epoch with exactly the batches not yet consumed.

    Every option is `dynbatch_ext.plan_batches`'s. Under `torch.distributed`, `num_replicas` and
    `rank` default to the world size and this process's rank; every rank gets the same number of
    batches, and the batches of one step have similar cost.

    Step mode (`step_target=...`, see `dynbatch_ext.plan_steps`): the batches become
    micro-batches, yielded one optimizer step after another, each step holding about
    `step_target` samples (`step_unit="samples"`) or real tokens (`"tokens"`) over all ranks.
    `group_steps(loader)` hands them to the training loop a step at a time; `steps()` and
    `step_sizes()` describe the layout.
    """

    def __init__(
        self,
        lengths,
        budget: float,
        *,
        cost: Cost = "quadratic",
        pad_multiple: int = 1,
        max_batch_size: int | None = None,
        oversize: str = "error",
        shuffle: bool = True,
        seed: int = 0,
        padding_noise: float = 0.0,
        batch_overhead: float = 0.15,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        step_target: float | None = None,
        step_unit: str = "samples",
        max_micro_batches: int | None = None,
    ):
        self.lengths = as_lengths(lengths)
        self.num_replicas, self.rank = _default_replicas(num_replicas, rank)
        self.budget = budget
        self.cost = cost
        self.pad_multiple = pad_multiple
        self._options = dict(
            cost=cost, pad_multiple=pad_multiple, max_batch_size=max_batch_size,
            oversize=oversize, shuffle=shuffle, seed=seed, padding_noise=padding_noise,
            batch_overhead=batch_overhead, num_replicas=self.num_replicas, drop_last=drop_last,
        )  # fmt: skip
        self.step_target = step_target
        if step_target is not None:
            target, unit, room = check_step_options(step_target, step_unit, max_micro_batches)
            self._step_options = dict(target=target, unit=unit, max_micro_batches=room)
        super().__init__()
        self._cached: tuple[int, _Plan] | None = None
        _warn_left_out(self._plan())  # plan epoch 0 now: bad options fail here, not mid-training

    def _plan(self) -> _Plan:
        if self._cached is None or self._cached[0] != self.epoch:
            plan = _make_plan(self.lengths, self.budget, epoch=self.epoch, **self._options)
            if self.step_target is not None:
                plan = arrange_in_steps(
                    plan, self.lengths, **self._step_options, epoch=self.epoch,
                    num_replicas=self.num_replicas, shuffle=self._options["shuffle"],
                    seed=self._options["seed"],
                )  # fmt: skip
            self._cached = (self.epoch, plan)
        return self._cached[1]

    def batches(self) -> list[np.ndarray]:
        """This rank's batches for the current epoch, as int64 index arrays."""
        return self._plan().batches[self.rank :: self.num_replicas]

    def _step_layout(self) -> list[int] | None:
        return None if self.step_target is None else self._plan().step_sizes.tolist()

    def step_totals(self) -> np.ndarray:
        """Samples (or real tokens) of each step of the current epoch, summed over ranks."""
        self.step_sizes()  # says how to get steps when there are none
        return self._plan().step_totals

    @property
    def skipped(self) -> np.ndarray:
        """Samples left out because they alone exceed the budget (oversize="skip")."""
        return self._plan().skipped

    def _settings(self) -> dict:
        return {
            "num_samples": len(self.lengths),
            "budget": self.budget,
            "num_replicas": self.num_replicas,
            "seed": self._options["seed"],
            "step_target": self.step_target,
        }

    def stats(self) -> PaddingStats:
        """padding_stats of this rank's batches in the current epoch."""
        return padding_stats(
            self.lengths, self.batches(), cost=self.cost, budget=self.budget,
            pad_multiple=self.pad_multiple,
        )  # fmt: skip
