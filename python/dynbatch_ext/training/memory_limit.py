"""--memory-limit: calibrate the budget of ESIM's micro-batches to the model and the limit."""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..batching import CostModel, calibrate
from .text import EncodedPairs, PairBatch


def calibrated_plan_cost(model, optimizer, pairs: EncodedPairs, vocab_size: int, config, device,
                         main: bool) -> tuple[CostModel, float, dict]:  # fmt: skip
    """(cost model, budget, a record for the log) for config.memory_limit.

    The probes run real training steps of this model and optimizer on synthetic batches of full
    length; calibrate puts the weights, optimizer state and RNG back afterwards, so calibrating
    leaves the run as it was. Under torch.distributed, rank 0 calibrates and every rank takes its
    result, so that all plan the same batches.
    """
    record = None
    if main:
        generator = torch.Generator().manual_seed(config.seed)

        def make_batch(batch_size, shape):
            lp, lh = shape
            rows = [torch.randint(2, max(3, vocab_size), (batch_size, n), generator=generator)
                    for n in (lp, lh)]  # fmt: skip
            return PairBatch(rows[0], torch.full((batch_size,), lp), rows[1],
                             torch.full((batch_size,), lh),
                             torch.randint(0, 3, (batch_size,), generator=generator),
                             torch.arange(batch_size)).to(device)  # fmt: skip

        def step(batch: PairBatch):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(*batch.inputs()), batch.labels)
            loss.backward()
            optimizer.step()
            return loss

        result = calibrate(step, make_batch, pairs.lengths(), memory_limit=config.memory_limit,
                           model=model, optimizer=optimizer, device=device,
                           progress=config.progress, report=True)  # fmt: skip
        record = {"cost": list(result.cost.coefficients), "budget": result.budget,
                  "fixed_bytes": result.fixed_bytes,
                  "step_overhead_bytes": result.step_overhead_bytes,
                  "max_relative_error": result.max_relative_error,
                  "verification_error": result.verification_error,
                  "memory_limit": config.memory_limit}  # fmt: skip
    if dist.is_available() and dist.is_initialized():
        shared = [record]
        dist.broadcast_object_list(shared, src=0)
        record = shared[0]
    return CostModel(*record["cost"]), float(record["budget"]), record


def parse_bytes(text: str) -> float:
    """'512MiB', '2GiB', '1.5GB', '300000000' -> bytes."""
    units = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KIB": 2**10, "MIB": 2**20,
             "GIB": 2**30}  # fmt: skip
    cleaned = text.strip().upper()
    number = cleaned.rstrip("KMGIB")
    unit = cleaned[len(number):]
    try:
        value = float(number) * units[unit]
    except (ValueError, KeyError):
        raise ValueError(f"--memory-limit {text!r}: expected bytes, e.g. 512MiB, 2GiB or 3e8") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"--memory-limit {text!r} must be positive")
    return value
