"""Step composition: random steps are exactly a fixed-size random batch sampler's steps with the
padding removed inside them (the same sample sets; in float64 the same weights after ten
optimizer steps), pooled steps mix lengths like their pool, and every composition covers the
epoch once with equal micro-batch counts on every rank."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.utils.data import BatchSampler

from dynbatch_ext import BucketBatchSampler, micro_batch_weights, plan_steps
from dynbatch_ext.batching.steps import epoch_order

RNG = np.random.default_rng(11)
LENGTHS = RNG.integers(1, 120, 1000)


def step_sets(plan) -> list[list[int]]:
    return [sorted(int(i) for mb in step for i in mb) for step in plan.steps]


@pytest.mark.parametrize("seed, epoch, target", [(0, 0, 20), (3, 2, 32), (7, 5, 7)])
def test_random_steps_hold_the_sample_sets_of_a_fixed_size_random_batch_sampler(seed, epoch, target):
    plan = plan_steps(LENGTHS, 64 * 64**2, target=target, composition="random", seed=seed,
                      epoch=epoch)  # fmt: skip
    order = epoch_order(len(LENGTHS), seed=seed, epoch=epoch)
    fixed = [sorted(int(i) for i in batch) for batch in BatchSampler(order.tolist(), target, drop_last=False)]
    assert step_sets(plan) == fixed
    assert step_sets(plan) != step_sets(plan_steps(LENGTHS, 64 * 64**2, target=target,
                                                   composition="random", seed=seed, epoch=epoch + 1))


def test_random_steps_split_every_step_between_ranks_with_equal_micro_batch_counts():
    plans = [plan_steps(LENGTHS, 16 * 64**2, target=33, composition="random", num_replicas=3,
                        rank=r, epoch=1) for r in range(3)]  # fmt: skip
    order = epoch_order(len(LENGTHS), epoch=1)
    fixed = [sorted(int(i) for i in batch) for batch in BatchSampler(order.tolist(), 33, drop_last=False)]
    for s, want in enumerate(fixed):
        assert [len(plan.steps[s]) for plan in plans] == [len(plans[0].steps[s])] * 3
        assert sorted(int(i) for plan in plans for mb in plan.steps[s] for i in mb) == want


def test_random_steps_in_tokens_are_consecutive_runs_of_about_the_target():
    plan = plan_steps(LENGTHS, 64 * 64**2, target=2000, unit="tokens", composition="random")
    order = epoch_order(len(LENGTHS)).tolist()
    runs = []
    for step in step_sets(plan):
        runs.append(sorted(order[: len(step)]))
        order = order[len(step):]
    assert step_sets(plan) == runs
    # Cut where the running total passes each multiple of the target: no drift over the epoch.
    assert all(abs(t - 2000) < LENGTHS.max() for t in plan.totals[:-1]), plan.totals


def test_pooled_steps_keep_the_pools_mix_of_lengths_where_sorted_steps_do_not():
    mean_lengths = {}
    for composition in ("sorted", "pooled", "random"):
        plan = plan_steps(LENGTHS, 64 * 64**2, target=20, composition=composition,
                          pool_steps=8, max_batch_size=20)  # fmt: skip
        assert sorted(i for step in step_sets(plan) for i in step) == list(range(len(LENGTHS)))
        if composition != "sorted":  # the random order's runs of 20, dealt back exactly
            assert (plan.totals == 20).all(), plan.totals
        mean_lengths[composition] = np.array([LENGTHS[step].mean() for step in step_sets(plan)])
    spread = {c: v.std() for c, v in mean_lengths.items()}
    # A step's mean length varies between steps as in random batches of 20 (about 35 / sqrt(20)),
    # not as in length-sorted steps (about 35).
    assert spread["random"] < 12 and spread["pooled"] < 12 < spread["sorted"], spread


def test_pooled_steps_with_few_samples_still_give_every_step_a_micro_batch():
    lengths = np.full(40, 3)  # one micro-batch would hold them all
    plan = plan_steps(lengths, 10**6, target=5, composition="pooled", pool_steps=8)
    assert [int(t) for t in plan.totals] == [5] * 8


def test_steps_with_several_replicas_hold_a_multiple_of_the_replicas_samples_averaging_the_target():
    # Found by hypothesis: a step of 3 samples of lengths 0, 1 and 2 over 2 replicas was refused
    # although one micro-batch of two and one of one fit; a multiple of the replicas always can.
    lengths = np.zeros(52, dtype=np.int64)
    lengths[[2, 40]] = [1, 2]
    plans = [plan_steps(lengths, 16, target=3, composition="random", num_replicas=2, rank=r)
             for r in range(2)]  # fmt: skip
    sizes = [sum(len(mb) for plan in plans for mb in plan.steps[s]) for s in range(len(plans[0].steps))]
    assert all(size % 2 == 0 for size in sizes) and sum(sizes) == 52
    assert sizes[:4] == [4, 2, 4, 2]  # cut where the running count passes 3, 6, 9, ...


def test_a_step_whose_samples_cannot_be_shared_equally_is_refused_by_name():
    # Every sample fills the budget alone: 3 samples make 3 micro-batches, and 2 replicas need 2 or 4.
    with pytest.raises(ValueError, match="a step of 3 samples cannot give each of the 2 replicas"):
        plan_steps(np.full(3, 4), 16, target=3, composition="random", num_replicas=2)


@given(lengths=hnp.arrays(np.int64, st.integers(1, 200), elements=st.integers(0, 60)),
       target=st.sampled_from([1, 3, 20, 64.5]), replicas=st.sampled_from([1, 2, 3]),
       composition=st.sampled_from(["random", "pooled"]), pool_steps=st.sampled_from([1, 3]),
       unit=st.sampled_from(["samples", "tokens"]))  # fmt: skip
@settings(max_examples=60, deadline=None)
def test_every_composition_covers_the_epoch_once_within_budget(lengths, target, replicas,
                                                               composition, pool_steps, unit):  # fmt: skip
    budget = 4 * max(1, int(lengths.max())) ** 2
    if len(lengths) < replicas:
        with pytest.raises(ValueError, match="fewer than the .* replicas"):
            plan_steps(lengths, budget, target=target, num_replicas=replicas, composition=composition)
        return
    plans = [plan_steps(lengths, budget, target=target, unit=unit, composition=composition,
                        pool_steps=pool_steps, num_replicas=replicas, rank=r) for r in range(replicas)]  # fmt: skip
    seen = sorted(int(i) for plan in plans for step in plan.steps for mb in step for i in mb)
    assert seen == list(range(len(lengths)))
    assert len({len(plan.steps) for plan in plans}) == 1
    for s in range(len(plans[0].steps)):
        assert len({len(plan.steps[s]) for plan in plans}) == 1
        for plan in plans:
            for mb in plan.steps[s]:
                assert len(mb) >= 1 and len(mb) * int(lengths[mb].max()) ** 2 <= budget


def test_compositions_other_than_sorted_refuse_what_only_sorted_steps_mean():
    with pytest.raises(ValueError, match="max_micro_batches applies to composition='sorted'"):
        plan_steps(LENGTHS, 10**6, target=20, composition="random", max_micro_batches=2)
    with pytest.raises(ValueError, match="drop_last applies to sorted steps only"):
        plan_steps(LENGTHS, 10**6, target=20, composition="pooled", drop_last=True, num_replicas=3)
    with pytest.raises(ValueError, match="composition must be one of"):
        plan_steps(LENGTHS, 10**6, target=20, composition="shuffled")
    with pytest.raises(ValueError, match="pool_steps must be at least 1"):
        plan_steps(LENGTHS, 10**6, target=20, composition="pooled", pool_steps=0)
    with pytest.raises(ValueError, match="pass step_target=... for step mode"):
        BucketBatchSampler(LENGTHS, 10**6, composition="random")


def test_a_sampler_state_carries_the_composition_and_a_change_is_refused():
    saved = BucketBatchSampler(LENGTHS, 10**6, step_target=20, composition="random").state_dict()
    with pytest.raises(ValueError, match="step_composition: saved with 'random', this one has 'pooled'"):
        BucketBatchSampler(LENGTHS, 10**6, step_target=20, composition="pooled").load_state_dict(saved)


class _Model(torch.nn.Module):
    """Embeddings, a masked mean and a nonlinear head: padding must not change its loss."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = torch.nn.Embedding(50, 8, padding_idx=0, dtype=torch.float64)
        self.head = torch.nn.Sequential(torch.nn.Linear(8, 8, dtype=torch.float64), torch.nn.Tanh(),
                                        torch.nn.Linear(8, 2, dtype=torch.float64))  # fmt: skip

    def loss(self, tokens: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        longest = max(1, max(len(t) for t in tokens))
        ids = torch.zeros(len(tokens), longest, dtype=torch.long)
        for k, t in enumerate(tokens):
            ids[k, : len(t)] = t
        mask = (ids != 0).double()[..., None]
        pooled = (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return torch.nn.functional.cross_entropy(self.head(pooled), labels)


def test_ten_random_steps_reach_the_weights_of_ten_fixed_batches_padded_whole():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 300)
    tokens = [torch.as_tensor(rng.integers(1, 50, n)) for n in lengths]
    labels = torch.as_tensor(rng.integers(0, 2, 300))
    plan = plan_steps(lengths, 6 * 30**2, target=24, composition="random", seed=4, epoch=2)
    order = epoch_order(300, seed=4, epoch=2).tolist()

    def train(steps) -> dict:
        model = _Model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
        for micro_batches in steps[:10]:
            for mb, weight in zip(micro_batches, micro_batch_weights([len(mb) for mb in micro_batches])):
                (model.loss([tokens[i] for i in mb], labels[mb]) * weight).backward()
            optimizer.step()
            optimizer.zero_grad()
        return model.state_dict()

    budgeted = train([[np.asarray(mb) for mb in step] for step in plan.steps])
    fixed = train([[np.asarray(batch)] for batch in BatchSampler(order, 24, drop_last=False)])
    assert max(len(step) for step in plan.steps[:10]) > 1  # the micro-batches' weights matter
    for name, value in fixed.items():
        torch.testing.assert_close(budgeted[name], value, rtol=1e-9, atol=1e-12)
