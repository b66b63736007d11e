"""Which budget? Fit the cost model to the user's own training step and memory.

`calibrate` runs the step (forward, backward, optimizer) on a handful of probe shapes taken from
the data's own length range, measures the peak tensor memory of each (CUDA: the allocator's
peak counters; CPU: the profiler's record of every tensor allocation, not process RSS), and fits

    peak(B, L) = step_overhead + B * (const + linear * L + quadratic * L**2)
    (pairs: L -> Lp + Lh in the linear term, L**2 -> Lp * Lh in the quadratic one)

by least squares with non-negative coefficients. The budget is what the memory limit leaves,
after the fixed memory (weights, gradients, optimizer state), the per-step overhead and a safety
margin, in the fitted cost model's units (bytes): pass both to plan_batches.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .checks import as_lengths, check_positive_real
from .costs import CostModel
from .memory import live_bytes_after, peak_bytes

LENGTH_QUANTILES = (0.2, 0.5, 0.8, 0.95, 1.0)
PROBE_BATCH_SIZES = (2, 8)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A fitted cost model and the budget it gives under a memory limit (bytes throughout)."""

    cost: CostModel  # bytes per sample, per token, per token squared
    budget: float  # for plan_batches(..., budget, cost=cost)
    memory_limit: float
    fixed_bytes: float  # weights, gradients, optimizer state: live whatever the batch
    step_overhead_bytes: float  # the fit's intercept: per step, whatever the batch
    margin: float
    probes: list[dict]  # batch, lengths, measured and predicted peak of each probe
    max_relative_error: float  # of the fit on its own probes

    def predict_step(self, batch_size: int, lengths: Sequence[int] | int) -> float:
        """Predicted peak memory a step adds on one padded batch (what the probes measure)."""
        return self.step_overhead_bytes + batch_size * _per_sample(
            self.cost.coefficients, _as_shape(lengths)
        )

    def predict(self, batch_size: int, lengths: Sequence[int] | int) -> float:
        """Predicted peak memory of a step, fixed memory included."""
        return self.fixed_bytes + self.predict_step(batch_size, lengths)

    def summary(self) -> str:
        c = self.cost
        return (
            f"cost per sample = {c.const:.0f} B + {c.linear:.1f} B/token + {c.quadratic:.2f} "
            f"B/token^2; fixed {self.fixed_bytes / 2**20:.1f} MiB, per step "
            f"{self.step_overhead_bytes / 2**20:.1f} MiB; budget {self.budget:,.0f} for a limit "
            f"of {self.memory_limit / 2**20:.1f} MiB (margin {self.margin:.0%}); fit error on "
            f"{len(self.probes)} probes at most {self.max_relative_error:.1%}"
        )


def _as_shape(lengths) -> tuple[int, ...]:
    return (int(lengths),) if np.ndim(lengths) == 0 else tuple(int(v) for v in lengths)


def _features(shape: tuple[int, ...]) -> tuple[float, float, float]:
    """(1, L, L**2) for a single text, (1, Lp + Lh, Lp * Lh) for a pair."""
    if len(shape) == 1:
        return 1.0, float(shape[0]), float(shape[0]) ** 2
    return 1.0, float(shape[0] + shape[1]), float(shape[0] * shape[1])


def _per_sample(coefficients, shape) -> float:
    return float(np.dot(coefficients, _features(shape)))


def probe_shapes(lengths: np.ndarray, batch_sizes=PROBE_BATCH_SIZES) -> list[tuple[int, tuple]]:
    """(batch size, padded shape) probes: each batch size at quantiles of the data's lengths
    (pairs: of each field), so that B and L vary independently and the fit can tell them apart."""
    columns = lengths.reshape(len(lengths), -1)
    shapes = []
    for q in LENGTH_QUANTILES:
        shape = tuple(max(1, int(np.ceil(np.quantile(col, q)))) for col in columns.T)
        if shape not in shapes:
            shapes.append(shape)
    if len(shapes) < 3:
        raise ValueError(f"the lengths span too few distinct values ({shapes}) to tell apart "
                         "the cost per token from the cost per sample")  # fmt: skip
    return [(b, s) for s in shapes for b in batch_sizes]


def fit(probes: list[tuple[int, tuple, float]]) -> tuple[np.ndarray, float]:
    """Least squares of peak = overhead + B * (c0 + c1 f1 + c2 f2), all terms >= 0 (an active
    set: a coefficient that comes out negative is fixed at 0 and the rest refitted)."""
    rows = np.array([[1.0, *(b * f for f in _features(s))] for b, s, _ in probes])
    measured = np.array([m for _, _, m in probes], dtype=np.float64)
    free = list(range(4))
    while True:
        solution, *_ = np.linalg.lstsq(rows[:, free], measured, rcond=None)
        if (solution >= 0).all() or len(free) == 1:
            break
        free = [i for i, v in zip(free, solution) if v >= 0]
    full = np.zeros(4)
    full[free] = np.maximum(solution, 0.0)
    return full[1:], float(full[0])


def _measure(step_fn, make_batch, batch_size, shape, device) -> float:
    batch = make_batch(batch_size, shape if len(shape) > 1 else shape[0])
    try:
        return float(peak_bytes(lambda: step_fn(batch), device))
    except torch.OutOfMemoryError as error:
        raise ValueError(f"the probe of {batch_size} samples at length {shape} ran out of memory; "
                         "pass smaller probe_batch_sizes (or a shorter length range)") from error  # fmt: skip
    except Exception as error:
        raise RuntimeError(f"step_fn failed on the probe of {batch_size} samples at length "
                           f"{shape}: {type(error).__name__}: {error}") from error  # fmt: skip


def calibrate(
    step_fn: Callable[[object], object],
    make_batch: Callable[[int, object], object],
    lengths,
    *,
    memory_limit: float,
    fixed_bytes: float | None = None,
    model: torch.nn.Module | None = None,
    device: str | torch.device = "cpu",
    margin: float = 0.1,
    probe_batch_sizes: Sequence[int] = PROBE_BATCH_SIZES,
    progress: bool = True,
    report: bool | None = None,
) -> Calibration:
    """Fits a CostModel (bytes) to `step_fn`'s peak memory and returns the budget for a limit.

    Args:
        step_fn: one training step on a batch: forward, backward and optimizer step.
        make_batch: `make_batch(batch_size, length)` -> a batch every row of which has `length`
            tokens (a `(premise, hypothesis)` tuple for pairs), as the data loader would pad it.
        lengths: the data's `(N,)` or `(N, 2)` lengths; probes are taken from their range.
        memory_limit: bytes the training may use on `device`.
        fixed_bytes: memory live whatever the batch (weights, gradients, optimizer state). By
            default: on CUDA, what is allocated after a warm-up step; on the CPU, the bytes of
            `model`'s parameters and buffers plus what the warm-up step leaves allocated
            (gradients, optimizer state).
        margin: the fraction of the limit kept free.
        probe_batch_sizes: batch sizes tried at each probe length.
        progress: a progress bar over the probes. report: print the fit and its error
            (default: as `progress`).

    Raises:
        ValueError: a limit at or below the fixed memory, a probe that runs out of memory, bad
            arguments. RuntimeError: step_fn raised (the message names the probe).
    """
    lengths = as_lengths(lengths)
    memory_limit = check_positive_real("memory_limit", memory_limit)
    if not 0 <= margin < 1:
        raise ValueError(f"margin must lie in [0, 1), got {margin}")
    device = torch.device(device)
    shapes = probe_shapes(lengths, tuple(int(b) for b in probe_batch_sizes))
    warm_b, warm_shape = shapes[0]
    left_behind = _measure_left_behind(step_fn, make_batch, warm_b, warm_shape, device)
    if fixed_bytes is None:
        if device.type == "cuda":
            fixed_bytes = float(torch.cuda.memory_allocated(device))
        else:
            owned = 0 if model is None else sum(
                t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
            fixed_bytes = float(owned + left_behind)
    measured = []
    for batch_size, shape in tqdm(shapes, desc="calibrate", disable=not progress, leave=False):
        measured.append((batch_size, shape, _measure(step_fn, make_batch, batch_size, shape, device)))
    coefficients, overhead = fit(measured)
    cost = CostModel(*coefficients) if coefficients.any() else CostModel(const=1.0)
    probes = []
    for batch_size, shape, peak in measured:
        predicted = overhead + batch_size * _per_sample(coefficients, shape)
        probes.append({"batch": batch_size, "lengths": list(shape), "measured": peak,
                       "predicted": predicted})  # fmt: skip
    error = max(abs(p["predicted"] - p["measured"]) / max(p["measured"], 1.0) for p in probes)
    budget = memory_limit * (1 - margin) - fixed_bytes - overhead
    if budget <= 0:
        raise ValueError(
            f"memory_limit {memory_limit / 2**20:.1f} MiB leaves nothing for batches: the model's "
            f"fixed memory is {fixed_bytes / 2**20:.1f} MiB and a step adds "
            f"{overhead / 2**20:.1f} MiB whatever the batch (margin {margin:.0%}); raise the "
            "limit or shrink the model"
        )
    result = Calibration(cost=cost, budget=budget, memory_limit=memory_limit,
                         fixed_bytes=fixed_bytes, step_overhead_bytes=overhead, margin=margin,
                         probes=probes, max_relative_error=error)  # fmt: skip
    if progress if report is None else report:
        tqdm.write(f"calibrate: {result.summary()}")
    return result


def _measure_left_behind(step_fn, make_batch, batch_size, shape, device) -> float:
    """Runs a warm-up step (lazy optimizer state, caches); returns the bytes it left allocated."""
    batch = make_batch(batch_size, shape if len(shape) > 1 else shape[0])
    try:
        if device.type == "cuda":
            before = torch.cuda.memory_allocated(device)
            step_fn(batch)
            torch.cuda.synchronize(device)
            return float(torch.cuda.memory_allocated(device) - before)
        return float(live_bytes_after(lambda: step_fn(batch)))
    except torch.OutOfMemoryError as error:
        raise ValueError(f"the warm-up step of {batch_size} samples at length {shape} ran out of "
                         "memory: the model alone may not fit the device") from error  # fmt: skip
    except Exception as error:
        raise RuntimeError(f"step_fn failed on the warm-up step: {type(error).__name__}: {error}") from error
