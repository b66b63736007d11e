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

Resume: `state_dict()` is where this reader stands (the epoch, how many of its part's samples it
has read, the bucketer's buffer and its batches not yet yielded); a StatefulDataLoader calls it in
each worker and hands it back on resume, after which the reader re-reads its part up to that
position (skipping what it had read) and continues with exactly the batches not yet yielded.
"""
from __future__ import annotations

import itertools
import multiprocessing
from typing import Any, Callable, Iterable, Sequence

import torch

from .checks import check_int, default_replicas
from .stream import CHUNK, DEFAULT_BUFFER_SIZE, StreamBucketer


def _is_hf_iterable_dataset(source) -> bool:
    # Without importing datasets, which dynbatch_ext does not depend on.
    return any(cls.__module__ == "datasets.iterable_dataset" and cls.__name__ == "IterableDataset"
               for cls in type(source).__mro__)  # fmt: skip


class BucketingIterableDataset(torch.utils.data.IterableDataset):
    """Budgeted batches of a stream: each item is one batch (a list of samples, or what
    `collate_fn` makes of it). Use with `DataLoader(dataset, batch_size=None)`.

    Args:
        source: an iterable of samples, iterated afresh each epoch (a list, an HF streaming
            dataset, an object whose __iter__ reads a file), when `shards` is None.
        length: `length(sample)` -> its length (an int; two for `pairs=True`).
        budget, **options: as for `plan_batches` (cost, pad_multiple, max_batch_size, oversize,
            shuffle, seed, padding_noise, batch_overhead).
        shards, read_shard: a list of shards and `read_shard(shard)` -> an iterable of its
            samples; the shards are dealt to the readers.
        buffer_size: samples each reader holds at most.
        num_replicas, rank: the data-parallel split (default: from torch.distributed if
            initialised, else 1 and 0).
        collate_fn: applied to each batch (a list of samples) in the worker.
        source_splits_workers: whether iterating `source` in a DataLoader worker gives only that
            worker's part (default: True for a `datasets.IterableDataset`, which does so; False
            otherwise, where every worker sees the whole source).
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
        if source_splits_workers is None:
            source_splits_workers = _is_hf_iterable_dataset(source)
        self.source_splits_workers = bool(source_splits_workers)
        self.num_replicas, self.rank = default_replicas(num_replicas, rank)
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

    def _part(self, reader: int, readers: int, epoch: int) -> Iterable:
        if self.shards is not None:
            mine = list(self.shards)[reader::readers]
            return itertools.chain.from_iterable(self.read_shard(shard) for shard in mine)
        if hasattr(self.source, "set_epoch"):  # an HF dataset's shuffle follows its epoch
            self.source.set_epoch(epoch)
        if self.source_splits_workers:  # the worker's part already: split it between ranks
            return itertools.islice(self.source, self.rank, None, self.num_replicas)
        return itertools.islice(self.source, reader, None, readers)

    def __iter__(self):
        reader, readers = self._reader()
        epoch = self.epoch
        bucketer = StreamBucketer(epoch=epoch, **self._bucketer_arguments)
        state, self._resume = self._resume, None
        if state is not None and state["epoch"] == epoch and state["reader"] == [reader, readers]:
            bucketer.load_state_dict(state["bucketer"])
        part = iter(self._part(reader, readers, epoch))
        for _ in itertools.islice(part, bucketer.samples_read):  # what the saved run had read
            pass
        self._position = {"epoch": epoch, "reader": [reader, readers], "bucketer": bucketer}
        yield from self._drain(bucketer)
        while chunk := list(itertools.islice(part, CHUNK)):
            bucketer.feed_measured(chunk, self.length)
            yield from self._drain(bucketer)
        if bucketer.samples_read == 0 and readers == 1:
            raise ValueError("the stream is empty: there is nothing to batch")
        if bucketer.samples_read:
            bucketer.finish()
        yield from self._drain(bucketer)

    def _drain(self, bucketer: StreamBucketer):
        # A batch stays in the bucketer until it is yielded, so that a state taken between two
        # items holds exactly the batches not yet yielded.
        while (batch := bucketer.pop_batch()) is not None:
            yield self.collate_fn(batch) if self.collate_fn is not None else batch

    def state_dict(self) -> dict:
        if not self._position:
            return {}
        position = dict(self._position)
        position["bucketer"] = position["bucketer"].state_dict()
        return position

    def load_state_dict(self, state: dict) -> None:
        """The next iteration of the saved epoch continues where the state was taken."""
        self._resume = dict(state) if state else None
