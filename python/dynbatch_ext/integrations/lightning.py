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
  the plan, so a state from another plan is refused, and so is a mid-epoch checkpoint that holds
  no position for this loader (made with another DataModule). `BudgetedSteps` saves every rank's
  RNG state in the checkpoint and restores it at the first step after resuming, so that a run
  with dropout resumes bit for bit (Lightning's checkpoints do not hold it).
- DDP: gradients are all-reduced once per optimizer step, on its last micro-batch (the others
  run under the strategy's `block_backward_sync`).
- Each collated micro-batch is checked against the plan: longer than the lengths it was planned
  with (a stale length array) is a ValueError naming the sample (see `padded_length`).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch
import torch.distributed as dist

try:
    import lightning.pytorch as pl
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise ImportError(f"dynbatch_ext.integrations.lightning needs lightning (2.x), which is not "
                      f"installed ({error}): pip install 'dynbatch_ext[lightning]'") from error  # fmt: skip

from ..batching import BucketBatchSampler
from ..batching.checks import as_lengths
from ..batching.loss_weights import accumulate_step
from ..batching.steps import DEFAULT_COMPOSITION, DEFAULT_POOL_STEPS, StepOptions
from .step_loader import PlannedLengthCheck, StepBatches, StepLoader, step_sampler_arguments

_SET_BY_TRAINER = {"num_replicas": "the Trainer's world_size", "rank": "the Trainer's global_rank"}
RNG_KEY = "dynbatch_ext_rng_states"  # in Lightning's checkpoint: every rank's RNG state


class _LightningStepLoader(StepLoader):
    """Refuses to start an epoch part-way through (as Lightning's restored progress says) unless
    its own position was restored to the same step: a checkpoint made with another loader holds
    no position for this one, and starting at step 0 would end the epoch that many steps early."""

    def __iter__(self):
        done = self._steps_trained()
        resume = self.batch_sampler._resume
        if done and (resume is None or resume != (self.batch_sampler.sampler.epoch, done)):
            saved = "no position of this loader" if resume is None else f"a position at step {resume[1]}"
            # Raised at the first batch: Lightning's teardown fails on a loader whose iter() raised.
            return _raising(ValueError(
                f"Lightning resumes epoch {self.batch_sampler.sampler.epoch} after {done} steps, "
                f"but its checkpoint holds {saved}: it was made with another DataModule or "
                "loader, and resuming it would skip or repeat samples. Resume from a checkpoint "
                "of this BudgetDataModule, or start the epoch afresh"
            ))  # fmt: skip
        return super().__iter__()


def _raising(error: Exception):
    raise error
    yield  # a generator: the error comes at the first next()


def _key_length(key: str, what: str) -> Callable[[Any], int | None]:
    def length(item):
        if not isinstance(item, dict) or key not in item:
            raise ValueError(
                f"BudgetDataModule checks each collated micro-batch's padded length against the "
                f"plan by its {key!r} entry, which this {what} does not have: pass "
                f"padded_length=<the key of the padded tensor, or a function of the collated "
                f"micro-batch>, or padded_length=None to leave the check out"
            )
        value = item[key]
        return int(value.shape[-1]) if isinstance(value, torch.Tensor) and what == "micro-batch" else len(value)
    return length


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
        padded_length: how to read a collated micro-batch's padded length, checked against the
            lengths it was planned with: the key of its padded tensor in a dict batch (default
            "input_ids"; the samples' own lengths are then `len(sample[key])`), a function of the
            collated micro-batch, or None to leave the check out.
        seed, **plan_options: the rest of `dynbatch_ext.PlanOptions`. The replicas are the
            trainer's world size.
    Subclass it for validation and test loaders.
    """

    def __init__(self, train_dataset, lengths, budget: float, *, collate_fn, step_target: float,
                 step_unit: str = "samples", max_micro_batches: int | None = None,
                 composition: str = DEFAULT_COMPOSITION, pool_steps: int = DEFAULT_POOL_STEPS,
                 cost="quadratic", num_workers: int = 0, pin_memory: bool = False,
                 padded_length: str | Callable[[Any], int] | None = "input_ids", seed: int = 0,
                 **plan_options):  # fmt: skip
        super().__init__()
        self.train_dataset = train_dataset
        self.lengths = as_lengths(lengths)
        if len(self.lengths) != len(train_dataset):
            raise ValueError(f"{len(self.lengths)} lengths for {len(train_dataset)} training samples")
        steps = StepOptions(step_target, step_unit, max_micro_batches, composition, pool_steps)
        options = dict(cost=cost, seed=seed, **plan_options)
        self.sampler_arguments = step_sampler_arguments(budget, steps, options,
                                                        set_by_framework=_SET_BY_TRAINER)
        self.collate_fn, self.num_workers, self.pin_memory = collate_fn, num_workers, pin_memory
        self.seed = seed
        if padded_length is None or callable(padded_length):
            self._lengths_of = (padded_length, lambda sample: None)
        elif isinstance(padded_length, str):
            self._lengths_of = (_key_length(padded_length, "micro-batch"), _key_length(padded_length, "sample"))
        else:
            raise ValueError(f"padded_length must be a key, a function or None, got {padded_length!r}")
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
        arguments = dict(self.sampler_arguments)
        budget = arguments.pop("budget")
        self.sampler = BucketBatchSampler(self.lengths, budget, num_replicas=trainer.world_size,
                                          rank=trainer.global_rank, **arguments)  # fmt: skip
        self.sampler.set_epoch(trainer.current_epoch)  # before any iterator exists
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        padded_length, sample_length = self._lengths_of
        check = None if padded_length is None else PlannedLengthCheck(
            self.lengths, self.sampler.options.pad_multiple, padded_length, sample_length)  # fmt: skip
        return _LightningStepLoader(
            self.train_dataset, StepBatches(self.sampler), self.collate_fn, check,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory, steps_trained=lambda: progress.processed,
            # Its own generator: iterating the loader then draws nothing from the global RNG,
            # which a resumed run must find where the uninterrupted one left it.
            generator=torch.Generator().manual_seed(self.seed),
        )  # fmt: skip


class BudgetedSteps:
    """A LightningModule mixin that trains on BudgetDataModule's steps: each micro-batch's mean
    loss (`micro_batch_loss`, which you write) weighted by its share of the step's samples over
    all ranks (`micro_batch_weights`), backward per micro-batch, one optimizer step per step.

    Set `gradient_clip_val` here (not on the Trainer, which refuses it under manual
    optimization). The scheduler, if `configure_optimizers` returns one, steps every step.
    Under DDP the gradients are all-reduced once per step. The checkpoint holds every rank's RNG
    state, restored at the first step after resuming (call super() if you override
    `on_save_checkpoint` or `on_load_checkpoint`).
    """

    gradient_clip_val: float | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self._rng_to_restore: dict | None = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        mine = {"cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []}  # fmt: skip
        states = [mine]
        if dist.is_available() and dist.is_initialized():
            states = [None] * dist.get_world_size()
            dist.all_gather_object(states, mine)
        checkpoint[RNG_KEY] = states

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        states = checkpoint.get(RNG_KEY)
        if states is None:
            return  # a checkpoint of another module: the RNG is not restored
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if len(states) <= rank:
            raise ValueError(f"the checkpoint holds RNG states of {len(states)} rank(s), not of rank "
                             f"{rank}: resume with the world size it was saved with")  # fmt: skip
        self._rng_to_restore = states[rank]

    def micro_batch_loss(self, batch) -> torch.Tensor:
        raise NotImplementedError("BudgetedSteps needs micro_batch_loss(batch): the mean loss of one micro-batch")

    def micro_batch_count(self, batch) -> float:
        """What the micro-batch's loss is a mean over: its samples by default."""
        for value in (batch.values() if isinstance(batch, dict) else batch):
            if hasattr(value, "__len__"):
                return float(len(value))
        raise ValueError("cannot count the samples of this micro-batch: override micro_batch_count")

    def training_step(self, micro_batches: list, batch_idx: int) -> torch.Tensor:
        if self._rng_to_restore is not None:  # where the saved run was before this step
            torch.set_rng_state(self._rng_to_restore["cpu"])
            if self._rng_to_restore["cuda"]:
                torch.cuda.set_rng_state_all(self._rng_to_restore["cuda"])
            self._rng_to_restore = None
        optimizer = self.optimizers()
        counts = [self.micro_batch_count(batch) for batch in micro_batches]
        block_sync = getattr(self.trainer.strategy, "block_backward_sync", contextlib.nullcontext)
        mean = accumulate_step(micro_batches, counts, self.micro_batch_loss, self.manual_backward,
                               no_sync=block_sync)  # fmt: skip
        if self.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        self.log("train_loss", mean, prog_bar=True, batch_size=int(sum(counts)))
        return mean
