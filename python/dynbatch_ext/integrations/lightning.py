"""Budgeted batches in Lightning (lightning 2.x): a DataModule whose training loader yields one
optimizer step per item, and a LightningModule mixin that trains on those steps with exact loss
weights. Lightning's `accumulate_grad_batches` is a fixed count of batches per step, so the mixin
optimizes by hand (`automatic_optimization = False`):

    import lightning as L
    from dynbatch_ext.integrations.lightning import BudgetDataModule, BudgetedSteps

    class Classifier(BudgetedSteps, L.LightningModule):
        def micro_batch_loss(self, batch):  # the mean loss of one micro-batch
            return F.cross_entropy(self.net(batch["x"]), batch["y"])
        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    data = BudgetDataModule(train_set, lengths, budget=16 * 256**2, step_target=32, collate_fn=pad)
    L.Trainer(max_epochs=3, use_distributed_sampler=False).fit(Classifier(), data)

- DDP: each rank plans its own micro-batches, the same number in every step, so Lightning must not
  inject its DistributedSampler on top: `Trainer(use_distributed_sampler=False)` (refused
  otherwise, with that message).
- Epochs: the DataModule sets the sampler's epoch when it builds the loader, and Lightning's fit
  loop sets it again before every epoch (on `batch_sampler.sampler`).
- Resume: the loader has `state_dict` / `load_state_dict`, so Lightning keeps its position in
  every checkpoint and restores it mid-epoch: the steps trained so far as the trainer counts
  them (the loader itself runs a batch ahead, which Lightning prefetches), with every setting of
  the plan, so a state from another plan is refused.
"""
from __future__ import annotations

from typing import Callable

import torch

try:
    import lightning.pytorch as pl
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise ImportError(f"dynbatch_ext.integrations.lightning needs lightning (2.x), which is not "
                      f"installed ({error}): pip install 'dynbatch_ext[lightning]'") from error  # fmt: skip

from ..batching import BucketBatchSampler, micro_batch_weights
from ..batching.checks import as_lengths
from ..batching.steps import DEFAULT_COMPOSITION, DEFAULT_POOL_STEPS, StepOptions
from .steps import StepBatches, StepCollator, StepDataset, step_sampler_arguments

_SET_BY_TRAINER = {"num_replicas": "the Trainer's world_size", "rank": "the Trainer's global_rank"}


class _StepLoader(torch.utils.data.DataLoader):
    """The training loader: one optimizer step per item, resumable mid-epoch by Lightning."""

    def __init__(self, *args, steps_trained: Callable[[], int], **kwargs):
        super().__init__(*args, **kwargs)
        self._steps_trained = steps_trained

    def state_dict(self) -> dict:
        return self.batch_sampler.state_dict(self._steps_trained())

    def load_state_dict(self, state: dict) -> None:
        self.batch_sampler.load_state_dict(state)


class BudgetDataModule(pl.LightningDataModule):
    """Training data as budgeted micro-batches grouped into optimizer steps of about
    `step_target` samples (or real tokens, `step_unit="tokens"`) over all ranks.

    Args:
        train_dataset: a map-style dataset (a datasets.Dataset is read a step at a time).
        lengths: its `(N,)` or `(N, 2)` lengths.
        budget, cost: what a micro-batch may cost (see `dynbatch_ext.plan_batches`).
        collate_fn: collates one micro-batch (a list of samples).
        step_target, step_unit, max_micro_batches, composition, pool_steps: the optimizer steps
            (see `plan_steps`); micro-batches hold at most `step_target` samples unless
            `max_batch_size` is given.
        num_workers, pin_memory: the DataLoader's.
        seed, **plan_options: the rest of `dynbatch_ext.PlanOptions`. The replicas are the
            trainer's world size.
    Subclass it for validation and test loaders.
    """

    def __init__(self, train_dataset, lengths, budget: float, *, collate_fn, step_target: float,
                 step_unit: str = "samples", max_micro_batches: int | None = None,
                 composition: str = DEFAULT_COMPOSITION, pool_steps: int = DEFAULT_POOL_STEPS,
                 cost="quadratic", num_workers: int = 0, pin_memory: bool = False, seed: int = 0,
                 **plan_options):  # fmt: skip
        super().__init__()
        self.train_dataset = train_dataset
        self.lengths = as_lengths(lengths)
        if len(self.lengths) != len(train_dataset):
            raise ValueError(f"{len(self.lengths)} lengths for {len(train_dataset)} training samples")
        steps = StepOptions(step_target, step_unit, max_micro_batches, composition, pool_steps)
        self.plan = step_sampler_arguments(budget, steps, dict(cost=cost, seed=seed, **plan_options),
                                           set_by_framework=_SET_BY_TRAINER)  # fmt: skip
        self.collate_fn, self.num_workers, self.pin_memory = collate_fn, num_workers, pin_memory
        self.sampler: BucketBatchSampler | None = None

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        trainer = self.trainer
        connector = getattr(trainer, "_accelerator_connector", None)
        if trainer.world_size > 1 and getattr(connector, "use_distributed_sampler", False):
            raise ValueError(
                "BudgetDataModule shards its micro-batches over the ranks itself: create the "
                "Trainer with use_distributed_sampler=False, or Lightning would wrap the sampler in "
                "a DistributedSampler and split each rank's batches again"
            )
        plan = dict(self.plan)
        budget = plan.pop("budget")
        self.sampler = BucketBatchSampler(self.lengths, budget, num_replicas=trainer.world_size,
                                          rank=trainer.global_rank, **plan)  # fmt: skip
        self.sampler.set_epoch(trainer.current_epoch)  # before any iterator exists
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        return _StepLoader(
            StepDataset(self.train_dataset), batch_sampler=StepBatches(self.sampler),
            collate_fn=StepCollator(self.collate_fn), num_workers=self.num_workers,
            pin_memory=self.pin_memory, steps_trained=lambda: progress.processed,
        )  # fmt: skip


class BudgetedSteps:
    """A LightningModule mixin that trains on BudgetDataModule's steps: each micro-batch's mean
    loss (`micro_batch_loss`, which you write) weighted by its share of the step's samples over
    all ranks (`micro_batch_weights`), backward per micro-batch, one optimizer step per step.

    Set `gradient_clip_val` here (not on the Trainer, which refuses it under manual
    optimization). The scheduler, if `configure_optimizers` returns one, steps every step.
    """

    gradient_clip_val: float | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False

    def micro_batch_loss(self, batch) -> torch.Tensor:
        raise NotImplementedError("BudgetedSteps needs micro_batch_loss(batch): the mean loss of one micro-batch")

    def micro_batch_count(self, batch) -> float:
        """What the micro-batch's loss is a mean over: its samples by default."""
        for value in (batch.values() if isinstance(batch, dict) else batch):
            if hasattr(value, "__len__"):
                return float(len(value))
        raise ValueError("cannot count the samples of this micro-batch: override micro_batch_count")

    def training_step(self, micro_batches: list, batch_idx: int) -> torch.Tensor:
        optimizer = self.optimizers()
        counts = [self.micro_batch_count(batch) for batch in micro_batches]
        total = 0.0
        for batch, weight, count in zip(micro_batches, micro_batch_weights(counts), counts):
            loss = self.micro_batch_loss(batch)
            self.manual_backward(loss * weight)
            total = total + loss.detach() * count
        if self.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        mean = total / sum(counts)
        self.log("train_loss", mean, prog_bar=True, batch_size=int(sum(counts)))
        return mean
