"""Budgeted batches from a stream (batching/stream.py, csrc/core/stream_batcher.cpp): every sample
once, every batch within budget, bounded memory, determinism, resume, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynbatch_ext import padding_stats, plan_batches
from dynbatch_ext.batching.stream import StreamBucketer, bucket_stream, stream_batches
from dynbatch_ext.corpora import synthetic_lengths, synthetic_pair_lengths


def chunks(lengths: np.ndarray, size: int):
    return (lengths[k : k + size] for k in range(0, len(lengths), size))


def check_plan(lengths, batches, budget, pad_multiple=1):
    """Every sample in exactly one batch, every batch within budget; returns the stats."""
    stats = padding_stats(lengths, batches, budget=budget, pad_multiple=pad_multiple)
    assert stats.samples_missing == stats.samples_repeated == stats.batches_over_budget == 0
    return stats


@pytest.mark.parametrize("pairs", [False, True])
def test_every_sample_once_within_budget_and_near_the_planner(pairs):
    lengths = synthetic_pair_lengths(60_000, seed=1) if pairs else synthetic_lengths(60_000, seed=1)
    budget = 8192 if pairs else 16 * 256**2
    batches = list(stream_batches(chunks(lengths, 777), budget, pairs=pairs, buffer_size=10_000))
    streamed = check_plan(lengths, batches, budget).efficiency
    in_memory = padding_stats(lengths, plan_batches(lengths, budget)).efficiency
    assert streamed >= 0.95 * in_memory


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 300), min_size=1, max_size=400),
    buffer_size=st.integers(1, 64),
    chunk=st.integers(1, 50),
    pad_multiple=st.sampled_from([1, 8]),
    max_batch_size=st.sampled_from([None, 3]),
)
def test_any_stream_any_buffer(lengths, buffer_size, chunk, pad_multiple, max_batch_size):
    lengths = np.array(lengths)
    budget = 4 * 304**2
    batches = list(stream_batches(chunks(lengths, chunk), budget, buffer_size=buffer_size,
                                  pad_multiple=pad_multiple, max_batch_size=max_batch_size))  # fmt: skip
    check_plan(lengths, batches, budget, pad_multiple)
    if max_batch_size:
        assert max(len(b) for b in batches) <= max_batch_size


def test_the_buffer_bounds_what_is_held():
    bucketer = StreamBucketer(16 * 64**2, buffer_size=500)
    lengths = synthetic_lengths(20_000, seed=2, high=64)
    most = 0
    for k in range(0, len(lengths), 100):
        bucketer.feed(list(range(k, k + 100)), lengths[k : k + 100])
        most = max(most, bucketer.buffered)
        bucketer.batches()
    assert most < 500


def test_the_same_stream_and_seed_give_the_same_batches_and_the_epoch_changes_them():
    lengths = synthetic_lengths(5000, seed=3)

    def run(**options):
        return [b.tolist() for b in stream_batches(chunks(lengths, 300), 16 * 256**2, buffer_size=1000, **options)]

    assert run(seed=4) == run(seed=4)
    assert run(seed=4) != run(seed=4, epoch=1)
    assert run(seed=4) != run(seed=5)
    # Only the order of whole batches and ties vary: without shuffling, they come out sorted.
    unshuffled = run(shuffle=False)
    assert unshuffled == run(shuffle=False, seed=9)


def test_oversize_samples_follow_the_policy_and_name_the_sample():
    lengths = np.array([10, 400, 20, 30, 500])
    budget = 300**2
    with pytest.raises(ValueError, match=r"sample 1 \(length 400\) costs 160000 alone"):
        list(stream_batches([lengths], budget))
    with pytest.warns(UserWarning, match="left out 2 sample"):
        kept = np.concatenate(list(stream_batches([lengths], budget, oversize="skip")))
    assert sorted(kept.tolist()) == [0, 2, 3]
    alone = list(stream_batches([lengths], budget, oversize="alone"))
    assert sorted(np.concatenate(alone).tolist()) == [0, 1, 2, 3, 4]
    assert [1] in [b.tolist() for b in alone] and [4] in [b.tolist() for b in alone]
    samples = [{"n": n} for n in lengths]
    bucketer = StreamBucketer(budget, oversize="skip")
    bucketer.feed(samples, lengths)
    bucketer.finish()
    assert bucketer.skipped == 2
    assert sorted(s["n"] for b in bucketer.batches() for s in b) == [10, 20, 30]


@pytest.mark.parametrize("length, message", [
    (lambda s: -1, r"gave -1 for sample 0; it must return a non-negative integer"),
    (lambda s: 2.5, r"gave 2.5 for sample 0"),
    (lambda s: "7", r"gave '7' for sample 0"),
    (lambda s: True, r"gave True for sample 0"),
])  # fmt: skip
def test_a_bad_length_function_is_named(length, message):
    with pytest.raises(ValueError, match=message):
        list(bucket_stream(["a", "b"], length, 100))


def test_bad_streams_and_options_are_refused():
    with pytest.raises(ValueError, match="the stream is empty"):
        list(bucket_stream([], len, 100))
    with pytest.raises(ValueError, match="the stream is empty"):
        list(stream_batches([], 100))
    with pytest.raises(ValueError, match=r"sample 3 \(length -2\): lengths must be non-negative"):
        list(stream_batches([np.array([1, 2]), np.array([3, -2])], 100))
    with pytest.raises(ValueError, match="must be integers"):
        list(stream_batches([np.array([1.5])], 100))
    with pytest.raises(ValueError, match="buffer_size must be"):
        StreamBucketer(100, buffer_size=0)
    with pytest.raises(ValueError, match="leave num_replicas and drop_last out"):
        StreamBucketer(100, num_replicas=2)
    with pytest.raises(ValueError, match="budget must be a positive"):
        StreamBucketer(-1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        StreamBucketer(100, bucket_size=3)
    with pytest.raises(ValueError, match=r"for pairs|gave \(1,\) for sample 0"):
        list(bucket_stream(["a"], lambda s: (1,), 100, pairs=True))


def test_pairs_of_samples_batch_under_the_pair_cost():
    lengths = synthetic_pair_lengths(3000, seed=5)
    samples = [{"premise": int(p), "hypothesis": int(h)} for p, h in lengths]
    batches = list(bucket_stream(samples, lambda s: (s["premise"], s["hypothesis"]), 4096,
                                 pairs=True, buffer_size=700))  # fmt: skip
    assert sum(len(b) for b in batches) == len(samples)
    for batch in batches:
        lp, lh = max(s["premise"] for s in batch), max(s["hypothesis"] for s in batch)
        assert len(batch) * lp * lh <= 4096


def test_a_resumed_bucketer_continues_with_exactly_the_batches_not_yet_taken():
    lengths = synthetic_lengths(4000, seed=6)
    samples = [f"s{k}" for k in range(len(lengths))]

    def feed(bucketer, begin, end):
        out = []
        for k in range(begin, end, 250):
            bucketer.feed(samples[k : min(k + 250, end)], lengths[k : min(k + 250, end)])
            out += bucketer.batches()
        return out

    whole = StreamBucketer(16 * 128**2, buffer_size=900, seed=1)
    expected = feed(whole, 0, 4000)
    whole.finish()
    expected += whole.batches()

    first = StreamBucketer(16 * 128**2, buffer_size=900, seed=1)
    got = feed(first, 0, 2250)
    first.feed(samples[2250:2500], lengths[2250:2500])
    got += [first.pop_batch(), first.pop_batch()]  # the rest of the fill's batches still ready
    state = first.state_dict()
    resumed = StreamBucketer(16 * 128**2, buffer_size=900, seed=1)
    resumed.load_state_dict(state)
    got += resumed.batches()
    got += feed(resumed, 2500, 4000)
    resumed.finish()
    got += resumed.batches()
    assert got == expected
    other = StreamBucketer(16 * 128**2, buffer_size=800, seed=1)
    with pytest.raises(ValueError, match="other settings"):
        other.load_state_dict(state)


def test_ten_thousand_lengths_per_push_stream_with_memory_bounded(tmp_path):
    # The throughput figure is the benchmark's; here only that a long stream runs through.
    total = 0
    rng = np.random.default_rng(0)
    stream = (rng.integers(1, 512, size=10_000) for _ in range(30))
    for batch in stream_batches(stream, 16 * 256**2):
        total += len(batch)
    assert total == 300_000


def test_a_progress_bar_counts_the_samples_read(capsys):
    batches = list(bucket_stream(list(range(3000)), lambda s: s % 50, 16 * 64**2, progress=True))
    assert sum(len(b) for b in batches) == 3000
    err = capsys.readouterr().err
    assert "bucket_stream" in err and "/3000" in err  # of how many: the list has a length


def test_chunks_of_the_wrong_shape_say_what_was_expected():
    with pytest.raises(ValueError, match=r"pass pairs=True for \(n, 2\)"):
        list(stream_batches([np.ones((3, 2), dtype=int)], 100))
    with pytest.raises(ValueError, match=r"expected lengths of shape \(3, 2\)"):
        list(stream_batches([np.ones(3, dtype=int)], 100, pairs=True))
    assert sum(len(b) for b in stream_batches([np.zeros(0, dtype=int), np.ones(4, dtype=int)], 100)) == 4


def test_a_refused_chunk_is_taken_whole_or_not_at_all():
    bucketer = StreamBucketer(10**6, buffer_size=4)
    with pytest.raises(ValueError, match=r"sample 2 \(length -1\): lengths must be non-negative"):
        bucketer.feed(list("abcdef"), [1, 2, -1, 3, 4, 5])
    assert bucketer.samples_read == 0 and bucketer.buffered == 0 and not bucketer.batches()
    bucketer.feed(list("abcdef"), [1, 2, 6, 3, 4, 5])  # the caller fixes the chunk and goes on
    bucketer.finish()
    assert sorted(s for b in bucketer.batches() for s in b) == list("abcdef")
    over = StreamBucketer(100, buffer_size=4)
    with pytest.raises(ValueError, match=r"sample 1 \(length 11\) costs 121 alone"):
        over.feed(["x", "y"], [1, 11])
    assert over.samples_read == 0 and over.buffered == 0


@pytest.mark.parametrize("lengths, message", [
    (np.array([3, 2**63], dtype=np.uint64), r"sample 1 has length 9223372036854775808: lengths must be in \[0, "),
    ([3, 2**63, -1], r"sample 1 has length 9223372036854775808"),
    ([3, 2**64], r"sample 1 has length 18446744073709551616"),
])  # fmt: skip
def test_lengths_past_int64_are_named_not_wrapped(lengths, message):
    with pytest.raises(ValueError, match=message):
        StreamBucketer(100).feed(["a"] * len(lengths), lengths)


def test_a_state_of_other_settings_names_them_and_a_non_state_is_refused():
    saved = StreamBucketer(100, seed=1).state_dict()
    with pytest.raises(ValueError, match="seed: saved with 1, this one has 2"):
        StreamBucketer(100, seed=2).load_state_dict(saved)
    for bad in (None, [1], {"settings": {}}):
        with pytest.raises(ValueError, match="this is not a stream state"):
            StreamBucketer(100).load_state_dict(bad)
