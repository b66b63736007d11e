"""Budgeted batches in the HF Trainer (transformers 5.x, with accelerate and datasets).

`BudgetTrainer` is a `transformers.Trainer` that trains on budgeted micro-batches grouped into
optimizer steps of about `step_target` samples, each micro-batch's mean loss weighted by its
share of the step (`micro_batch_weights`), so that a step's accumulated gradient is exactly the
gradient of one batch of all its samples, on one rank or many:

    from dynbatch_ext.integrations.hf import BudgetTrainer

    dataset = dataset.map(lambda rows: tokenizer(rows["text"], truncation=True, return_length=True),
                          batched=True)
    trainer = BudgetTrainer(model=model, args=TrainingArguments(...), train_dataset=dataset,
                            data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),
                            budget=16 * 256**2, cost="quadratic", step_target=32)
    trainer.train()

How it fits the Trainer:
- The training DataLoader yields one optimizer step at a time (its micro-batches, each collated
  by the data collator; see step_loader.py), and `gradient_accumulation_steps` stays 1: the Trainer's counting of
  steps, its schedules, logging and checkpoints all see optimizer steps.
- Under DDP (torchrun, accelerate launch) the sampler gives each rank its own micro-batches, the
  same number in every step; the DataLoader is not passed through `accelerator.prepare`, whose
  `BatchSamplerShard` would split the rank's batches a second time and lose samples.
- The Trainer calls `set_epoch` on the loader each epoch (a new order every epoch), and on
  resume skips the optimizer steps already trained in the epoch (accelerate's
  `SkipBatchSampler`, whose `.batch_sampler` it then sets the epoch on): the remaining steps are
  exactly those not yet trained. Every checkpoint holds the sampler's settings
  (`budget_sampler.json`), and a resume under any other setting (lengths, budget, cost, steps,
  seed, world size, ...) is refused, naming what changed.
- `pad_multiple` is the collator's `pad_to_multiple_of`, so the budget counts the padding the
  collator adds.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

try:
    import datasets
    import transformers
    from transformers.trainer_utils import seed_worker
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        f"dynbatch_ext.integrations.hf needs transformers (5.x), accelerate and datasets, which "
        f"are not installed ({error}): pip install 'dynbatch_ext[hf]'"
    ) from error

from ..batching import BucketBatchSampler
from ..batching.checks import as_lengths
from ..batching.loss_weights import accumulate_step
from ..batching.steps import DEFAULT_COMPOSITION, DEFAULT_POOL_STEPS, StepOptions
from .step_loader import PlannedLengthCheck, StepBatches, StepLoader, step_sampler_arguments

LOSS_UNITS = ("samples", "tokens")
SAMPLER_STATE_NAME = "budget_sampler.json"  # in every checkpoint folder, beside trainer_state.json
_SET_BY_TRAINING_ARGUMENTS = {"seed": "TrainingArguments.seed",
                              "num_replicas": "TrainingArguments.world_size",
                              "rank": "TrainingArguments.process_index"}  # fmt: skip


def dataset_lengths(dataset, columns: str | Sequence[str] = "length") -> np.ndarray:
    """The lengths a `datasets.Dataset` holds in `columns`: one column name for single texts
    (shape (N,)), two for pairs (shape (N, 2)), read as whole columns (no Python loop over rows).

    Tokenizers write such a column with `return_length=True`: `dataset.map(lambda rows:
    tokenizer(rows["text"], return_length=True), batched=True)` ("length"), which is also the
    Trainer's own `length_column_name`.
    """
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"dataset_lengths reads a datasets.Dataset, got {type(dataset).__name__}; "
                        "pass the lengths as an array instead (lengths=...)")  # fmt: skip
    names = [columns] if isinstance(columns, str) else list(columns)
    if len(names) not in (1, 2):
        raise ValueError(f"columns must name one length column (single texts) or two (pairs), "
                         f"got {names}")  # fmt: skip
    missing = [n for n in names if n not in dataset.column_names]
    if missing:
        raise ValueError(
            f"the dataset has no column {missing[0]!r} (it has {dataset.column_names}); add one "
            "with the tokenizer's return_length=True, e.g. dataset.map(lambda row: "
            "tokenizer(row['text'], return_length=True))"
        )
    as_numpy = dataset.with_format("numpy")
    # A tokenizer mapped row by row writes each length as a one-element list: (N, 1).
    columns_read = [np.asarray(as_numpy[name]) for name in names]
    columns_read = [c[:, 0] if c.ndim == 2 and c.shape[1] == 1 else c for c in columns_read]
    if any(c.ndim != 1 for c in columns_read):
        raise ValueError(f"length columns {names} must hold one integer per row")
    return as_lengths(columns_read[0] if len(names) == 1 else np.stack(columns_read, axis=1))


def _check_world(args) -> None:
    """Refuses a launch where torch.distributed (or the launcher) has more processes than the
    TrainingArguments see: each process would train every sample, without gradient sync."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        launched = torch.distributed.get_world_size()
    if launched != args.world_size:
        raise ValueError(
            f"{launched} processes were launched (torchrun / accelerate launch) but the "
            f"TrainingArguments see a world of {args.world_size}, so every process would train "
            "every sample with no gradient sync. On a machine without a GPU pass "
            "TrainingArguments(use_cpu=True), which makes the Trainer run them as one "
            "distributed job; on GPUs launch one process per GPU"
        )


def _input_length(batch) -> int | None:
    """A collated micro-batch's padded length: the width of its input_ids."""
    ids = batch.get("input_ids") if isinstance(batch, dict) else None
    return int(ids.shape[-1]) if isinstance(ids, torch.Tensor) and ids.ndim >= 2 else None


def _sample_length(sample) -> int | None:
    ids = sample.get("input_ids") if isinstance(sample, dict) else None
    return len(ids) if ids is not None and hasattr(ids, "__len__") else None


class BudgetTrainer(transformers.Trainer):
    """A `transformers.Trainer` on budgeted micro-batches and optimizer steps of about equal size.

    Args (besides the Trainer's own):
        budget: the most a micro-batch may cost under `cost` (see `dynbatch_ext.plan_batches`).
        cost: "quadratic" (attention, default), "tokens", "count" or a `CostModel`.
        step_target: samples (or real tokens, `step_unit="tokens"`) per optimizer step, summed
            over ranks. Micro-batches hold at most `step_target` samples unless
            `plan_options["max_batch_size"]` says otherwise.
        max_micro_batches: at most this many micro-batches per rank in a step (None: no limit;
            composition="sorted" only).
        composition, pool_steps: which samples meet in a step ("random", "pooled" or "sorted";
            see `dynbatch_ext.batching.StepOptions`).
        lengths: the training set's lengths ((N,) or (N, 2)); by default read from
            `length_columns` of the dataset (see `dataset_lengths`).
        loss_unit: what the model's loss is a mean over: "samples" (classification; default) or
            "tokens" (the labels that are not -100). Each micro-batch's loss is weighted by its
            count of them over the step's.
        plan_options: further options of `dynbatch_ext.PlanOptions` (oversize, batch_overhead,
            padding_noise, ...). The seed is `args.seed`, the replicas are `args.world_size`.

    `args.gradient_accumulation_steps` must be 1: the steps are the sampler's.
    """

    def __init__(self, *args, budget: float, cost="quadratic", step_target: float,
                 step_unit: str = "samples", max_micro_batches: int | None = None,
                 composition: str = DEFAULT_COMPOSITION, pool_steps: int = DEFAULT_POOL_STEPS,
                 lengths=None,
                 length_columns: str | Sequence[str] = "length", loss_unit: str = "samples",
                 plan_options: dict | None = None, **kwargs):  # fmt: skip
        super().__init__(*args, **kwargs)
        _check_world(self.args)
        if self.args.dataloader_drop_last:
            raise ValueError("BudgetTrainer trains every sample once per epoch, in steps of "
                             "budgeted micro-batches with no batch left over to drop: set "
                             "dataloader_drop_last=False")  # fmt: skip
        if self.args.gradient_accumulation_steps != 1:
            raise ValueError(
                f"BudgetTrainer groups micro-batches into optimizer steps itself (step_target="
                f"{step_target}); set gradient_accumulation_steps=1, not "
                f"{self.args.gradient_accumulation_steps}"
            )
        if loss_unit not in LOSS_UNITS:
            raise ValueError(f"loss_unit must be one of {LOSS_UNITS}, got {loss_unit!r}")
        self.loss_unit = loss_unit
        options = dict(plan_options or {})
        collator_multiple = getattr(self.data_collator, "pad_to_multiple_of", None) or 1
        if options.setdefault("pad_multiple", collator_multiple) != collator_multiple:
            raise ValueError(
                f"plan_options pad_multiple={options['pad_multiple']} disagrees with the data "
                f"collator's pad_to_multiple_of={collator_multiple}: the budget would not count "
                "the padding the collator adds"
            )
        steps = StepOptions(step_target, step_unit, max_micro_batches, composition, pool_steps)
        self._sampler_arguments = step_sampler_arguments(
            budget, steps, dict(cost=cost, **options), set_by_framework=_SET_BY_TRAINING_ARGUMENTS
        )
        self._lengths = lengths
        self._length_columns = length_columns
        self.budget_sampler: BucketBatchSampler | None = None
        self._step_batches: StepBatches | None = None
        self._resuming_from: str | None = None

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        """`transformers.Trainer.train`; a checkpoint to resume from must hold the sampler state of
        a BudgetTrainer with the same settings (checked before anything is trained)."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = transformers.trainer_utils.get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"No valid checkpoint found in output directory ({self.args.output_dir})")
        self._resuming_from = resume_from_checkpoint or None
        try:
            return super().train(resume_from_checkpoint, *args, **kwargs)
        finally:
            self._resuming_from = None

    def _training_lengths(self) -> np.ndarray:
        if self._lengths is not None:
            return as_lengths(self._lengths)
        return dataset_lengths(self.train_dataset, self._length_columns)

    def get_train_dataloader(self) -> torch.utils.data.DataLoader:
        """One optimizer step per item: the rank's micro-batches of the step, each collated."""
        if self.train_dataset is None:
            raise ValueError("Trainer: training requires a train_dataset.")
        lengths = self._training_lengths()
        if len(lengths) != len(self.train_dataset):
            raise ValueError(f"{len(lengths)} lengths for {len(self.train_dataset)} training samples")
        arguments = dict(self._sampler_arguments)
        budget = arguments.pop("budget")
        self.budget_sampler = BucketBatchSampler(
            lengths, budget, num_replicas=self.args.world_size, rank=self.args.process_index,
            seed=self.args.seed, **arguments,
        )  # fmt: skip
        self._step_batches = StepBatches(self.budget_sampler)
        if self._resuming_from is not None:
            self._check_resumable(self._resuming_from)
        dataset, collate = self.train_dataset, self.data_collator
        # The sample's own length, read before unused columns are removed, to name stale lengths.
        check = PlannedLengthCheck(lengths, self.budget_sampler.options.pad_multiple,
                                   padded_length=_input_length, sample_length=_sample_length)  # fmt: skip
        if isinstance(dataset, datasets.Dataset):
            dataset = self._remove_unused_columns(dataset, description="Training")
        else:
            collate = self._get_collator_with_removed_columns(collate, description="Training")
        workers = self.args.dataloader_num_workers
        return StepLoader(
            dataset, self._step_batches, collate, check, num_workers=workers,
            pin_memory=self.args.dataloader_pin_memory,
            persistent_workers=self.args.dataloader_persistent_workers and workers > 0,
            prefetch_factor=self.args.dataloader_prefetch_factor if workers > 0 else None,
            worker_init_fn=functools.partial(seed_worker, num_workers=workers,
                                             rank=self.args.process_index),
        )  # fmt: skip

    def _save_checkpoint(self, model, trial) -> None:
        """The Trainer's checkpoint, and beside it where the sampler stands with every setting
        it must be resumed under (written first, atomically, so that a checkpoint folder without
        it was not finished)."""
        if self._step_batches is not None and self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / (
                f"{transformers.trainer_utils.PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            epoch, done = self._step_batches.steps_done(self.state.global_step)
            if done == 0 and epoch > 0:  # the end of an epoch: that epoch, whole
                epoch, done = epoch - 1, self._step_batches.steps_per_epoch
            if epoch != self.budget_sampler.epoch:
                raise RuntimeError(f"BudgetTrainer: the sampler is in epoch {self.budget_sampler.epoch} "
                                   f"at global step {self.state.global_step}, which the Trainer "
                                   f"counts as epoch {epoch}")  # fmt: skip
            state = {"global_step": self.state.global_step, **self._step_batches.state_dict(done)}
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / (SAMPLER_STATE_NAME + ".partial")
            partial.write_text(json.dumps(state, indent=1))
            os.replace(partial, folder / SAMPLER_STATE_NAME)  # whole, or not there
        super()._save_checkpoint(model, trial)

    def _check_resumable(self, checkpoint: str) -> None:
        """Refuses a checkpoint whose sampler state is missing, or was saved under other
        settings, or disagrees with the Trainer's own count of the steps done."""
        path = Path(checkpoint) / SAMPLER_STATE_NAME
        if not path.is_file():
            raise ValueError(
                f"{checkpoint} holds no {SAMPLER_STATE_NAME}: it was not saved by a BudgetTrainer "
                "(or its saving was cut short), so where its epoch stood cannot be checked and "
                "resuming could skip or repeat samples. Resume from a checkpoint a BudgetTrainer "
                "saved, or start afresh"
            )
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"{path} cannot be read as a sampler state: {error}") from None
        try:
            self._step_batches.check_state(saved)
        except ValueError as error:
            raise ValueError(f"cannot resume from {checkpoint}: {error}") from None
        trainer_state = Path(checkpoint) / transformers.trainer.TRAINER_STATE_NAME
        if trainer_state.is_file():
            global_step = json.loads(trainer_state.read_text()).get("global_step")
            if global_step != saved.get("global_step"):
                raise ValueError(f"cannot resume from {checkpoint}: its trainer state is at step "
                                 f"{global_step}, its sampler state at {saved.get('global_step')}")  # fmt: skip

    def _count(self, micro_batch: dict) -> float:
        labels = micro_batch["labels"]
        if self.loss_unit == "samples":
            return float(len(labels))
        return float((labels != -100).sum())

    def training_step(self, model, inputs: list[dict], num_items_in_batch=None) -> torch.Tensor:
        """One optimizer step's micro-batches: each micro-batch's mean loss times its share of
        the step (over all ranks), gradients accumulated, synchronised on the last one only.
        Returns the step's mean loss."""
        model.train()

        def micro_batch_loss(micro_batch: dict) -> torch.Tensor:
            with self.compute_loss_context_manager():
                return self.compute_loss(model, self._prepare_inputs(micro_batch))

        return accumulate_step(inputs, [self._count(micro_batch) for micro_batch in inputs],
                               micro_batch_loss, self.accelerator.backward,
                               no_sync=lambda: self.accelerator.no_sync(model))  # fmt: skip

    def floating_point_ops(self, inputs) -> int:
        if isinstance(inputs, list):
            return sum(super(BudgetTrainer, self).floating_point_ops(mb) for mb in inputs)
        return super().floating_point_ops(inputs)

    def _track_num_input_tokens(self, inputs):
        for micro_batch in inputs if isinstance(inputs, list) else [inputs]:
            super()._track_num_input_tokens(micro_batch)
