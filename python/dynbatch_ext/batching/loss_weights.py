"""Exact loss weights for the micro-batches of one optimizer step: `micro_batch_weights`."""
from __future__ import annotations

import torch
import torch.distributed as dist


def micro_batch_weights(counts, *, group=None, gradients_averaged: bool = True) -> list[float]:
    """Loss weights for the micro-batches of one optimizer step: `count_i / step_total`.

    Multiply micro-batch i's mean loss (a mean over its `counts[i]` samples or tokens) by the
    i-th weight before `backward()`: the accumulated gradient then equals the gradient of the
    mean loss over all samples of the step, which `loss / accumulation_steps` gets wrong as soon
    as micro-batches differ in size.

    Under `torch.distributed` the step total is summed over the ranks of `group` (one
    all-reduce). DistributedDataParallel averages gradients over ranks, so by default the weights
    are multiplied by the world size to undo that average; pass `gradients_averaged=False` when
    the gradients are summed instead.

    Args:
        counts: this rank's micro-batch sizes for the step, in the unit the loss averages over.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64).detach().cpu()
    if counts.ndim != 1 or counts.numel() == 0:
        raise ValueError(f"counts must be a non-empty 1-D sequence, got shape {tuple(counts.shape)}")
    if not torch.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"counts must be finite and >= 0, got {counts.tolist()}")
    total = counts.sum()
    scale = 1
    if dist.is_available() and dist.is_initialized():
        device = "cuda" if dist.get_backend(group) == "nccl" else "cpu"
        total = total.to(device)
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        total = total.cpu()
        if gradients_averaged:
            scale = dist.get_world_size(group)
    if not total > 0:
        raise ValueError("the step holds nothing to average over (its counts sum to 0)")
    if not torch.isfinite(total):  # the weights would all come out 0
        raise ValueError(f"the step's counts sum to more than a float64 holds ({counts.tolist()})")
    return (counts * scale / total).tolist()
