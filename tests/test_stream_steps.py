"""A stream in optimizer steps (`step_target=...`): each fill of the buffer planned as an epoch of
steps (the buffer is the pool), whole steps out, every sample once, resumable, and refused where
a stream cannot keep the promise."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynbatch_ext import padding_stats
from dynbatch_ext.batching.stream import StreamBucketer, bucket_stream, stream_batches
from dynbatch_ext.batching.stream_dataset import BucketingIterableDataset
from dynbatch_ext.corpora import synthetic_lengths

LENGTHS = synthetic_lengths(3000, seed=11)
BUDGET = 16 * 128**2


def chunks(lengths: np.ndarray, size: int):
    return (lengths[k : k + size] for k in range(0, len(lengths), size))


def check_steps(steps, lengths, budget=BUDGET):
    """Every sample in exactly one micro-batch of one step, every micro-batch within budget."""
    batches = [batch for step in steps for batch in step]
    assert all(len(step) > 0 for step in steps) and all(len(b) > 0 for b in batches)
    stats = padding_stats(lengths, batches, budget=budget)
    assert stats.samples_missing == stats.samples_repeated == stats.batches_over_budget == 0


@pytest.mark.parametrize("composition", ["random", "pooled"])
def test_random_and_pooled_fills_emit_whole_steps_and_every_sample_once(composition):
    steps = list(stream_batches(chunks(LENGTHS, 97), BUDGET, buffer_size=500, step_target=20,
                                composition=composition, pool_steps=8, seed=1))  # fmt: skip
    check_steps(steps, LENGTHS)
    sizes = [sum(len(b) for b in step) for step in steps]
    assert sum(sizes) == len(LENGTHS)
    if composition == "random":  # a step is 20 of the fill's samples: the fixed batch's size
        assert sizes == [20] * (len(LENGTHS) // 20)
    else:  # a pool's samples dealt over its steps: about 20 each
        assert 17 <= min(sizes) and max(sizes) <= 23 and abs(np.mean(sizes) - 20) < 0.5


def test_pooled_steps_mix_the_fills_lengths_and_sorted_steps_do_not():
    def mean_length_spread(composition):
        steps = stream_batches(chunks(LENGTHS, 250), BUDGET, buffer_size=1000, step_target=20,
                               composition=composition, seed=2)  # fmt: skip
        means = [np.mean(LENGTHS[np.concatenate(step)]) for step in steps]
        return np.std(means)

    random_batches = np.std([np.mean(LENGTHS[k : k + 20]) for k in range(0, len(LENGTHS), 20)])
    assert mean_length_spread("pooled") < 1.5 * random_batches
    assert mean_length_spread("sorted") > 3 * random_batches


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 120), min_size=1, max_size=300),
    buffer_size=st.integers(8, 80),
    chunk=st.integers(1, 40),
    target=st.sampled_from([1, 2.5, 8]),
    composition=st.sampled_from(["random", "pooled", "sorted"]),
)
def test_any_stream_any_buffer_in_steps(lengths, buffer_size, chunk, target, composition):
    lengths = np.array(lengths)
    steps = list(stream_batches(chunks(lengths, chunk), 4 * 128**2, buffer_size=buffer_size,
                                step_target=target, composition=composition, pool_steps=2))  # fmt: skip
    check_steps(steps, lengths, 4 * 128**2)


def test_samples_held_as_given_and_the_same_seed_gives_the_same_steps():
    samples = [{"id": k} for k in range(len(LENGTHS))]

    def run(epoch):
        return list(bucket_stream(samples, lambda s: int(LENGTHS[s["id"]]), BUDGET, buffer_size=600,
                                  step_target=16, epoch=epoch, seed=4))  # fmt: skip

    first = run(0)
    assert isinstance(first[0][0][0], dict)
    assert run(0) == first and run(1) != first
    check_steps([[[s["id"] for s in b] for b in step] for step in first], LENGTHS)


def test_a_resumed_bucketer_continues_with_exactly_the_steps_not_yet_taken():
    def bucketer():
        return StreamBucketer(BUDGET, buffer_size=300, step_target=20, composition="random", seed=5)

    def feed_all(bucketer, start=0):
        steps = []
        for k in range(start, len(LENGTHS), 70):
            bucketer.feed(list(range(k, min(k + 70, len(LENGTHS)))), LENGTHS[k : k + 70])
            steps += bucketer.steps()
        bucketer.finish()
        return steps + bucketer.steps()

    expected = feed_all(bucketer())
    interrupted = bucketer()
    for k in range(0, 1400, 70):
        interrupted.feed(list(range(k, k + 70)), LENGTHS[k : k + 70])
    taken = [interrupted.pop_step(), interrupted.pop_step()]
    resumed = bucketer()
    resumed.load_state_dict(interrupted.state_dict())
    rest = []
    while (step := resumed.pop_step()) is not None:
        rest.append(step)
    assert taken + rest + feed_all(resumed, 1400) == expected


def test_resuming_under_another_composition_or_without_steps_is_refused():
    saved = StreamBucketer(BUDGET, buffer_size=300, step_target=20, composition="random")
    saved.feed(list(range(100)), LENGTHS[:100])
    state = saved.state_dict()
    for other in (dict(step_target=20, composition="pooled"), dict(step_target=32, composition="random"), {}):
        with pytest.raises(ValueError, match="steps"):
            StreamBucketer(BUDGET, buffer_size=300, **other).load_state_dict(state)


def test_what_a_stream_cannot_do_in_steps_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="random or pooled steps count samples"):
        StreamBucketer(BUDGET, step_target=500, step_unit="tokens", composition="random")
    with pytest.raises(ValueError, match=r"buffer_size \(10\) must hold at least one step"):
        StreamBucketer(BUDGET, buffer_size=10, step_target=20)
    with pytest.raises(ValueError, match="pass step_target"):
        StreamBucketer(BUDGET, composition="random")
    with pytest.raises(ValueError, match="use steps"):
        StreamBucketer(BUDGET, step_target=20).batches()
    with pytest.raises(ValueError, match="use batches"):
        StreamBucketer(BUDGET).pop_step()
    # sorted steps may count tokens: the fill is dealt into steps of equal weight
    steps = list(stream_batches(chunks(LENGTHS, 100), BUDGET, buffer_size=500, step_target=2000,
                                step_unit="tokens", composition="sorted"))  # fmt: skip
    check_steps(steps, LENGTHS)


def stream_dataset(**overrides):
    settings = dict(budget=BUDGET, buffer_size=400, seed=3, step_target=24, collate_fn=torch.tensor)
    settings.update(overrides)
    return BucketingIterableDataset(list(range(len(LENGTHS))), lambda s: int(LENGTHS[s]), **settings)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_dataloader_item_is_a_step_of_collated_micro_batches(workers):
    steps = list(torch.utils.data.DataLoader(stream_dataset(), batch_size=None, num_workers=workers))
    assert all(isinstance(b, torch.Tensor) for step in steps for b in step)
    check_steps([[b.tolist() for b in step] for step in steps], LENGTHS)


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader_resumes_a_stream_of_steps_over_epochs(workers):
    stateful = pytest.importorskip("torchdata.stateful_dataloader")

    def loader(epoch):
        data = stream_dataset(collate_fn=None)
        data.set_epoch(epoch)
        return stateful.StatefulDataLoader(data, batch_size=None, num_workers=workers)

    def as_lists(steps):
        return [[list(b) for b in step] for step in steps]

    epochs = [as_lists(loader(e)) for e in range(2)]
    assert epochs[0] != epochs[1]
    for epoch in range(2):
        check_steps(epochs[epoch], LENGTHS)
        run = loader(epoch)
        iterator = iter(run)
        taken = as_lists(next(iterator) for _ in range(len(epochs[epoch]) // 3))
        state = run.state_dict()
        del iterator, run
        resumed = loader(epoch)
        resumed.load_state_dict(state)
        assert taken + as_lists(resumed) == epochs[epoch]


def test_two_ranks_under_torchrun_train_steps_until_both_end_with_every_sample_once(tmp_path):
    from two_ranks import run_two_ranks

    ranks = run_two_ranks("stream_ddp.py", tmp_path, "steps")
    seen = sorted(s for r in ranks for b in r["batches"] for s in b)
    assert seen == list(range(2000))
    # each rank reads 1,000 samples: 50 steps of 20 each, however many micro-batches they take
    assert [r["steps"] for r in ranks] == [50, 50] and [r["dummies"] for r in ranks] == [0, 0]
    assert len(ranks[0]["batches"]) > len(ranks[1]["batches"])  # rank 0 has the long samples
