"""Budgeted batches from a stream: data that does not fit in memory, or arrives in shards.

    for batch in bucket_stream(samples, length, budget=16 * 256**2):   # lists of samples
        ...
    for batch in stream_batches(length_chunks, budget=8192):           # index arrays

The C++ core (csrc/core/stream_batcher.hpp) holds at most `buffer_size` samples. Each time the
buffer fills it is planned as plan_batches plans a data set (the same cost, cut, pad_multiple,
oversize), every batch of that plan is emitted except the underfull ones, whose samples wait for
one more fill to meet more of their length, and at the end of the stream whatever waits is
planned and emitted. So:
- memory is bounded by the buffer, whatever the stream's length;
- every batch is within the budget (bar oversize="alone"), and every sample of the stream is in
  exactly one batch (oversize="skip" leaves samples out and counts them);
- the batches of one fill come out in random order, drawn from the seed, the epoch and the
  fill's number: the same stream and settings give the same batches.

In steps (`step_target=...`, with `composition` and the other step keywords of
BucketBatchSampler), each fill is planned as plan_steps plans an epoch and whole optimizer steps
come out, each a list of micro-batches: the buffer is the pool of "pooled" steps (each step a
random mix of the fill's lengths), "random" steps are random sets of the fill's samples, "sorted"
steps are the fill's micro-batches dealt by weight. Random and pooled steps count samples; the
fill's samples past its last whole step wait for the next fill, so that every step but the
stream's last holds `step_target` ("random") or about it ("pooled").

`StreamBucketer` is the resumable form over samples (state_dict / load_state_dict; bucket_stream
uses it, stream_batches drives the core directly over lengths alone), and
`BucketingIterableDataset` (stream_dataset.py) the DataLoader form, split over ranks and workers.
A bucketer's state names the stream it was read from by a digest of the lengths read
(`LengthsDigest`), which a resumed reader checks as it reads them again.
"""
from __future__ import annotations

import dataclasses
import itertools
import numbers
import warnings
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from tqdm.auto import tqdm

from .. import _C
from .checks import check_int, settings_differences
from .options import PlanOptions, plan_options
from .steps import DEFAULT_COMPOSITION, DEFAULT_POOL_STEPS, StepOptions, step_options

DEFAULT_BUFFER_SIZE = 10_000
# A planned batch under this share of the budget (and of max_batch_size) waits for one more fill.
KEEP_BELOW = 0.5
CHUNK = 1024  # samples measured and handed to the core at a time


class LengthsDigest:
    """A digest of a stream's lengths in order, the same however the stream was cut into chunks:
    the sum (mod 2**64) of a mixed hash of each (position, length). Resumable as one integer."""

    _MULTIPLIERS = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9),
                    np.uint64(0x94D049BB133111EB))  # fmt: skip

    def __init__(self, value: int = 0, count: int = 0):
        self.value, self.count = int(value), int(count)

    def update(self, lengths: np.ndarray) -> None:
        values = lengths.reshape(len(lengths), -1).astype(np.uint64)
        key = values[:, 0] if values.shape[1] == 1 else (values[:, 0] << np.uint64(32)) ^ values[:, 1]
        positions = np.arange(self.count, self.count + len(lengths), dtype=np.uint64)
        a, b, c = self._MULTIPLIERS
        with np.errstate(over="ignore"):
            x = positions * a ^ (key + np.uint64(1)) * b
            x = (x ^ (x >> np.uint64(31))) * c
            x ^= x >> np.uint64(29)
            self.value = (self.value + int(x.sum(dtype=np.uint64))) % 2**64
        self.count += len(lengths)


def _stream_core(options: PlanOptions, pairs: bool, buffer_size: int, epoch: int,
                 steps: StepOptions | None):  # fmt: skip
    """The C++ batcher of a stream, once the options allow one."""
    if options.num_replicas != 1 or options.drop_last:
        raise ValueError("a stream is split between ranks and workers by how it is read (see "
                         "BucketingIterableDataset), not by the plan: leave num_replicas and "
                         "drop_last out")  # fmt: skip
    return _C.StreamBatcher(2 if pairs else 1, options, epoch, buffer_size, KEEP_BELOW, steps)


def _split_taken(taken: dict, steps: bool) -> list:
    """The batches a take() emitted, as index arrays, or in steps as lists of them."""
    batches = np.split(taken["ids"], taken["offsets"][1:-1]) if len(taken["costs"]) else []
    if not steps:
        return batches
    bounds = taken["step_offsets"].tolist()
    return [batches[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


class StreamBucketer:
    """Budgeted batches of a stream's samples, fed in any pieces, resumable.

    Args:
        budget, **options: as for `plan_batches` (cost, pad_multiple, max_batch_size, oversize,
            shuffle, seed, padding_noise, batch_overhead).
        pairs: samples have two lengths (premise, hypothesis) instead of one.
        buffer_size: the most samples held at once.
        epoch: another epoch of the same stream gives other batches.
        step_target, step_unit, max_micro_batches, composition, pool_steps: optimizer steps
            instead of batches, as for BucketBatchSampler (see the module's docstring).

    `feed(samples, lengths)` takes samples and their lengths (`feed_measured(samples, length)`
    measures them with a length function first); `batches()` returns the batches
    ready so far, each a list of samples (`steps()` the steps, each a list of batches, in step
    mode); `finish()` ends the stream. Samples are held as given (an id, a dict of token ids,
    anything); only the lengths go to the core.
    """

    def __init__(self, budget, *, pairs: bool = False, buffer_size: int = DEFAULT_BUFFER_SIZE,
                 epoch: int = 0, step_target: float | None = None, step_unit: str = "samples",
                 max_micro_batches: int | None = None, composition: str = DEFAULT_COMPOSITION,
                 pool_steps: int = DEFAULT_POOL_STEPS, **options):  # fmt: skip
        self.options = plan_options(budget, options)
        self.step_options = step_options(step_target, step_unit, max_micro_batches, composition,
                                         pool_steps)  # fmt: skip
        self.pairs = bool(pairs)
        self.buffer_size = check_int("buffer_size", buffer_size, 1)
        self.epoch = check_int("epoch", epoch, 0)
        self._core = _stream_core(self.options, self.pairs, self.buffer_size, self.epoch,
                                  self.step_options)  # fmt: skip
        self._held: dict[int, Any] = {}  # stream position -> sample, while in the buffer
        self._ready: list[list] = []  # batches, or steps (lists of batches) in step mode
        self.samples_read = 0  # samples fed so far: the stream position
        self.skipped = 0  # samples left out as oversize (oversize="skip")
        self.digest = LengthsDigest()  # of the lengths fed so far

    def feed(self, samples: list, lengths) -> None:
        """Takes `samples` (a list) with their lengths ((n,) or (n, 2) integers), all of them or,
        where one is refused (a bad length, or over the budget with oversize="error"), none: the
        ValueError names it and the bucketer stays as it was."""
        lengths = _as_chunk_lengths(lengths, len(samples), self.pairs, self.samples_read)
        ids = np.arange(self.samples_read, self.samples_read + len(samples), dtype=np.int64)
        for position, sample in zip(ids.tolist(), samples):
            self._held[position] = sample
        try:
            self._core.push(ids, lengths)
        except ValueError:
            for position in ids.tolist():
                del self._held[position]
            raise
        self.samples_read += len(samples)
        self.digest.update(lengths)
        self._collect()

    def feed_measured(self, samples: list, length: Callable[[Any], Any]) -> None:
        """Takes `samples` (a list), measured by `length(sample)`; a bad length is a ValueError
        naming the sample's position in the stream."""
        start = self.samples_read
        self.feed(samples, [_measure(length, s, start + k, self.pairs) for k, s in enumerate(samples)])

    def finish(self) -> None:
        self._core.finish()
        self._collect()

    def batches(self) -> list[list]:
        """The batches ready since the last call, in the order to train them."""
        return self._take_ready(steps=False)

    def pop_batch(self) -> list | None:
        """The next ready batch (None if none is): the others stay in the state."""
        return self._pop_ready(steps=False)

    def steps(self) -> list[list[list]]:
        """Step mode: the optimizer steps ready since the last call, each a list of batches."""
        return self._take_ready(steps=True)

    def pop_step(self) -> list[list] | None:
        """Step mode: the next ready step (None if none is): the others stay in the state."""
        return self._pop_ready(steps=True)

    def _take_ready(self, steps: bool) -> list:
        self._check_mode(steps)
        ready, self._ready = self._ready, []
        return ready

    def _pop_ready(self, steps: bool):
        self._check_mode(steps)
        return self._ready.pop(0) if self._ready else None

    def _check_mode(self, steps: bool) -> None:
        if steps and self.step_options is None:
            raise ValueError("this bucketer makes batches: use batches() / pop_batch(), or pass "
                             "step_target=... for optimizer steps")  # fmt: skip
        if not steps and self.step_options is not None:
            raise ValueError("this bucketer makes optimizer steps (step_target is set): use "
                             "steps() / pop_step()")  # fmt: skip

    @property
    def buffered(self) -> int:
        return self._core.buffered

    def state_dict(self) -> dict:
        """Where the stream stands: its position, the samples waiting in the buffer (as given)
        and the batches ready but not yet taken, with the settings it must be resumed under."""
        core = self._core.state()
        return {"settings": self._settings(), "samples_read": self.samples_read,
                "lengths_digest": self.digest.value, "skipped": self.skipped, "core": core,
                "buffered": [self._held[int(i)] for i in core["ids"]],
                "ready": list(self._ready)}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        """Continues from a state_dict() of a bucketer with the same settings; the lengths read
        before it are vouched for by the state's digest (a reader that reads them again checks
        it: see `LengthsDigest`)."""
        fields = {"settings", "samples_read", "lengths_digest", "skipped", "core", "buffered", "ready"}
        if not isinstance(state, dict) or not fields <= set(state):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"this is not a stream state (a StreamBucketer.state_dict(): a dict "
                             f"with {sorted(fields)}), got {got}")  # fmt: skip
        differences = settings_differences(state["settings"], self._settings())
        if differences:
            raise ValueError("this stream state was saved under other settings, and resuming "
                             "under them would not give the remaining batches: "
                             + "; ".join(differences))  # fmt: skip
        core = state["core"]
        if len(state["buffered"]) != len(core["ids"]):
            raise ValueError("a stream state's buffered samples and ids disagree")
        self._core.restore(core)
        self._held = dict(zip((int(i) for i in core["ids"]), state["buffered"]))
        self._ready = list(state["ready"])
        self.samples_read = int(state["samples_read"])
        self.digest = LengthsDigest(state["lengths_digest"], self.samples_read)
        self.skipped = int(state["skipped"])

    def _settings(self) -> dict:
        options = {k: v for k, v in vars(self.options).items() if k != "cost"}
        options["cost"] = tuple(self.options.cost.coefficients)
        steps = None if self.step_options is None else dataclasses.asdict(self.step_options)
        return dict(options, pairs=self.pairs, buffer_size=self.buffer_size, epoch=self.epoch,
                    steps=steps)  # fmt: skip

    def _collect(self) -> None:
        out = self._core.take()
        in_steps = self.step_options is not None

        def samples(batch: np.ndarray) -> list:
            return [self._held.pop(i) for i in batch.tolist()]

        for item in _split_taken(out, in_steps):
            self._ready.append([samples(b) for b in item] if in_steps else samples(item))
        for position in out["skipped"].tolist():
            del self._held[position]
            self.skipped += 1


def _as_chunk_lengths(lengths, count: int, pairs: bool, first_position: int = 0) -> np.ndarray:
    try:
        array = np.asarray(lengths)
    except (TypeError, ValueError) as error:  # ragged nested lists and the like
        raise ValueError(f"lengths must be an array of integers: {error}") from None
    shape = (count, 2) if pairs else (count,)
    if array.shape != shape and not (count == 0 and array.size == 0):
        what = "pairs: (n, 2)" if pairs else "single texts: (n,); pass pairs=True for (n, 2)"
        raise ValueError(f"expected lengths of shape {shape} for {count} samples ({what}), got "
                         f"{array.shape}")  # fmt: skip
    if count and array.dtype.kind not in "iu":
        # Python integers numpy could not hold as int64 become floats or objects: name one.
        rows = lengths if isinstance(lengths, (list, tuple)) else array.tolist()
        flat = [v for row in rows for v in (row if isinstance(row, (list, tuple)) else [row])]
        for k, value in enumerate(flat):
            if isinstance(value, numbers.Integral) and not isinstance(value, bool) and not (
                    0 <= value <= _C.MAX_LENGTH):  # fmt: skip
                raise ValueError(f"sample {first_position + k // (2 if pairs else 1)} has length "
                                 f"{value}: lengths must be in [0, {_C.MAX_LENGTH}]")  # fmt: skip
        raise ValueError(f"lengths must be integers, got dtype {array.dtype}")
    if array.dtype.kind == "u" and array.size and array.max() > _C.MAX_LENGTH:
        k = int(np.argmax(array.reshape(-1) > _C.MAX_LENGTH))
        raise ValueError(f"sample {first_position + k // (2 if pairs else 1)} has length "
                         f"{int(array.reshape(-1)[k])}: lengths must be in [0, {_C.MAX_LENGTH}]")  # fmt: skip
    return np.ascontiguousarray(array, dtype=np.int64)


def _measure(length: Callable[[Any], Any], sample, position: int, pairs: bool):
    value = length(sample)
    values = tuple(value) if pairs and isinstance(value, (tuple, list)) else (value,)
    if len(values) != (2 if pairs else 1) or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0 for v in values):  # fmt: skip
        want = "two non-negative integers (pairs)" if pairs else "a non-negative integer"
        raise ValueError(f"the length function gave {value!r} for sample {position}; it must "
                         f"return {want}")  # fmt: skip
    return values if pairs else values[0]


def bucket_stream(samples: Iterable, length: Callable[[Any], Any], budget, *,
                  pairs: bool = False, buffer_size: int = DEFAULT_BUFFER_SIZE, epoch: int = 0,
                  progress: bool = False, **options) -> Iterator[list]:  # fmt: skip
    """Batches (lists of samples) of `samples`, read once, in a bounded buffer; with
    `step_target=...`, optimizer steps (lists of batches).

    `length(sample)` gives a sample's length (an int; for `pairs=True`, two). `progress` shows
    a bar of the samples read (of how many, where `samples` has a length). The other arguments
    are StreamBucketer's. Raises ValueError on a bad length (naming the sample's position in the
    stream), on a sample over budget (oversize="error"), and on an empty stream.
    """
    bucketer = StreamBucketer(budget, pairs=pairs, buffer_size=buffer_size, epoch=epoch, **options)
    ready = bucketer.batches if bucketer.step_options is None else bucketer.steps
    if progress:
        total = len(samples) if hasattr(samples, "__len__") else None
        samples = tqdm(samples, total=total, unit="sample", desc="bucket_stream", leave=False)
    iterator = iter(samples)
    while chunk := list(itertools.islice(iterator, CHUNK)):
        bucketer.feed_measured(chunk, length)
        yield from ready()
    if bucketer.samples_read == 0:
        raise ValueError("the stream is empty: there is nothing to batch")
    bucketer.finish()
    yield from ready()
    _warn_left_out(bucketer.skipped)


def _warn_left_out(count: int) -> None:
    if count:
        warnings.warn(f"oversize='skip' left out {count} sample(s) of the stream that alone "
                      "exceed the budget", stacklevel=3)  # fmt: skip


def stream_batches(length_chunks: Iterable, budget, *, pairs: bool = False,
                   buffer_size: int = DEFAULT_BUFFER_SIZE, epoch: int = 0,
                   step_target: float | None = None, step_unit: str = "samples",
                   max_micro_batches: int | None = None, composition: str = DEFAULT_COMPOSITION,
                   pool_steps: int = DEFAULT_POOL_STEPS, **options) -> Iterator:  # fmt: skip
    """Batches of a stream of lengths, as int64 arrays of stream positions (0, 1, ... in the
    order the lengths arrive); with `step_target=...`, optimizer steps (lists of such arrays),
    as StreamBucketer makes them. `length_chunks` yields arrays of lengths ((n,), or (n, 2) with
    `pairs=True`); nothing but the buffer is held, so the stream may be of any length."""
    steps = step_options(step_target, step_unit, max_micro_batches, composition, pool_steps)
    core = _stream_core(plan_options(budget, options), pairs, check_int("buffer_size", buffer_size, 1),
                        check_int("epoch", epoch, 0), steps)  # fmt: skip
    position, skipped = 0, 0
    for chunk in length_chunks:
        count = len(chunk)
        lengths = _as_chunk_lengths(chunk, count, pairs, position)
        core.push(np.arange(position, position + count, dtype=np.int64), lengths)
        position += count
        taken = core.take()
        skipped += len(taken["skipped"])
        yield from _split_taken(taken, steps is not None)
    if position == 0:
        raise ValueError("the stream is empty: there is nothing to batch")
    core.finish()
    yield from _split_taken(core.take(), steps is not None)
    _warn_left_out(skipped)
