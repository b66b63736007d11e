"""plan_steps and the sampler's step mode with composition="sorted" (the epoch sorted and cut,
its micro-batches dealt into steps): coverage, balance, equal steps on every rank. The other
compositions: test_step_composition.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.utils.data import DataLoader

from dynbatch_ext import BucketBatchSampler, plan_batches, plan_steps

RNG = np.random.default_rng(5)
PAIRS = np.stack([RNG.integers(1, 60, 2000), RNG.integers(1, 30, 2000)], axis=1)


def weight(lengths, batch, unit):
    return len(batch) if unit == "samples" else int(np.asarray(lengths)[batch].sum())


@st.composite
def step_problems(draw):
    n = draw(st.integers(3, 300))
    lengths = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 50)))
    return dict(
        lengths=lengths,
        budget=float(draw(st.sampled_from([2500, 10_000, 100_000]))),
        target=float(draw(st.sampled_from([1, 7, 32, 500, 10**6]))),
        unit=draw(st.sampled_from(["samples", "tokens"])),
        max_micro_batches=draw(st.sampled_from([None, 1, 2, 5])),
        num_replicas=draw(st.sampled_from([1, 2, 3])),
        seed=draw(st.integers(0, 3)),
    )


@given(step_problems())
def test_steps_cover_the_plan_once_with_equal_steps_on_every_rank(problem):
    replicas = problem.pop("num_replicas")
    lengths, budget = problem["lengths"], problem["budget"]
    budget = max(budget, float(lengths.max()) ** 2)
    options = dict(num_replicas=replicas, seed=problem["seed"])
    try:
        plan_batches(lengths, budget, **options)
    except ValueError as error:  # too few samples to give every replica a batch
        assert "replicas" in str(error)
        assume(False)
    plans = [
        plan_steps(lengths, budget, target=problem["target"], unit=problem["unit"], composition="sorted",
                   max_micro_batches=problem["max_micro_batches"], rank=r, **options)
        for r in range(replicas)
    ]  # fmt: skip
    # The same batches as plan_batches, only regrouped.
    batches = [plan_batches(lengths, budget, rank=r, **options) for r in range(replicas)]
    for r, plan in enumerate(plans):
        got = sorted(tuple(b) for step in plan.steps for b in step)
        assert got == sorted(tuple(b) for b in batches[r])
    # Every rank: same number of steps, same micro-batches in each step, same totals.
    sizes = [[len(step) for step in plan.steps] for plan in plans]
    assert all(s == sizes[0] for s in sizes)
    for plan in plans[1:]:
        np.testing.assert_array_equal(plan.totals, plans[0].totals)
    # Totals are the steps' real weight over all ranks.
    for s, total in enumerate(plans[0].totals):
        real = sum(weight(lengths, b, problem["unit"]) for plan in plans for b in plan.steps[s])
        assert total == real
    # The cap holds, and the count is the target's unless the cap needs more.
    cap = problem["max_micro_batches"]
    if cap is not None:
        assert max(sizes[0]) <= cap
    rounds, total = sum(sizes[0]), plans[0].totals.sum()
    fewest = math.ceil(rounds / (cap or rounds))
    expected = min(max(round(total / problem["target"]), fewest, 1), rounds)
    assert abs(len(plans[0]) - expected) <= 1  # round-half-even vs half-away-from-zero
    # LPT without a cap: step totals differ by at most the heaviest round.
    if cap is None:
        heaviest = max(
            sum(weight(lengths, plan.steps[s][k], problem["unit"]) for plan in plans)
            for s in range(len(plans[0])) for k in range(len(plans[0].steps[s]))
        )  # fmt: skip
        assert plans[0].totals.max() - plans[0].totals.min() <= heaviest


def test_capped_micro_batches_give_steps_near_the_target():
    plan = plan_steps(PAIRS, 8192, target=32, max_batch_size=32, seed=1, composition="sorted")
    summary = plan.summary()
    assert summary["per_step_median"] == 32
    assert summary["per_step_min"] >= 16 and summary["per_step_max"] <= 48
    assert summary["num_micro_batches"] > summary["num_steps"]  # some steps accumulate


def test_plan_is_a_pure_function_of_seed_and_epoch():
    def draw(**kw):
        plan = plan_steps(PAIRS, 8192, target=64, max_batch_size=32, composition="sorted", **kw)
        return [[b.tolist() for b in step] for step in plan.steps]

    assert draw(seed=2, epoch=1) == draw(seed=2, epoch=1)
    assert draw(seed=2, epoch=1) != draw(seed=2, epoch=2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(target=0), "target must be a positive"),
        (dict(target=float("nan")), "target must be a positive"),
        (dict(target=32, unit="words"), "unit must be one of"),
        (dict(target=32, max_micro_batches=0), "max_micro_batches must be"),
        (dict(target=32, rank=2, num_replicas=2), "rank must be in"),
    ],
)
def test_bad_step_options_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_steps(PAIRS, 8192, **kwargs)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="max_batch"):
        plan_steps(PAIRS, 8192, target=32, max_batch=4)


def make_sampler(**kw):
    return BucketBatchSampler(PAIRS, 8192, step_target=48, max_batch_size=32, seed=4, composition="sorted", **kw)


def test_sampler_step_mode_groups_loader_output_by_step():
    sampler = make_sampler()
    loader = DataLoader(range(len(PAIRS)), batch_sampler=sampler)
    grouped = [[mb.tolist() for mb in step] for step in sampler.group_steps(loader)]
    expected = [[b.tolist() for b in step] for step in sampler.steps()]
    assert grouped == expected
    assert [len(s) for s in grouped] == sampler.micro_batches_per_step()
    assert sorted(i for step in grouped for mb in step for i in mb) == list(range(len(PAIRS)))
    np.testing.assert_array_equal(sampler.step_totals(), [sum(map(len, s)) for s in grouped])


def test_sampler_resumes_at_a_step_boundary_and_refuses_mid_step():
    sampler = make_sampler()
    sizes = sampler.micro_batches_per_step()
    first_multi = next(i for i, size in enumerate(sizes) if size > 1)
    done = sum(sizes[:first_multi])
    resumed = make_sampler()
    resumed.load_state_dict(sampler.state_dict(batches_consumed=done))
    loader = DataLoader(range(len(PAIRS)), batch_sampler=resumed)
    rest = [[mb.tolist() for mb in step] for step in resumed.group_steps(loader)]
    assert rest == [[b.tolist() for b in step] for step in sampler.steps()[first_multi:]]
    with pytest.raises(ValueError, match="inside an optimizer step"):
        make_sampler().load_state_dict(sampler.state_dict(batches_consumed=done + 1))


def test_sampler_without_steps_says_how_to_get_them():
    with pytest.raises(ValueError, match="step_target"):
        BucketBatchSampler(PAIRS, 8192).micro_batches_per_step()


def test_sampler_state_records_the_step_target():
    state = make_sampler().state_dict()
    with pytest.raises(ValueError, match="saved with"):
        BucketBatchSampler(PAIRS, 8192, max_batch_size=32, seed=4).load_state_dict(state)
