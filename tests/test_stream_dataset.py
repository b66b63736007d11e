"""BucketingIterableDataset under DataLoader workers, ranks, shards, epochs and
StatefulDataLoader's resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dynbatch_ext.batching.stream_dataset import BucketingIterableDataset
from dynbatch_ext.corpora import synthetic_lengths

LENGTHS = synthetic_lengths(3000, seed=7)
BUDGET = 16 * 128**2


def length_of(sample: int) -> int:
    return int(LENGTHS[sample])


def dataset(**overrides):
    settings = dict(source=list(range(len(LENGTHS))), length=length_of, budget=BUDGET, buffer_size=400, seed=3)
    settings.update(overrides)
    return BucketingIterableDataset(settings.pop("source"), settings.pop("length"), settings.pop("budget"), **settings)


def batches_of(data, **loader_options) -> list[list[int]]:
    return [list(b) for b in torch.utils.data.DataLoader(data, batch_size=None, **loader_options)]


def check_once_within_budget(batches, samples=range(len(LENGTHS))):
    seen = sorted(s for b in batches for s in b)
    assert seen == sorted(samples)
    for batch in batches:
        assert len(batch) * max(LENGTHS[batch]) ** 2 <= BUDGET


@pytest.mark.parametrize("workers", [0, 2])
def test_every_sample_once_with_workers(workers):
    check_once_within_budget(batches_of(dataset(), num_workers=workers))


def test_two_ranks_of_two_workers_read_disjoint_parts():
    every = []
    for rank in range(2):
        every += batches_of(dataset(num_replicas=2, rank=rank), num_workers=2)
    check_once_within_budget(every)


def test_shards_are_dealt_to_the_readers():
    shards = [list(range(k, len(LENGTHS), 7)) for k in range(7)]
    read = []

    def read_shard(shard):
        read.append(shard[0])  # in this process (workers=0): which shards were read
        return iter(shard)

    every = []
    for rank in range(2):
        every += batches_of(dataset(source=None, shards=shards, read_shard=read_shard,
                                    num_replicas=2, rank=rank))  # fmt: skip
    check_once_within_budget(every)
    assert sorted(read) == list(range(7))  # each shard read once, by one reader
    every = []
    for rank in range(2):
        every += batches_of(dataset(source=None, shards=shards, read_shard=iter, num_replicas=2, rank=rank),
                            num_workers=2)  # fmt: skip
    check_once_within_budget(every)


def test_set_epoch_reaches_persistent_workers():
    data = dataset()
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=2, persistent_workers=True)
    first = [list(b) for b in loader]
    again = [list(b) for b in loader]
    data.set_epoch(1)
    second = [list(b) for b in loader]
    check_once_within_budget(first)
    check_once_within_budget(second)
    assert first == again  # the same epoch: the same batches
    assert first != second


def test_collate_runs_in_the_workers_and_an_empty_stream_is_an_error():
    def pad(batch):
        return torch.zeros(len(batch), max(length_of(s) for s in batch))

    shapes = [tuple(t.shape) for t in torch.utils.data.DataLoader(dataset(collate_fn=pad), batch_size=None,
                                                                  num_workers=2)]  # fmt: skip
    assert sum(s[0] for s in shapes) == len(LENGTHS)
    with pytest.raises(ValueError, match="the stream is empty"):
        batches_of(dataset(source=[]))
    with pytest.raises(ValueError, match="either source"):
        dataset(shards=[[1]], read_shard=iter)
    with pytest.raises(ValueError, match=r"rank must be in \[0, 1\], got 2"):
        dataset(num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="budget must be a positive"):
        dataset(budget=0)


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader_resumes_with_exactly_the_batches_not_yet_yielded(workers):
    stateful = pytest.importorskip("torchdata.stateful_dataloader")

    def loader():
        return stateful.StatefulDataLoader(dataset(), batch_size=None, num_workers=workers)

    expected = [list(b) for b in loader()]
    first = loader()
    iterator = iter(first)
    taken = [list(next(iterator)) for _ in range(len(expected) // 3)]
    state = first.state_dict()
    del iterator, first
    resumed = loader()
    resumed.load_state_dict(state)
    rest = [list(b) for b in resumed]
    assert taken + rest == expected
    check_once_within_budget(taken + rest)


def test_two_ranks_under_torchrun_end_together_with_every_sample_once(tmp_path):
    from two_ranks import run_two_ranks

    ranks = run_two_ranks("stream_ddp.py", tmp_path)
    steps = [len(r["batches"]) + r["dummies"] for r in ranks]
    assert steps[0] == steps[1]  # no rank left waiting
    assert ranks[0]["dummies"] == 0 and ranks[1]["dummies"] > 0  # rank 1 ran out first
    seen = sorted(s for r in ranks for b in r["batches"] for s in b)
    assert seen == list(range(2000))


def test_without_distributed_the_batches_pass_through():
    from dynbatch_ext.batching.rank_steps import until_every_rank_ends

    assert list(until_every_rank_ends(iter([[1], [2, 3]]))) == [[1], [2, 3]]


def test_an_hf_streaming_dataset_from_a_local_file_is_not_split_twice(tmp_path):
    # datasets.IterableDataset gives each DataLoader worker its own shards; splitting its
    # workers' parts again by position would lose samples (half of them, with 2 workers).
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "reviews.csv"
    path.write_text("label,text\n" + "".join(f"{k % 2},{'w' * int(LENGTHS[k] % 97 + 1)}\n"
                                            for k in range(1000)))  # fmt: skip
    stream = datasets.load_dataset("csv", data_files=str(path), streaming=True, split="train")
    texts = [row["text"] for row in datasets.load_dataset("csv", data_files=str(path), split="train")]
    for ranks, workers in ((1, 0), (1, 2), (2, 2)):
        every = []
        for rank in range(ranks):
            data = BucketingIterableDataset(stream, lambda row: len(row["text"]), 16 * 64**2,
                                            buffer_size=128, num_replicas=ranks, rank=rank)  # fmt: skip
            every += [row["text"] for b in batches_of(data, num_workers=workers) for row in b]
        assert sorted(every) == sorted(texts), (ranks, workers)


def test_the_readme_example_over_an_hf_streaming_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    transformers = pytest.importorskip("transformers")
    stateful = pytest.importorskip("torchdata.stateful_dataloader")
    from dynbatch_ext import BucketingIterableDataset
    from dynbatch_ext.batching.rank_steps import until_every_rank_ends
    from dynbatch_ext.bench.reviews import character_tokenizer

    texts = ["好" * int(LENGTHS[k] % 300 + 1) for k in range(600)]
    (tmp_path / "reviews.csv").write_text("label,text\n" + "".join(f"{k % 2},{t}\n" for k, t in enumerate(texts)))
    tokenizer = character_tokenizer(texts, max_tokens=512)
    budget = 16 * 128**2

    stream = datasets.load_dataset("csv", data_files=str(tmp_path / "reviews.csv"), streaming=True, split="train")
    stream = stream.map(lambda row: tokenizer(row["text"], truncation=True),
                        remove_columns=["text"]).rename_column("label", "labels")  # fmt: skip
    batches = BucketingIterableDataset(stream, length=lambda row: len(row["input_ids"]), budget=budget,
                                       buffer_size=100, collate_fn=transformers.DataCollatorWithPadding(tokenizer))  # fmt: skip
    loader = stateful.StatefulDataLoader(batches, batch_size=None, num_workers=2)
    for epoch in range(2):
        batches.set_epoch(epoch)
        seen = 0
        for batch in until_every_rank_ends(loader):
            count, longest = batch["input_ids"].shape
            assert count * longest**2 <= budget and set(batch) == {"input_ids", "attention_mask", "labels"}
            seen += count
        assert seen == len(texts)


def _saved_midway(data, workers=0, taken=5):
    stateful = pytest.importorskip("torchdata.stateful_dataloader")
    loader = stateful.StatefulDataLoader(data, batch_size=None, num_workers=workers)
    iterator = iter(loader)
    for _ in range(taken):
        next(iterator)
    return loader.state_dict()


def _resume(data, state, workers=0):
    stateful = pytest.importorskip("torchdata.stateful_dataloader")
    loader = stateful.StatefulDataLoader(data, batch_size=None, num_workers=workers)
    loader.load_state_dict(state)
    return [list(b) for b in loader]


def test_a_state_of_another_reader_layout_or_epoch_is_refused():
    state = _saved_midway(dataset(num_replicas=1, rank=0))
    with pytest.raises(ValueError, match=r"saved by reader 0 of 1 .*this is reader 1 of 2"):
        _resume(dataset(num_replicas=2, rank=1), state)
    later = dataset()
    later.set_epoch(2)
    with pytest.raises(ValueError, match=r"saved in epoch 0 and the dataset is at epoch 2: call set_epoch\(0\)"):
        _resume(later, state)


def test_a_state_of_another_stream_is_refused():
    state = _saved_midway(dataset(source=list(range(600))))
    other = dataset(source=list(range(600, 1200)))
    with pytest.raises(ValueError, match="saved while reading another stream .*lengths read differ"):
        _resume(other, state)
    shorter = dataset(source=list(range(10)))
    with pytest.raises(ValueError, match="saved while reading another stream .*it ends after 10 of"):
        _resume(shorter, state)
    assert sorted(i for b in _resume(dataset(source=list(range(600))), state) for i in b)  # its own stream resumes


class SplitsItselfPerWorker(torch.utils.data.IterableDataset):
    """torch's documented pattern: each worker iterates its own share."""

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        start, step = (info.id, info.num_workers) if info is not None else (0, 1)
        return iter(range(start, 1000, step))


def test_a_torch_iterable_dataset_source_with_workers_must_say_how_it_splits():
    with pytest.raises(ValueError, match="pass source_splits_workers=True if it does"):
        batches_of(dataset(source=SplitsItselfPerWorker()), num_workers=2)
    batches = batches_of(dataset(source=SplitsItselfPerWorker(), source_splits_workers=True), num_workers=2)
    check_once_within_budget(batches, range(1000))
    check_once_within_budget(batches_of(dataset(source=SplitsItselfPerWorker())), range(1000))  # no workers


@pytest.mark.parametrize("loader, data", [({"num_workers": 2}, {}), ({}, {"num_replicas": 2, "rank": 1})])
def test_an_empty_stream_is_the_same_error_whatever_the_readers(loader, data):
    with pytest.raises(ValueError, match="the stream is empty"):
        batches_of(dataset(source=[], **data), **loader)


@pytest.mark.parametrize("workers", [0, 2])
def test_three_epochs_resumed_from_any_batch_give_the_uninterrupted_batches(workers):
    """Resume as a property: a state taken after any batch of any epoch (boundaries included)
    resumes with exactly the uninterrupted run's remaining batches; every epoch yields every
    sample once, in an order that differs between epochs."""
    stateful = pytest.importorskip("torchdata.stateful_dataloader")
    source = list(range(900))

    def loader(epoch):
        data = dataset(source=source)
        data.set_epoch(epoch)
        return stateful.StatefulDataLoader(data, batch_size=None, num_workers=workers)

    epochs, states = [], {}
    for epoch in range(3):
        run = loader(epoch)
        states[(epoch, 0)] = run.state_dict()
        batches = []
        for batch in run:
            batches.append(list(batch))
            states[(epoch, len(batches))] = run.state_dict()
        epochs.append(batches)
        check_once_within_budget(batches, source)
    assert epochs[0] != epochs[1] != epochs[2]
    inner = [(e, k) for e in range(3) for k in range(1, len(epochs[e]))]
    picked = np.random.default_rng(0).choice(len(inner), 7, replace=False)
    points = sorted({(0, 0), (1, 0), (2, len(epochs[2])), *(inner[i] for i in picked)})
    assert len(points) >= 10
    for epoch, taken in points:
        run = loader(epoch)
        run.load_state_dict(states[(epoch, taken)])
        rest = [[list(b) for b in run]] + [[list(b) for b in loader(e)] for e in range(epoch + 1, 3)]
        assert rest == [epochs[epoch][taken:], *epochs[epoch + 1:]], (epoch, taken)
