"""One optimizer step per DataLoader item, for the framework integrations: the frameworks count
a fixed number of batches per step, so each item holds a whole step's micro-batches instead.

    DataLoader(StepDataset(dataset), batch_sampler=StepBatches(sampler),
               collate_fn=StepCollator(collate))

yields, per optimizer step of `sampler` (a BucketBatchSampler in step mode), the list of this
rank's micro-batches, each collated by `collate`. The batch sampler's items are
(micro-batch number, sample index) keys, read in one call where the dataset reads lists
(`__getitems__`, as datasets.Dataset does) and split back into micro-batches by the collator, so
the DataLoader's workers, pinning and prefetching work as usual. No framework is imported here.
"""
from __future__ import annotations

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
    steps: each yields (micro-batch number, sample index) pairs, which StepCollator splits."""

    def __init__(self, sampler: BucketBatchSampler):
        # Named `sampler`: Lightning sets the epoch on `dataloader.batch_sampler.sampler`, the HF
        # Trainer on the batch sampler itself (set_epoch below).
        self.sampler = sampler

        self._resume = None  # (epoch, steps done): where the next iteration of that epoch starts

    def __len__(self) -> int:
        return len(self.sampler.step_sizes())

    def __iter__(self):
        steps = self.sampler.steps()
        if self._resume is not None and self._resume[0] == self.sampler.epoch:
            steps = steps[self._resume[1]:]
        self._resume = None
        for step in steps:
            yield [(k, int(i)) for k, micro_batch in enumerate(step) for i in micro_batch]

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def state_dict(self, steps_done: int) -> dict:
        """Where an epoch stands after `steps_done` optimizer steps were trained (the sampler's
        state, with every setting it must be resumed under)."""
        consumed = int(sum(self.sampler.step_sizes()[:steps_done]))
        return {"sampler": self.sampler.state_dict(batches_consumed=consumed), "steps_done": steps_done}

    def load_state_dict(self, state: dict) -> None:
        """The next iteration of the saved epoch starts after its `steps_done` steps; a state from
        a sampler that plans other batches is refused (BucketBatchSampler.load_state_dict)."""
        self.sampler.load_state_dict(state["sampler"])
        self._resume = (self.sampler.epoch, int(state["steps_done"]))


class StepDataset(torch.utils.data.Dataset):
    """Reads (micro-batch number, index) keys: the sample, tagged with its micro-batch."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        micro_batch, index = key
        return micro_batch, self.dataset[index]

    def __getitems__(self, keys):
        indices = [index for _, index in keys]
        if hasattr(self.dataset, "__getitems__"):  # datasets.Dataset: one read for the step
            samples = self.dataset.__getitems__(indices)
        else:
            samples = [self.dataset[i] for i in indices]
        return [(micro_batch, sample) for (micro_batch, _), sample in zip(keys, samples)]


class StepCollator:
    """The step's samples, split back into micro-batches, each collated by `collate`."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, tagged):
        groups: dict[int, list] = {}
        for micro_batch, sample in tagged:
            groups.setdefault(micro_batch, []).append(sample)
        return [self.collate(groups[k]) for k in sorted(groups)]
