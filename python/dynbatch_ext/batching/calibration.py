"""Which budget? Fit the cost model to the user's own training step and memory.

`calibrate` runs the step (forward, backward, optimizer) on a handful of probe shapes taken from
the data's own length range, measures the peak tensor memory of each (CUDA: the allocator's
peak counters; CPU: the profiler's record of every tensor allocation, not process RSS), and fits

    peak(B, L) = step_overhead + B * (constant + linear * L + quadratic * L**2)
    (pairs: L -> Lp + Lh in the linear term, L**2 -> Lp * Lh in the quadratic one)

by least squares with non-negative coefficients. The budget is what the memory limit leaves,
after the fixed memory (weights, gradients, optimizer state), the per-step overhead and a safety
margin, in the fitted cost model's units (bytes): pass both to plan_batches.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import random
import warnings
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .checks import as_lengths, check_int, check_positive_real
from .costs import CostModel
from .memory import live_bytes_after, peak_bytes

LENGTH_QUANTILES = (0.2, 0.5, 0.8, 0.95, 1.0)
PROBE_BATCH_SIZES = (2, 8)
# Where the budget is verified: its largest batches (the shortest samples), the median, the longest.
BUDGET_QUANTILES = (0.0, 0.5, 1.0)
VERIFY_TOLERANCE = 0.02  # of the limit: a fit that misses the budget's batches by more is refitted
VERIFY_REFITS = 2
GROWTH_TOLERANCE = 0.01  # the largest probe's peak must exceed the smallest's by this fraction


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
    # The budget's batches measured against the fit's prediction, a round per fit.
    verification: list[dict] = dataclasses.field(default_factory=list)

    def predict_step(self, batch_size: int, lengths: Sequence[int] | int) -> float:
        """Predicted peak memory a step adds on one padded batch (what the probes measure)."""
        return _predict_step(self.cost, self.step_overhead_bytes, batch_size, _as_shape(lengths))

    def predict(self, batch_size: int, lengths: Sequence[int] | int) -> float:
        """Predicted peak memory of a step, fixed memory included."""
        return self.fixed_bytes + self.predict_step(batch_size, lengths)

    def summary(self) -> str:
        """The fit and its budget in a few lines, with how well the fit holds where it matters:
        at the batches the budget allows (the small probes, far below the limit, matter little)."""
        c = self.cost
        lines = [
            f"budget {self.budget:,.0f} for a limit of {self.memory_limit / 2**20:.1f} MiB "
            f"(margin {self.margin:.0%} kept free); pass budget=..., cost=... to the planner",
            f"memory per sample = {c.constant:.0f} B + {c.linear:.1f} B/token + {c.quadratic:.2f} "
            f"B/token^2; fixed {self.fixed_bytes / 2**20:.1f} MiB (weights, gradients, optimizer "
            f"state), per step {self.step_overhead_bytes / 2**20:.1f} MiB whatever the batch",
        ]
        if self.verification:
            lines.append(f"measured at the budget's largest, median and longest batches, the fit "
                         f"is within {self.verification_error:.1%} of the limit")  # fmt: skip
        lines.append(f"fitted on {len(self.probes)} probes (the small ones, far below the limit, "
                     f"may miss their own small peaks by up to {self.max_relative_error:.0%})")
        return "\n".join(lines)

    @property
    def verification_error(self) -> float:
        """How far the final fit misses the budget's batches, as a fraction of the limit."""
        final = [c for c in self.verification if c["round"] == self.verification[-1]["round"]]
        return max(abs(c["measured"] - c["predicted"]) for c in final) / self.memory_limit


def _as_shape(lengths) -> tuple[int, ...]:
    return (int(lengths),) if np.ndim(lengths) == 0 else tuple(int(v) for v in lengths)


def _features(shape: tuple[int, ...]) -> tuple[float, float, float]:
    """(1, L, L**2) for a single text, (1, Lp + Lh, Lp * Lh) for a pair."""
    if len(shape) == 1:
        return 1.0, float(shape[0]), float(shape[0]) ** 2
    return 1.0, float(shape[0] + shape[1]), float(shape[0] * shape[1])


def _per_sample(coefficients, shape) -> float:
    return float(np.dot(coefficients, _features(shape)))


def _predict_step(cost: CostModel, overhead: float, batch_size: int, shape) -> float:
    """Peak memory a step adds on one padded batch: the fit's intercept plus B per-sample costs."""
    return overhead + batch_size * _per_sample(cost.coefficients, shape)


def _quantile_shape(columns: np.ndarray, q: float) -> tuple[int, ...]:
    """The padded shape at quantile q of each length column (at least 1 token per field)."""
    return tuple(max(1, int(np.ceil(np.quantile(col, q)))) for col in columns.T)


def probe_shapes(lengths: np.ndarray, batch_sizes=PROBE_BATCH_SIZES) -> list[tuple[int, tuple]]:
    """(batch size, padded shape) probes: each batch size at quantiles of the data's lengths
    (pairs: of each field), so that B and L vary independently and the fit can tell them apart."""
    columns = lengths.reshape(len(lengths), -1)
    shapes = []
    for q in LENGTH_QUANTILES:
        shape = _quantile_shape(columns, q)
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


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = [getattr(value, f.name) for f in dataclasses.fields(value)]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def _make_checked_batch(make_batch, batch_size: int, shape: tuple[int, ...]):
    """make_batch's batch, refused unless it holds a tensor of `batch_size` rows and, for each
    length asked for, a tensor with a dimension of that length: a batch of other shapes would fit
    the cost of other shapes than the budget is planned for."""
    batch = make_batch(batch_size, shape if len(shape) > 1 else shape[0])
    tensors = _tensors(batch)
    shapes = [tuple(t.shape) for t in tensors]
    rows = any(t.ndim >= 1 and t.shape[0] == batch_size for t in tensors)
    lengths = all(any(length in t.shape[1:] for t in tensors) for length in shape)
    if not (rows and lengths):
        raise ValueError(
            f"make_batch({batch_size}, {shape if len(shape) > 1 else shape[0]}) gave a batch of "
            f"tensor shapes {shapes}, none of which has {batch_size} rows and a dimension of each "
            f"length asked for ({list(shape)}): calibrate fits memory to the shapes it asks for, "
            "so make_batch must build exactly those (every row padded to the length)"
        )
    return batch


def _check_finite(loss, model, where: str) -> None:
    """Refuses a step whose loss (what step_fn returned, where it is a number or tensor) or
    whose updated weights are NaN or infinite."""
    bad = None
    if isinstance(loss, torch.Tensor) and loss.is_floating_point() and not torch.isfinite(loss.detach()).all():
        bad = f"its loss is {loss.detach().flatten()[0].item()}"
    elif isinstance(loss, numbers.Real) and not isinstance(loss, bool) and not math.isfinite(loss):
        bad = f"its loss is {loss}"
    elif model is not None and any(not torch.isfinite(p.detach()).all() for p in model.parameters()):
        bad = "it left a weight NaN or infinite"
    if bad:
        raise ValueError(f"step_fn on the {where}: {bad}. calibrate measures memory on real "
                         "training steps, and a diverged step is no measurement (a learning rate "
                         "too high for random batches, or bad data); the model, optimizer and RNG "
                         "are put back as they were")  # fmt: skip


def _measure(step_fn, make_batch, batch_size, shape, device, model, verifying: bool = False) -> float:
    """The peak a step on a batch of that shape adds (a probe, or a check of the budget)."""
    what = "budget's batch" if verifying else "probe"
    batch = _make_checked_batch(make_batch, batch_size, shape)
    returned = []
    try:
        peak = float(peak_bytes(lambda: returned.append(step_fn(batch)), device))
    except torch.OutOfMemoryError as error:
        advice = ("the fit underestimates the model's memory there: pass a larger margin"
                  if verifying else "pass smaller probe_batch_sizes (or a shorter length range)")  # fmt: skip
        raise ValueError(f"the {what} of {batch_size} samples at length {shape} ran out of "
                         f"memory; {advice}") from error  # fmt: skip
    except Exception as error:
        raise RuntimeError(f"step_fn failed on the {what} of {batch_size} samples at length "
                           f"{shape}: {type(error).__name__}: {error}") from error  # fmt: skip
    _check_finite(returned[0] if returned else None, model,
                  f"{what} of {batch_size} samples at length {list(shape)}")  # fmt: skip
    return peak


class _Snapshot:
    """The model's weights and gradients, the optimizer's state and every RNG, copied to the CPU
    (a copy on the device would distort the memory being measured), to put back afterwards."""

    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer
        self.weights = None if model is None else {k: v.detach().to("cpu", copy=True)
                                                   for k, v in model.state_dict().items()}  # fmt: skip
        self.gradients = None if model is None else [
            None if p.grad is None else p.grad.detach().to("cpu", copy=True) for p in model.parameters()]
        self.optimizer_state = None if optimizer is None else _to_cpu(optimizer.state_dict())
        self.rng = (torch.get_rng_state(), np.random.get_state(), random.getstate(),
                    torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None)  # fmt: skip

    def restore(self) -> None:
        if self.model is not None:
            self.model.load_state_dict(self.weights)
            for parameter, gradient in zip(self.model.parameters(), self.gradients):
                parameter.grad = None if gradient is None else gradient.to(parameter.device)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(self.optimizer_state)
        torch.set_rng_state(self.rng[0])
        np.random.set_state(self.rng[1])
        random.setstate(self.rng[2])
        if self.rng[3] is not None:
            torch.cuda.set_rng_state_all(self.rng[3])


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return copy.deepcopy(value)


def _check_probe_batch_sizes(sizes) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ValueError(f"probe_batch_sizes must be a sequence of batch sizes, got {sizes!r}")
    checked = tuple(check_int("probe_batch_sizes entry", b, 1) for b in sizes)
    if len(set(checked)) < 2:
        raise ValueError(f"probe_batch_sizes needs two different batch sizes or more, to tell "
                         f"the cost per sample from the cost per step; got {list(sizes)}")  # fmt: skip
    return tuple(sorted(set(checked)))


def _check_growth(measured: list[tuple[int, tuple, float]]) -> None:
    """The peaks must grow with the batch size at every probed shape, or the fit can only
    extrapolate noise: make_batch ignored the size asked for, or step_fn allocates nothing that
    grows with the batch."""
    for shape in dict.fromkeys(s for _, s, _ in measured):
        peaks = sorted((b, peak) for b, s, peak in measured if s == shape)
        (small, low), (large, high) = peaks[0], peaks[-1]
        if not high - low > GROWTH_TOLERANCE * max(high, 1.0):
            raise ValueError(
                f"the peak memory does not grow with the batch at length {list(shape)} "
                f"({small} samples: {low / 2**20:.2f} MiB, {large}: {high / 2**20:.2f} MiB), so "
                "no budget can be fitted: does make_batch(batch_size, length) build a batch of "
                "that size, and does step_fn run the model on it? If the model's memory barely "
                "depends on the batch, pass larger probe_batch_sizes"
            )


def budget_shapes(lengths: np.ndarray, cost: CostModel, budget: float) -> list[tuple[int, tuple]]:
    """(batch size, padded shape) of the batches a plan under (cost, budget) makes at the data's
    extremes: the largest batches (the shortest samples), the median ones and the longest.
    A batch is no larger than the samples that fit its shape."""
    columns = lengths.reshape(len(lengths), -1)
    shapes = []
    for q in BUDGET_QUANTILES:
        shape = _quantile_shape(columns, q)
        fitting = int(np.all(columns <= np.array(shape), axis=1).sum())
        batch = max(1, min(fitting, int(budget // _per_sample(cost.coefficients, shape))))
        if (batch, shape) not in shapes:
            shapes.append((batch, shape))
    return shapes


def calibrate(
    step_fn: Callable[[object], object],
    make_batch: Callable[[int, object], object],
    lengths,
    *,
    memory_limit: float,
    fixed_bytes: float | None = None,
    model: torch.nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    device: str | torch.device = "cpu",
    margin: float = 0.1,
    probe_batch_sizes: Sequence[int] = PROBE_BATCH_SIZES,
    progress: bool = True,
    report: bool = False,
) -> Calibration:
    """Fits a CostModel (bytes) to `step_fn`'s peak memory and returns the budget for a limit.

    Probes at small batches first, then verifies the fit where the budget will really be used:
    at the largest, the median and the longest batches the budget allows on these lengths.
    Where the fit misses those by more than 2% of the limit, they join the probes and the fit
    and budget are made again (up to twice), so that the margin stays a margin and is not
    spent on the fit's error.

    The probes are real training steps, so they move the weights: `model` and `optimizer`, when
    given, are put back as they were afterwards (weights, gradients, optimizer state), and so is
    every RNG (torch's, CUDA's, numpy's and Python's), whether calibrate returns or raises.
    Anything else `step_fn` changes (a scheduler, a model it does not get) stays changed.

    Args:
        step_fn: one training step on a batch: forward, backward and optimizer step. If it
            returns its loss, a NaN or infinite loss is refused (so are NaN weights of `model`).
        make_batch: `make_batch(batch_size, length)` -> a batch every row of which has `length`
            tokens (a `(premise, hypothesis)` tuple for pairs), as the data loader would pad it;
            it must hold a tensor of `batch_size` rows and a dimension of each length.
        lengths: the data's `(N,)` or `(N, 2)` lengths; probes are taken from their range.
        memory_limit: bytes the training may use on `device`.
        fixed_bytes: memory live whatever the batch (weights, gradients, optimizer state). By
            default: on CUDA, what is allocated after a warm-up step; on the CPU, the bytes of
            `model`'s parameters and buffers plus what the warm-up step leaves allocated
            (gradients, optimizer state).
        model, optimizer: what step_fn trains, put back as they were afterwards (see above).
        margin: the fraction of the limit kept free.
        probe_batch_sizes: batch sizes tried at each probe length (two different ones at least).
        progress: a progress bar over the probes. report: print `summary()` when done.

    Raises:
        ValueError: a limit at or below the fixed memory, a probe that runs out of memory, peaks
            that do not grow with the batch, a budget whose batches measure over the limit, a
            batch of other shapes than asked for, a NaN or infinite loss, bad arguments.
            RuntimeError: step_fn raised (the message names the probe).
    Warns:
        UserWarning: the fit still misses the budget's batches by more than half the margin.
    """
    lengths = as_lengths(lengths)
    memory_limit = check_positive_real("memory_limit", memory_limit)
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not 0 <= margin < 1:
        raise ValueError(f"margin must lie in [0, 1), got {margin!r}")
    if fixed_bytes is not None:
        if isinstance(fixed_bytes, bool) or not isinstance(fixed_bytes, numbers.Real) or not (
                math.isfinite(fixed_bytes) and fixed_bytes >= 0):  # fmt: skip
            raise ValueError(f"fixed_bytes must be a finite number of bytes >= 0 (or None to "
                             f"measure it), got {fixed_bytes!r}")  # fmt: skip
        fixed_bytes = float(fixed_bytes)
    device = torch.device(device)
    shapes = probe_shapes(lengths, _check_probe_batch_sizes(probe_batch_sizes))
    snapshot = _Snapshot(model, optimizer)
    try:
        result, checks = _calibrate(step_fn, make_batch, lengths, shapes, memory_limit, fixed_bytes,
                                    model, device, margin, progress)  # fmt: skip
    finally:
        snapshot.restore()
    _judge_verification(result, checks)
    if report:
        tqdm.write(f"calibrate: {result.summary()}")
    return result


def _calibrate(step_fn, make_batch, lengths, shapes, memory_limit, fixed_bytes, model, device,
               margin, progress) -> tuple[Calibration, list[dict]]:  # fmt: skip
    """The probes, the fit and its verification (the snapshot is calibrate's)."""
    warm_b, warm_shape = shapes[0]
    left_behind = _measure_left_behind(step_fn, make_batch, warm_b, warm_shape, device, model)
    if fixed_bytes is None:
        if device.type == "cuda":
            fixed_bytes = float(torch.cuda.memory_allocated(device))
        else:
            owned = 0 if model is None else sum(
                t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
            fixed_bytes = float(owned + left_behind)
    measured = []
    for batch_size, shape in tqdm(shapes, desc="calibrate", disable=not progress, leave=False):
        measured.append((batch_size, shape, _measure(step_fn, make_batch, batch_size, shape, device, model)))
    _check_growth(measured)
    verification = []
    for round_ in range(1 + VERIFY_REFITS):
        cost, overhead, budget = _fit_budget(measured, memory_limit, margin, fixed_bytes)
        checks = []
        for batch_size, shape in budget_shapes(lengths, cost, budget):
            peak = _measure(step_fn, make_batch, batch_size, shape, device, model, verifying=True)
            predicted = _predict_step(cost, overhead, batch_size, shape)
            checks.append({"batch": batch_size, "lengths": list(shape), "measured": peak,
                           "predicted": predicted, "round": round_})  # fmt: skip
        verification += checks
        worst = max(abs(c["measured"] - c["predicted"]) for c in checks) / memory_limit
        if worst <= VERIFY_TOLERANCE or round_ == VERIFY_REFITS:
            break
        measured += [(c["batch"], tuple(c["lengths"]), c["measured"]) for c in checks]
    probes = []
    for batch_size, shape, peak in measured:
        predicted = _predict_step(cost, overhead, batch_size, shape)
        probes.append({"batch": batch_size, "lengths": list(shape), "measured": peak,
                       "predicted": predicted})  # fmt: skip
    error = max(abs(p["predicted"] - p["measured"]) / max(p["measured"], 1.0) for p in probes)
    result = Calibration(cost=cost, budget=budget, memory_limit=memory_limit,
                         fixed_bytes=fixed_bytes, step_overhead_bytes=overhead, margin=margin,
                         probes=probes, max_relative_error=error,
                         verification=verification)  # fmt: skip
    return result, checks


def _fit_budget(measured, memory_limit: float, margin: float,
                fixed_bytes: float) -> tuple[CostModel, float, float]:  # fmt: skip
    """(cost model, per-step overhead, budget) fitted to the probes measured so far."""
    coefficients, overhead = fit(measured)
    cost = CostModel(*coefficients) if coefficients.any() else CostModel(constant=1.0)
    budget = memory_limit * (1 - margin) - fixed_bytes - overhead
    if budget <= 0:
        raise ValueError(
            f"memory_limit {memory_limit / 2**20:.1f} MiB leaves nothing for batches: the model's "
            f"fixed memory is {fixed_bytes / 2**20:.1f} MiB and a step adds "
            f"{overhead / 2**20:.1f} MiB whatever the batch (margin {margin:.0%}); raise the "
            "limit or shrink the model"
        )
    return cost, overhead, budget


def _judge_verification(result: Calibration, checks: list[dict]) -> None:
    """Refuses a budget whose batches measured over the limit; warns where the fit's worst miss
    eats more than half of the margin."""
    def where(check):
        return f"{check['batch']} samples at length {check['lengths']}"

    def miss(check):
        return (check["measured"] - check["predicted"]) / result.memory_limit

    for check in checks:
        total = result.fixed_bytes + check["measured"]
        if total > result.memory_limit:
            raise ValueError(
                f"the budget's batch of {where(check)} measured {total / 2**20:.1f} MiB, over the "
                f"limit of {result.memory_limit / 2**20:.1f} MiB, and refitting did not close the "
                f"gap (the fit misses it by {miss(check):.1%} of the limit): the model's memory "
                "does not follow constant + linear * L + quadratic * L**2 per sample here; pass a "
                "larger margin"
            )
    worst = max(checks, key=miss)
    if miss(worst) > result.margin / 2:
        warnings.warn(f"calibrate: at the budget's batch of {where(worst)} the fit underestimates "
                      f"the peak by {miss(worst):.1%} of the limit, more than half of the margin "
                      f"({result.margin:.0%})", stacklevel=3)  # fmt: skip


def _measure_left_behind(step_fn, make_batch, batch_size, shape, device, model) -> float:
    """Runs a warm-up step (lazy optimizer state, caches); returns the bytes it left allocated."""
    batch = _make_checked_batch(make_batch, batch_size, shape)
    returned = []
    try:
        if device.type == "cuda":
            before = torch.cuda.memory_allocated(device)
            returned.append(step_fn(batch))
            torch.cuda.synchronize(device)
            left = float(torch.cuda.memory_allocated(device) - before)
        else:
            left = float(live_bytes_after(lambda: returned.append(step_fn(batch))))
    except torch.OutOfMemoryError as error:
        raise ValueError(f"the warm-up step of {batch_size} samples at length {shape} ran out of "
                         "memory: the model alone may not fit the device") from error  # fmt: skip
    except Exception as error:
        raise RuntimeError(f"step_fn failed on the warm-up step: {type(error).__name__}: {error}") from error
    _check_finite(returned[0] if returned else None, model, "warm-up step")
    return left
