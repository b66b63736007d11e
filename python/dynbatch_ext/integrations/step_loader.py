"""One optimizer step per DataLoader item, for the framework integrations: the frameworks count
a fixed number of batches per step, so each item holds a whole step's micro-batches instead.

    StepLoader(dataset, StepBatches(sampler), collate, check=..., num_workers=...)

yields, per optimizer step of `sampler` (a BucketBatchSampler in step mode), the list of this
rank's micro-batches, each collated by `collate`. The batch sampler's items are
(micro-batch number, sample index) keys, read in one call where the dataset reads lists
(`__getitems__`, as datasets.Dataset does) and split back into micro-batches by the collator, so
the DataLoader's workers, pinning and prefetching work as usual. No framework is imported here.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..batching import BucketBatchSampler
from ..batching.options import plan_options
from ..batching.steps import StepOptions, default_micro_batch_cap


def step_sampler_arguments(budget, steps: StepOptions, options: dict,
                           set_by_framework: dict[str, str]) -> dict:  # fmt: skip
    """BucketBatchSampler's keyword arguments in step mode, checked when the integration is made
    rather than at its first epoch. Micro-batches hold at most one step's samples unless
    `options["max_batch_size"]` says otherwise. `set_by_framework` names the options the
    framework sets (option: where from), which `options` may not hold."""
    for name, source in set_by_framework.items():
        if name in options:
            raise ValueError(f"the plan's {name} comes from {source}; leave it out of the options")
    options = {"max_batch_size": default_micro_batch_cap(steps.target, steps.unit), **options}
    plan_options(budget, options)
    return dict(budget=budget, step_target=steps.target, step_unit=steps.unit,
                max_micro_batches=steps.max_micro_batches, composition=steps.composition,
                pool_steps=steps.pool_steps, **options)  # fmt: skip


class StepBatches(torch.utils.data.Sampler):
    """A BucketBatchSampler in step mode as a batch sampler whose batches are whole optimizer
    steps: each yields (micro-batch number, sample index) pairs, which StepCollator splits.

    The frameworks count an epoch's steps once, from the first epoch's length, so every epoch
    must have as many steps: `set_epoch` refuses one that has not (possible only for
    composition="sorted" with padding_noise and max_micro_batches)."""

    def __init__(self, sampler: BucketBatchSampler):
        # Named `sampler`: Lightning sets the epoch on `dataloader.batch_sampler.sampler`, the HF
        # Trainer on the loader (StepLoader.set_epoch) or on a skip wrapper's `.batch_sampler`.
        self.sampler = sampler
        self.steps_per_epoch = len(sampler.micro_batches_per_step())
        self._resume = None  # (epoch, steps done): where the next iteration of that epoch starts

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __iter__(self):
        steps = self.sampler.steps()
        if self._resume is not None and self._resume[0] == self.sampler.epoch:
            steps = steps[self._resume[1]:]
        self._resume = None
        for step in steps:
            yield [(k, int(i)) for k, micro_batch in enumerate(step) for i in micro_batch]

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        steps = len(self.sampler.micro_batches_per_step())
        if steps != self.steps_per_epoch:
            raise ValueError(
                f"epoch {epoch} plans {steps} optimizer steps where the first planned "
                f"{self.steps_per_epoch}, and the training framework counts an epoch's steps "
                "once: some samples would not be trained. Leave padding_noise at 0 or "
                "max_micro_batches unset, or use composition='random' or 'pooled', whose steps "
                "per epoch never change"
            )

    def steps_done(self, global_step: int) -> tuple[int, int]:
        """(epoch, steps done in it) after `global_step` optimizer steps in all, as the
        frameworks count them: a finished epoch is the next one's start."""
        return divmod(int(global_step), self.steps_per_epoch)

    def state_dict(self, steps_done: int) -> dict:
        """Where an epoch stands after `steps_done` optimizer steps were trained (the sampler's
        state, with every setting it must be resumed under)."""
        consumed = int(sum(self.sampler.micro_batches_per_step()[:steps_done]))
        return {"sampler": self.sampler.state_dict(batches_consumed=consumed), "steps_done": steps_done}

    def check_state(self, state) -> dict:
        """`state` if it is a state_dict() of a sampler that plans these steps; a ValueError naming
        what differs otherwise (BucketBatchSampler.check_state)."""
        if not isinstance(state, dict) or not {"sampler", "steps_done"} <= set(state):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"this is not a saved state of budgeted steps (a dict with 'sampler' "
                             f"and 'steps_done'), got {got}")  # fmt: skip
        self.sampler.check_state(state["sampler"])
        return state

    def load_state_dict(self, state: dict) -> None:
        """The next iteration of the saved epoch starts after its `steps_done` steps; a state from
        a sampler that plans other steps is refused."""
        self.check_state(state)
        self.sampler.load_state_dict(state["sampler"])
        self._resume = (self.sampler.epoch, int(state["steps_done"]))


class StepDataset(torch.utils.data.Dataset):
    """Reads (micro-batch number, index) keys: the sample, tagged with both."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        micro_batch, index = key
        return micro_batch, index, self.dataset[index]

    def __getitems__(self, keys):
        indices = [index for _, index in keys]
        if hasattr(self.dataset, "__getitems__"):  # datasets.Dataset: one read for the step
            samples = self.dataset.__getitems__(indices)
        else:
            samples = [self.dataset[i] for i in indices]
        return [(micro_batch, index, sample) for (micro_batch, index), sample in zip(keys, samples)]


class PlannedLengthCheck:
    """Checks a collated micro-batch against the plan: its padded length (`padded_length(batch)`,
    one number) may not exceed the longest length the plan gave its samples, or the lengths the
    plan was made from are stale and the budget no longer bounds the batch. Where it does,
    `sample_length(sample)` finds which samples grew, for the message."""

    def __init__(self, lengths: np.ndarray, pad_multiple: int,
                 padded_length: Callable[[Any], int | None],
                 sample_length: Callable[[Any], int | None]):  # fmt: skip
        # Pairs: both fields, as a model that concatenates them sees them (an upper bound).
        padded = -(-lengths // pad_multiple) * pad_multiple
        self.planned = padded if lengths.ndim == 1 else padded.sum(axis=1)
        self.lengths = lengths if lengths.ndim == 1 else lengths.sum(axis=1)
        self.padded_length, self.sample_length = padded_length, sample_length

    def __call__(self, indices: list[int], samples: list, batch) -> None:
        got = self.padded_length(batch)
        if got is None:
            return
        planned = int(self.planned[indices].max())
        if got <= planned:
            return
        grown = []
        for index, sample in zip(indices, samples):
            actual = self.sample_length(sample)
            if actual is not None and actual > self.lengths[index]:
                grown.append(f"sample {index}: {actual} tokens, {int(self.lengths[index])} in the plan")
        which = "; ".join(grown[:3]) if grown else f"samples {indices[:8]}"
        raise ValueError(
            f"a micro-batch collated to length {got}, longer than the {planned} its samples have "
            f"in the plan ({which}): the lengths the plan was made from are stale (recompute the "
            "length column after changing the texts), or the collator pads further than the "
            "samples' longest length (padding='max_length'), and the budget no longer bounds "
            "the micro-batch"
        )


class StepCollator:
    """The step's samples, split back into micro-batches, each collated by `collate` and checked
    by `check` (a PlannedLengthCheck, or None)."""

    def __init__(self, collate, check: PlannedLengthCheck | None = None):
        self.collate, self.check = collate, check

    def __call__(self, tagged):
        groups: dict[int, tuple[list, list]] = {}
        for micro_batch, index, sample in tagged:
            indices, samples = groups.setdefault(micro_batch, ([], []))
            indices.append(index)
            samples.append(sample)
        collated = []
        for k in sorted(groups):
            indices, samples = groups[k]
            batch = self.collate(samples)
            if self.check is not None:
                self.check(indices, samples, batch)
            collated.append(batch)
        return collated


class StepLoader(torch.utils.data.DataLoader):
    """The training loader: one optimizer step per item. `set_epoch` reaches the sampler (the HF
    Trainer calls it on the loader); `state_dict` / `load_state_dict` hold the position after
    `steps_trained()` steps of the epoch (Lightning saves a stateful loader in its checkpoints)."""

    def __init__(self, dataset, steps: StepBatches, collate, check: PlannedLengthCheck | None = None,
                 *, steps_trained: Callable[[], int] | None = None, **loader_options):
        """Items of `dataset` in `steps`, collated a micro-batch at a time by `collate` (and
        checked by `check`); `loader_options` go to the DataLoader (workers, pinning, ...)."""
        super().__init__(StepDataset(dataset), batch_sampler=steps,
                         collate_fn=StepCollator(collate, check), **loader_options)  # fmt: skip
        self._steps_trained = steps_trained

    def set_epoch(self, epoch: int) -> None:
        self.batch_sampler.set_epoch(epoch)

    def state_dict(self) -> dict:
        return self.batch_sampler.state_dict(self._steps_trained())

    def load_state_dict(self, state: dict) -> None:
        self.batch_sampler.load_state_dict(state)
