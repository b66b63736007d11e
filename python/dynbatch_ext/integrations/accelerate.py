"""Budgeted batches in a plain HF accelerate loop.

`accelerator.prepare(loader)` wraps a DataLoader's batch sampler in accelerate's
`BatchSamplerShard`, which gives each process every `num_processes`-th batch: a
`BucketBatchSampler`, which already gives each process its own batches (its rank from
torch.distributed), would be split a second time and lose samples, and one planned for a single
replica would be split with accelerate's `even_batches` padding, which repeats samples. Prepare
the model and optimizer as usual, and the loader with `prepare_loader`, which puts its batches on
the accelerator's device and leaves its batches alone:

    from dynbatch_ext import BucketBatchSampler
    from dynbatch_ext.integrations.accelerate import prepare_loader

    accelerator = Accelerator()
    sampler = BucketBatchSampler(lengths, budget=16 * 256**2)  # this process's batches
    loader = prepare_loader(accelerator, DataLoader(dataset, batch_sampler=sampler, collate_fn=pad))
    model, optimizer = accelerator.prepare(model, optimizer)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader: ...

A BucketBatchSampler iterated by accelerate's sharding over several processes refuses, with a
message that names `prepare_loader`.
"""
from __future__ import annotations

import torch

try:
    from accelerate.data_loader import prepare_data_loader
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise ImportError(f"dynbatch_ext.integrations.accelerate needs accelerate, which is not installed "
                      f"({error}): pip install 'dynbatch_ext[hf]'") from error  # fmt: skip


def prepare_loader(accelerator, loader: torch.utils.data.DataLoader) -> torch.utils.data.DataLoader:
    """`loader` as `accelerator.prepare` would make it for one process: its batches moved to the
    accelerator's device, never sharded or padded across processes (its batch sampler gives each
    process its own batches already)."""
    return prepare_data_loader(loader, device=accelerator.device, num_processes=1, process_index=0,
                               put_on_device=accelerator.device_placement, even_batches=False,
                               non_blocking=accelerator.non_blocking)  # fmt: skip
