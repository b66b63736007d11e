"""Property-based tests of plan_batches' contract over random lengths and configurations."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import reference_batch_cost
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dynbatch_ext import CostModel, padding_stats, plan_batches

COSTS = {
    "count": dict(constant=1.0),
    "tokens": dict(linear=1.0),
    "quadratic": dict(quadratic=1.0),
    "mixed": dict(constant=3.0, linear=2.0, quadratic=0.5),
}


def as_cost(name):
    return name if name != "mixed" else CostModel(**COSTS["mixed"])


@st.composite
def problems(draw):
    """Random lengths (with zeros and ties), a cost model and a budget that fits most samples."""
    pairs = draw(st.booleans())
    n = draw(st.integers(1, 250))
    longest = draw(st.sampled_from([1, 4, 40, 700]))
    shape = (n, 2) if pairs else (n,)
    lengths = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, longest)))
    cost = draw(st.sampled_from(sorted(COSTS)))
    pad_multiple = draw(st.sampled_from([1, 1, 8]))
    alone = [reference_batch_cost(lengths, [i], pad_multiple=pad_multiple, **COSTS[cost]) for i in range(n)]
    # From "the largest sample just fits" to "everything fits in a few batches"; sometimes a
    # budget some samples exceed (they take the oversize policy).
    scale = draw(st.sampled_from([0.5, 1.0, 1.0, 3.0, 20.0, 1000.0]))
    budget = max(max(alone), 1.0) * scale
    return dict(lengths=lengths, cost=cost, pad_multiple=pad_multiple, budget=budget)


def plan_all_ranks(problem, num_replicas=1, **options):
    return [
        plan_batches(
            problem["lengths"], problem["budget"], cost=as_cost(problem["cost"]),
            pad_multiple=problem["pad_multiple"], num_replicas=num_replicas, rank=rank, **options,
        )  # fmt: skip
        for rank in range(num_replicas)
    ]


def cost_of(problem, batch):
    return reference_batch_cost(
        problem["lengths"], batch, pad_multiple=problem["pad_multiple"], **COSTS[problem["cost"]]
    )


@settings(max_examples=300)  # the core contract: worth more examples than the default
@given(
    problems(),
    st.integers(1, 3),
    st.booleans(),
    st.sampled_from([None, 1, 7]),
    st.sampled_from([0.0, 0.15, 2.0]),
    st.sampled_from([0.0, 0.2]),
)
def test_every_sample_once_within_budget_equal_counts(
    problem, num_replicas, shuffle, max_batch_size, batch_overhead, padding_noise
):
    if padding_noise and not shuffle:
        padding_noise = 0.0
    options = dict(
        shuffle=shuffle, max_batch_size=max_batch_size, batch_overhead=batch_overhead,
        padding_noise=padding_noise, oversize="alone", seed=7, epoch=3,
    )  # fmt: skip
    try:
        per_rank = plan_all_ranks(problem, num_replicas, **options)
    except ValueError as error:
        # Splitting batches can take their count M up to one per sample (N); this fails only
        # when no multiple of num_replicas lies in [M, N].
        assert "replicas" in str(error) and "drop_last" in str(error)
        m, n = len(plan_all_ranks(problem, 1, **options)[0]), len(problem["lengths"])
        assert m + (-m) % num_replicas > n
        return
    n = len(problem["lengths"])
    every = np.concatenate([b for rank in per_rank for b in rank])
    np.testing.assert_array_equal(np.sort(every), np.arange(n))  # cover: once each, none lost
    assert len({len(rank) for rank in per_rank}) == 1  # the same number of steps on every rank
    for rank in per_rank:
        for batch in rank:
            assert batch.dtype == np.int64 and len(batch) >= 1
            if max_batch_size is not None:
                assert len(batch) <= max_batch_size
            if len(batch) > 1:  # only a lone oversize sample may exceed the budget
                assert cost_of(problem, batch) <= problem["budget"] * (1 + 1e-12)


@given(problems(), st.integers(2, 4))
def test_batches_of_a_step_are_neighbours_in_cost(problem, num_replicas):
    try:
        per_rank = plan_all_ranks(problem, num_replicas, oversize="alone", seed=1)
    except ValueError:
        return  # too few samples to share (covered above)
    steps = list(zip(*per_rank))
    costs = [[cost_of(problem, b) for b in step] for step in steps]
    for s, step_costs in enumerate(costs):
        low, high = min(step_costs), max(step_costs)
        for t, other in enumerate(costs):
            if t != s:
                assert not any(low < c < high for c in other), (s, t)


@given(problems(), st.integers(1, 3), st.booleans())
def test_plan_is_a_pure_function_of_its_arguments(problem, num_replicas, shuffle):
    try:
        first = plan_all_ranks(problem, num_replicas, oversize="alone", shuffle=shuffle, seed=5)
    except ValueError:
        return
    second = plan_all_ranks(problem, num_replicas, oversize="alone", shuffle=shuffle, seed=5)
    for a, b in zip(first, second):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@given(problems())
def test_unshuffled_single_texts_come_shortest_first(problem):
    lengths = problem["lengths"]
    if lengths.ndim != 1:
        lengths = lengths[:, 0]
        problem = dict(problem, lengths=lengths, budget=problem["budget"])
    (batches,) = plan_all_ranks(problem, 1, oversize="alone", shuffle=False)
    for before, after in zip(batches, batches[1:]):
        assert lengths[before].max() <= lengths[after].min()


@given(problems(), st.integers(2, 4))
def test_drop_last_drops_only_the_remainder(problem, num_replicas):
    per_rank = None
    try:
        per_rank = plan_all_ranks(problem, num_replicas, oversize="alone", drop_last=True)
    except ValueError as error:
        assert "drop_last would drop every batch" in str(error)
        return
    full = plan_all_ranks(problem, 1, oversize="alone")[0]
    assert len({len(r) for r in per_rank}) == 1
    kept = np.concatenate([b for r in per_rank for b in r])
    assert len(np.unique(kept)) == len(kept)  # nothing repeated
    assert len(per_rank[0]) * num_replicas == len(full) - len(full) % num_replicas


@given(problems())
def test_oversize_policies(problem):
    lengths, budget = problem["lengths"], problem["budget"]
    alone = np.array([cost_of(problem, [i]) for i in range(len(lengths))])
    oversize = np.flatnonzero(alone > budget)
    common = dict(cost=as_cost(problem["cost"]), pad_multiple=problem["pad_multiple"])
    if len(oversize) == 0:
        return
    with pytest.raises(ValueError, match=rf"sample {oversize[0]} .* more than the budget"):
        plan_batches(lengths, budget, oversize="error", **common)
    batches = plan_batches(lengths, budget, oversize="alone", **common)
    for batch in batches:
        if np.isin(batch, oversize).any():
            assert len(batch) == 1
    if len(oversize) == len(lengths):
        with pytest.raises(ValueError, match="every sample exceeds the budget"):
            plan_batches(lengths, budget, oversize="skip", **common)
        return
    with pytest.warns(UserWarning, match=f"left out {len(oversize)} sample"):
        batches = plan_batches(lengths, budget, oversize="skip", **common)
    kept = np.sort(np.concatenate(batches))
    np.testing.assert_array_equal(kept, np.setdiff1d(np.arange(len(lengths)), oversize))


@given(problems(), st.data())
def test_padding_stats_match_an_independent_oracle(problem, data):
    lengths = problem["lengths"]
    n = len(lengths)
    # Any batching at all, repeats and misses included.
    batches = data.draw(
        st.lists(st.lists(st.integers(0, n - 1), min_size=1, max_size=20), min_size=1, max_size=12)
    )
    stats = padding_stats(
        lengths, batches, cost=as_cost(problem["cost"]), budget=problem["budget"],
        pad_multiple=problem["pad_multiple"],
    )  # fmt: skip
    costs = np.array([cost_of(problem, b) for b in batches])
    np.testing.assert_allclose(stats.batch_costs, costs, rtol=1e-12)
    rows = [np.asarray(lengths)[b] for b in batches]
    pad = problem["pad_multiple"]
    ceil = lambda v: -(-int(v) // pad) * pad  # noqa: E731
    real = sum(int(r.sum()) for r in rows)
    if lengths.ndim == 1:
        padded = sum(len(r) * ceil(r.max()) for r in rows)
    else:
        padded = sum(len(r) * (ceil(r[:, 0].max()) + ceil(r[:, 1].max())) for r in rows)
    assert stats.real_tokens == real and stats.padded_tokens == padded
    seen = np.bincount(np.concatenate(batches), minlength=n)
    assert stats.samples_missing == int((seen == 0).sum())
    assert stats.samples_repeated == int((seen > 1).sum())
    assert stats.batches_over_budget == int((costs > problem["budget"]).sum())
    assert stats.num_batches == len(batches)
    assert stats.batch_size_max == max(len(b) for b in batches)


def test_epoch_and_seed_change_the_order_but_not_the_guarantees():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=2000)
    base = plan_batches(lengths, 20_000, seed=1, epoch=0)
    for other in (plan_batches(lengths, 20_000, seed=1, epoch=1),
                  plan_batches(lengths, 20_000, seed=2, epoch=0)):  # fmt: skip
        assert not all(np.array_equal(a, b) for a, b in zip(base, other))
        np.testing.assert_array_equal(np.sort(np.concatenate(other)), np.arange(2000))


def test_padding_noise_mixes_lengths_at_a_small_padding_cost():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=5000)
    exact = padding_stats(lengths, plan_batches(lengths, 200_000, padding_noise=0.0))
    noisy = padding_stats(lengths, plan_batches(lengths, 200_000, padding_noise=0.2))
    assert noisy.efficiency < exact.efficiency  # noise costs some padding...
    assert noisy.efficiency > 0.75  # ...but only some


@settings(max_examples=150)
@given(
    problems(),
    st.sampled_from([0.0, 1e-300, 0.15, 1e6, 1e150, 1e307, 1.7e308]),
    st.sampled_from([None, 1, 2, 5, 2**40, 2**63 - 1]),
)
def test_every_accepted_option_value_keeps_the_budget_and_the_size_cap(problem, overhead, cap):
    # The DP's batch penalty grows with batch_overhead; where it overflowed, the cut fell back to
    # one batch of everything, over the budget and the cap.
    plan = plan_all_ranks(problem, batch_overhead=overhead, max_batch_size=cap, oversize="alone")[0]
    assert sorted(i for b in plan for i in b) == list(range(len(problem["lengths"])))
    for batch in plan:
        if len(batch) > 1:
            assert cost_of(problem, batch) <= problem["budget"] * (1 + 1e-9)
        assert cap is None or len(batch) <= cap


def test_a_huge_batch_overhead_gives_the_fewest_batches_not_one_over_budget():
    batches = plan_batches([3, 5, 7, 2, 9, 1], 100, batch_overhead=1e307, max_batch_size=2)
    assert max(len(b) for b in batches) <= 2
    assert all(len(b) * max([3, 5, 7, 2, 9, 1][i] for i in b) ** 2 <= 100 or len(b) == 1 for b in batches)
