"""Exact loss weights for the micro-batches of one optimizer step: `micro_batch_weights`, and
`accumulate_step`, the loop every trainer of the package runs over them."""
from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Sequence

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


def accumulate_step(micro_batches: Sequence, counts: Sequence[float],
                    micro_batch_loss: Callable[[object], torch.Tensor],
                    backward: Callable[[torch.Tensor], None],
                    no_sync: Callable[[], ContextManager]) -> torch.Tensor:
    """Accumulates one optimizer step's gradients: each micro-batch's mean loss
    (`micro_batch_loss(batch)`, a mean over `counts[i]`) times its `micro_batch_weights` weight,
    through `backward`; every backward but the last inside `no_sync()`, so that data-parallel
    gradients are reduced once per step. Returns the step's mean loss over this rank's counts,
    detached (0 for a step of no samples: a rank's zero-weight step while another still trains).
    The optimizer step is the caller's."""  # fmt: skip
    weights = micro_batch_weights(counts)
    last = len(micro_batches) - 1
    total = 0.0
    for k, (batch, weight, count) in enumerate(zip(micro_batches, weights, counts)):
        with contextlib.nullcontext() if k == last else no_sync():
            loss = micro_batch_loss(batch)
            backward(loss * weight)
        total = total + loss.detach() * count
    samples = sum(counts)
    return total / samples if samples > 0 else torch.zeros_like(torch.as_tensor(total))
