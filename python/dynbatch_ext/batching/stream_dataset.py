"""`BucketingIterableDataset`: budgeted batches of a stream for `DataLoader(batch_size=None)`,
split over ranks and workers, resumable under torchdata's `StatefulDataLoader`.

    dataset = BucketingIterableDataset(samples, length=lambda s: len(s["input_ids"]),
                                       budget=16 * 256**2, collate_fn=pad)
    loader = StatefulDataLoader(dataset, batch_size=None, num_workers=2)

Each (rank, worker) pair is a reader of its own part of the stream, so that every sample is read
by exactly one of them (a reader whose part is empty yields nothing): with `shards` (file names,
say, read by `read_shard`), reader r of R reads shards r, r + R, ...; without, it reads `source`
and keeps the samples whose position is r modulo R (every reader then reads the whole source, so
prefer shards where reading costs). A source that splits itself between DataLoader workers, as a
`datasets.IterableDataset` does (by its shards, in each worker), is split between the ranks only,
or its workers' parts would be split a second time and samples lost. Each reader batches its
part with a StreamBucketer of its own (stream.py).

The epoch: `set_epoch(e)` before an epoch's iterator is made, as for a sampler (a value shared
with the workers, so persistent workers see it too); without it, every pass is epoch 0's batches.

Resume: `state_dict()` is where this reader stands (the epoch, the reader layout, how many of its
part's samples it has read and a digest of their lengths, the bucketer's buffer and its batches
not yet yielded); a StatefulDataLoader calls it in each worker and hands it back on resume, after
which the reader re-reads its part up to that position (measuring what it skips, so that a state
of another stream is refused) and continues with exactly the batches not yet yielded. A state of
another epoch or reader layout (ranks x workers) is refused, naming it.
"""
from __future__ import annotations

import itertools
import multiprocessing
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from .checks import check_int, replicas_and_rank
from .stream import CHUNK, DEFAULT_BUFFER_SIZE, LengthsDigest, StreamBucketer, _measure


def _is_hf_iterable_dataset(source) -> bool:
    # Without importing datasets, which dynbatch_ext does not depend on.
    return any(cls.__module__ == "datasets.iterable_dataset" and cls.__name__ == "IterableDataset"
               for cls in type(source).__mro__)  # fmt: skip


class BucketingIterableDataset(torch.utils.data.IterableDataset):
    """Budgeted batches of a stream: each item is one batch (a list of samples, or what
    `collate_fn` makes of it); with `step_target=...`, one optimizer step (a list of its
    micro-batches, each collated). Use with `DataLoader(dataset, batch_size=None)`.

    Args:
        source: an iterable of samples, iterated afresh each epoch (a list, an HF streaming
            dataset, an object whose __iter__ reads a file), when `shards` is None.
        length: `length(sample)` -> its length (an int; two for `pairs=True`).
        budget, **options: as for `plan_batches` (cost, pad_multiple, max_batch_size, oversize,
            shuffle, seed, padding_noise, batch_overhead), and for optimizer steps the step
            keywords of StreamBucketer (step_target, composition, ...), a reader's steps made
            from its own buffer: here `step_target` counts one rank's samples (the sampler's
            counts all ranks'), since a stream's ranks cannot plan their steps together.
        shards, read_shard: a list of shards and `read_shard(shard)` -> an iterable of its
            samples; the shards are dealt to the readers.
        buffer_size: samples each reader holds at most.
        num_replicas, rank: the data-parallel split (default: from torch.distributed if
            initialised, else 1 and 0).
        collate_fn: applied to each batch (a list of samples) in the worker.
        source_splits_workers: whether iterating `source` in a DataLoader worker gives only that
            worker's part (default: True for a `datasets.IterableDataset`, which does so; for a
            torch `IterableDataset`, which may or may not (torch's documented pattern splits by
            `get_worker_info()`), it must be given once there are several workers; False for
            other iterables, which every worker reads whole).
    """

    def __init__(self, source: Iterable | None, length: Callable[[Any], Any], budget, *,
                 pairs: bool = False, shards: Sequence | None = None,
                 read_shard: Callable[[Any], Iterable] | None = None,
                 buffer_size: int = DEFAULT_BUFFER_SIZE, num_replicas: int | None = None,
                 rank: int | None = None, collate_fn: Callable[[list], Any] | None = None,
                 source_splits_workers: bool | None = None, **options):  # fmt: skip
        if (shards is None) == (source is None):
            raise ValueError("give either source (an iterable of samples) or shards with "
                             "read_shard, not both")  # fmt: skip
        if shards is not None and (read_shard is None or len(shards) == 0):
            raise ValueError("shards needs read_shard(shard) -> the shard's samples, and at "
                             "least one shard")  # fmt: skip
        self.source, self.length, self.shards, self.read_shard = source, length, shards, read_shard
        self.pairs, self.collate_fn = bool(pairs), collate_fn
        if source_splits_workers is None and _is_hf_iterable_dataset(source):
            source_splits_workers = True
        self.source_splits_workers = source_splits_workers
        self.num_replicas, self.rank = replicas_and_rank(num_replicas, rank)
        self._bucketer_arguments = dict(budget=budget, pairs=self.pairs, buffer_size=buffer_size,
                                        **options)  # fmt: skip
        StreamBucketer(**self._bucketer_arguments)  # checks the options now, not in a worker
        self._epoch = multiprocessing.Value("q", 0, lock=False)  # shared with the workers
        self._resume: dict | None = None
        self._position: dict = {}  # where this process's reader stands (for state_dict)

    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.value = check_int("epoch", epoch, 0)

    def _reader(self) -> tuple[int, int]:
        """(this reader's number, the number of readers)."""
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        return self.rank * workers + worker, self.num_replicas * workers

    def _splits_workers(self) -> bool:
        info = torch.utils.data.get_worker_info()
        if self.source_splits_workers is None:
            if isinstance(self.source, torch.utils.data.IterableDataset) and info is not None and (
                    info.num_workers > 1):  # fmt: skip
                raise ValueError(
                    f"the source is a torch IterableDataset ({type(self.source).__name__}) read by "
                    f"{info.num_workers} DataLoader workers: if it splits itself between workers "
                    "(torch's pattern with get_worker_info()), splitting it again here would lose "
                    "samples; pass source_splits_workers=True if it does, False if every worker "
                    "reads all of it"
                )
            return False
        return bool(self.source_splits_workers)

    def _part(self, reader: int, readers: int, epoch: int) -> "_Part":
        if self.shards is not None:
            mine = list(self.shards)[reader::readers]
            return _Part(itertools.chain.from_iterable(self.read_shard(shard) for shard in mine), 0, 1,
                         whole=readers == 1)  # fmt: skip
        if hasattr(self.source, "set_epoch"):  # an HF dataset's shuffle follows its epoch
            self.source.set_epoch(epoch)
        if self._splits_workers():  # the worker's part already: split it between ranks
            return _Part(self.source, self.rank, self.num_replicas, whole=False)
        return _Part(self.source, reader, readers, whole=True)

    def _check_resume(self, state: dict, reader: int, readers: int, epoch: int) -> None:
        if not isinstance(state, dict) or not {"epoch", "reader", "bucketer"} <= set(state):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"this is not a BucketingIterableDataset state (a dict with 'epoch', "
                             f"'reader' and 'bucketer'), got {got}")  # fmt: skip
        if list(state["reader"]) != [reader, readers]:
            raise ValueError(
                f"this state was saved by reader {state['reader'][0]} of {state['reader'][1]} "
                f"(ranks x workers), and this is reader {reader} of {readers}: the stream is split "
                "between readers by their number, so resume with the ranks and workers it was "
                "saved with"
            )
        if state["epoch"] != epoch:
            raise ValueError(f"this state was saved in epoch {state['epoch']} and the dataset is at "
                             f"epoch {epoch}: call set_epoch({state['epoch']}) before resuming, to "
                             f"finish that epoch first")  # fmt: skip

    def _skip_read(self, part: "_Part", bucketer: StreamBucketer, saved_digest: int) -> None:
        """Reads again what the saved reader had read, checking that its lengths are the same."""
        digest, left = LengthsDigest(), bucketer.samples_read
        while left and (chunk := list(itertools.islice(part, min(CHUNK, left)))):
            position = digest.count
            digest.update(np.asarray([_measure(self.length, s, position + k, self.pairs)
                                      for k, s in enumerate(chunk)], dtype=np.int64))  # fmt: skip
            left -= len(chunk)
        if left or digest.value != saved_digest:
            problem = (f"it ends after {digest.count} of the {bucketer.samples_read} samples the "
                       "state had read") if left else "the lengths read differ from those the state had read"  # fmt: skip
            raise ValueError(f"this state was saved while reading another stream ({problem}): "
                             "resume a state on the stream it was saved from")  # fmt: skip

    def __iter__(self):
        reader, readers = self._reader()
        epoch = self.epoch
        bucketer = StreamBucketer(epoch=epoch, **self._bucketer_arguments)
        state, self._resume = self._resume, None
        part = self._part(reader, readers, epoch)
        if state is not None:
            self._check_resume(state, reader, readers, epoch)
            bucketer.load_state_dict(state["bucketer"])
            self._skip_read(part, bucketer, bucketer.digest.value)
        self._position = {"epoch": epoch, "reader": [reader, readers], "bucketer": bucketer}
        yield from self._drain(bucketer)
        while chunk := list(itertools.islice(part, CHUNK)):
            bucketer.feed_measured(chunk, self.length)
            yield from self._drain(bucketer)
        if part.whole and part.seen == 0:
            raise ValueError("the stream is empty: there is nothing to batch")
        if bucketer.samples_read:
            bucketer.finish()
        yield from self._drain(bucketer)

    def _drain(self, bucketer: StreamBucketer):
        # An item stays in the bucketer until it is yielded, so that a state taken between two
        # items holds exactly the items not yet yielded.
        in_steps = bucketer.step_options is not None
        pop = bucketer.pop_step if in_steps else bucketer.pop_batch
        collate = self.collate_fn if self.collate_fn is not None else (lambda batch: batch)
        while (item := pop()) is not None:
            yield [collate(batch) for batch in item] if in_steps else collate(item)

    def state_dict(self) -> dict:
        if not self._position:
            return {}
        position = dict(self._position)
        position["bucketer"] = position["bucketer"].state_dict()
        return position

    def load_state_dict(self, state: dict) -> None:
        """The next iteration of the saved epoch continues where the state was taken (an empty
        state: the reader had not started). Checked when the iteration starts, in the reader."""
        if state is None or state == {}:
            self._resume = None
        elif not isinstance(state, dict):
            raise ValueError(f"a BucketingIterableDataset state is a dict (from state_dict()), got "
                             f"{type(state).__name__}")  # fmt: skip
        else:
            self._resume = dict(state)


class _Part:
    """A reader's part of its source: every `step`-th item from `start`, counting every item of
    the source it reads (`seen`). `whole`: the source is the whole stream (so seen == 0 means an
    empty stream, which every reader can then tell alike)."""

    def __init__(self, source: Iterable, start: int, step: int, whole: bool):
        self._items: Iterator = iter(source)
        self.start, self.step, self.whole = start, step, whole
        self.seen = 0

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            item = next(self._items)
            position, self.seen = self.seen, self.seen + 1
            if position % self.step == self.start:
                return item
