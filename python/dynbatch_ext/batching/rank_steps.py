"""Ending a streamed epoch on every rank together: `until_every_rank_ends`.

A stream's length is not known ahead, so the ranks of data-parallel training may get different
numbers of batches from their parts of it. A rank that stopped while the others still train would
leave them waiting in their gradient all-reduce forever, and dropping or repeating batches to even
the counts would lose or duplicate samples. The policy here: every rank trains every one of its
batches, and a rank that has run out takes part in the remaining steps with a dummy step (None:
run the model on any small batch and weight its loss by 0, so that its gradients are zeros and the
all-reduce still matches). Every sample is trained exactly once per epoch, and each step's loss
weights stay exact (`micro_batch_weights` with a count of 0 for the dummy).
"""
from __future__ import annotations

from typing import Iterable, Iterator

import torch
import torch.distributed as dist


def until_every_rank_ends(batches: Iterable, *, group=None) -> Iterator:
    """This rank's batches, then None for each step that another rank still has a batch for.

    One all-reduce of a flag per step (on the CPU for gloo, on the current CUDA device for
    nccl). Without torch.distributed initialised it yields `batches` as they are. Raises
    ValueError if no rank had a batch at all (an empty stream).
    """
    if not (dist.is_available() and dist.is_initialized()):
        yield from batches
        return
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend(group) == "nccl" else "cpu"
    iterator, steps = iter(batches), 0
    while True:
        batch = next(iterator, None)
        more = torch.tensor([batch is not None], dtype=torch.int64, device=device)
        dist.all_reduce(more, op=dist.ReduceOp.MAX, group=group)
        if not more.item():
            if steps == 0:
                raise ValueError("no rank got a batch from the stream: it is empty")
            return
        steps += 1
        yield batch
