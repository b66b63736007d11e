"""BucketBatchSampler with DataLoader: coverage, epochs, resume, distributed defaults."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, Dataset

from dynbatch_ext import BucketBatchSampler

LENGTHS = np.random.default_rng(0).integers(0, 120, size=3000)
BUDGET = 40_000


class IndexDataset(Dataset):
    """Returns each sample's own index, so a loader's output says exactly what it drew."""

    def __len__(self):
        return len(LENGTHS)

    def __getitem__(self, index):
        return index


def drawn(loader) -> list[list[int]]:
    return [batch.tolist() for batch in loader]


def test_dataloader_with_two_workers_sees_every_sample_once():
    sampler = BucketBatchSampler(LENGTHS, BUDGET)
    loader = DataLoader(IndexDataset(), batch_sampler=sampler, num_workers=2)
    batches = drawn(loader)
    assert len(batches) == len(sampler) == len(loader)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(len(LENGTHS)))
    assert batches == [b.tolist() for b in sampler.batches()]  # in the planned order
    for batch in batches:  # and each within budget
        assert len(batch) * LENGTHS[batch].max() ** 2 <= BUDGET


def test_set_epoch_gives_a_new_order_and_the_same_epoch_the_same():
    sampler = BucketBatchSampler(LENGTHS, BUDGET, seed=3)
    first = list(sampler)
    assert list(sampler) == first  # iterating again repeats the epoch (no set_epoch)
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first
    assert sorted(sum(second, [])) == list(range(len(LENGTHS)))
    sampler.set_epoch(0)
    assert list(sampler) == first


@given(st.integers(0, 10_000), st.integers(0, 2))
def test_resume_yields_exactly_the_remaining_batches(interrupt_at, epoch):
    sampler = BucketBatchSampler(LENGTHS, BUDGET, seed=11)
    sampler.set_epoch(epoch)
    full = list(sampler)
    interrupt_at %= len(full) + 1
    iterator = iter(sampler)
    for _ in range(interrupt_at):
        next(iterator)
    state = sampler.state_dict()
    assert state["batches_done"] == interrupt_at

    resumed = BucketBatchSampler(LENGTHS, BUDGET, seed=11)
    resumed.load_state_dict(state)
    resumed.set_epoch(epoch)  # a training loop calls this again; it must not restart the epoch
    assert list(resumed) == full[interrupt_at:]
    resumed.set_epoch(epoch + 1)  # the next epoch is whole again
    assert len(list(resumed)) == len(resumed)


def test_resume_under_worker_prefetch_uses_the_consumed_count():
    sampler = BucketBatchSampler(LENGTHS, BUDGET, seed=2)
    full = [b.tolist() for b in sampler.batches()]
    loader = DataLoader(IndexDataset(), batch_sampler=sampler, num_workers=2, prefetch_factor=2)
    consumed = []
    for batch in loader:
        consumed.append(batch.tolist())
        if len(consumed) == 5:
            break
    assert sampler.state_dict()["batches_done"] > 5  # the workers drew ahead
    state = sampler.state_dict(batches_consumed=len(consumed))
    resumed = BucketBatchSampler(LENGTHS, BUDGET, seed=2)
    resumed.load_state_dict(state)
    rest = drawn(DataLoader(IndexDataset(), batch_sampler=resumed, num_workers=2))
    assert consumed + rest == full


def test_loading_a_state_from_other_settings_fails_clearly():
    state = BucketBatchSampler(LENGTHS, BUDGET, seed=1).state_dict()
    with pytest.raises(ValueError, match="resuming under other settings"):
        BucketBatchSampler(LENGTHS, BUDGET * 2, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="resuming under other settings"):
        BucketBatchSampler(LENGTHS, BUDGET, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="batches_consumed must be in"):
        BucketBatchSampler(LENGTHS, BUDGET).state_dict(batches_consumed=10**6)


def test_replicas_share_the_data_evenly():
    samplers = [BucketBatchSampler(LENGTHS, BUDGET, num_replicas=3, rank=r) for r in range(3)]
    counts = {len(s) for s in samplers}
    assert len(counts) == 1
    every = sorted(i for s in samplers for batch in s for i in batch)
    assert every == list(range(len(LENGTHS)))


def test_distributed_defaults(tmp_path):
    assert (BucketBatchSampler(LENGTHS, BUDGET).num_replicas, BucketBatchSampler(LENGTHS, BUDGET).rank) == (1, 0)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/rendezvous", rank=0, world_size=1)
    try:
        sampler = BucketBatchSampler(LENGTHS, BUDGET)
        assert (sampler.num_replicas, sampler.rank) == (dist.get_world_size(), dist.get_rank())
        explicit = BucketBatchSampler(LENGTHS, BUDGET, num_replicas=2, rank=1)
        assert (explicit.num_replicas, explicit.rank) == (2, 1)
    finally:
        dist.destroy_process_group()


def test_stats_and_skipped():
    lengths = np.array([5, 5, 500, 7])
    with pytest.warns(UserWarning, match="left out 1 sample"):
        sampler = BucketBatchSampler(lengths, 1000, oversize="skip")
    np.testing.assert_array_equal(sampler.skipped, [2])
    stats = sampler.stats()
    assert stats.samples_missing == 1 and stats.batches_over_budget == 0
    assert stats.num_batches == len(sampler)


def test_batches_are_lists_of_python_ints():
    batch = next(iter(BucketBatchSampler(LENGTHS, BUDGET)))
    assert isinstance(batch, list) and all(type(i) is int for i in batch)
    assert torch.tensor(batch).dtype == torch.int64


def test_a_state_from_a_sampler_that_plans_other_batches_is_refused_and_named():
    # Same number of samples every time: only the fingerprint of everything that shapes the plan
    # can tell these apart, and resuming any of them would skip some samples and repeat others.
    lengths = np.random.default_rng(5).integers(1, 60, size=500)
    base = dict(budget=2000, cost="tokens")
    state = BucketBatchSampler(lengths, **base).state_dict(batches_consumed=2)
    others = {
        "cost": dict(base, cost="count"),
        "lengths_sha256": dict(base, lengths=lengths[::-1].copy()),
        "max_batch_size": dict(base, max_batch_size=7),
        "pad_multiple": dict(base, pad_multiple=8),
        "batch_overhead": dict(base, batch_overhead=0.5),
        "shuffle": dict(base, shuffle=False),
        "padding_noise": dict(base, padding_noise=0.1),
        "oversize": dict(base, oversize="alone"),
        "drop_last": dict(base, drop_last=True),
        "step_mode": dict(base, step_target=16),
    }
    for changed, settings in others.items():
        sampler = BucketBatchSampler(settings.pop("lengths", lengths), settings.pop("budget"), **settings)
        with pytest.raises(ValueError, match=f"resuming under other settings.*{changed}: saved with"):
            sampler.load_state_dict(state)
    stepped = BucketBatchSampler(lengths, **base, step_target=16, max_micro_batches=2, composition="sorted")
    for changed, settings in {"step_unit": dict(step_unit="tokens", step_target=200, composition="sorted"),
                              "step_max_micro_batches": dict(step_target=16, max_micro_batches=3,
                                                             composition="sorted")}.items():  # fmt: skip
        with pytest.raises(ValueError, match=f"{changed}: saved with"):
            BucketBatchSampler(lengths, **base, **settings).load_state_dict(stepped.state_dict())
    BucketBatchSampler(lengths, **base).load_state_dict(state)  # the same settings resume


@pytest.mark.parametrize("state, message", [
    ([("epoch", 0)], "a sampler state is a dict"),
    ({"epoch": 0}, r"lacks \['batches_done'\]"),
])  # fmt: skip
def test_a_malformed_state_says_what_is_wrong(state, message):
    with pytest.raises(ValueError, match=message):
        BucketBatchSampler(LENGTHS, BUDGET).load_state_dict(state)
