"""Bad input raises ValueError naming the problem: never a crash, never a silent result."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dynbatch_ext import BucketBatchSampler, CostModel, PlanOptions, padding_stats, plan_batches, plan_steps

GOOD = np.array([3, 1, 4, 1, 5, 9, 2, 6])


@pytest.mark.parametrize(
    "lengths, message",
    [
        ([3, -1, 4], r"lengths\[1\] is -1: lengths must be non-negative"),
        ([[3, 4], [2, -7]], r"lengths\[1, 1\] is -7"),
        ([3.0, 1.5], "must be integers, got a float64 array"),
        ([3.0, math.nan], "it contains NaN"),
        ([True, False], "must be integers, got dtype bool"),
        (["a", "b"], "must be integers"),
        ([], "lengths is empty"),
        (np.zeros((0, 2), np.int64), "lengths is empty"),
        (np.ones((4, 3), np.int64), r"shape \(N,\) for single texts or \(N, 2\) for pairs"),
        (np.ones((4, 2, 1), np.int64), "shape"),
        (5, "shape"),
        ([[1, 2], [3]], "must be an array of integers"),
        ([2**40], "lengths above"),
        (np.array([2**63], dtype=np.uint64), "too large for int64"),
    ],
)
def test_bad_lengths(lengths, message):
    with pytest.raises(ValueError, match=message):
        plan_batches(lengths, 1000)
    with pytest.raises(ValueError, match=message):
        BucketBatchSampler(lengths, 1000)


@pytest.mark.parametrize("budget", [0, -5, math.nan, math.inf, -math.inf])
def test_budget_must_be_positive_and_finite(budget):
    with pytest.raises(ValueError, match="budget must be a positive finite number"):
        plan_batches(GOOD, budget)


@pytest.mark.parametrize("budget", ["100", None, True, [100]])
def test_budget_must_be_a_number(budget):
    with pytest.raises(ValueError, match="budget must be a number"):
        plan_batches(GOOD, budget)


def test_a_budget_too_small_for_a_sample_names_it():
    with pytest.raises(ValueError) as info:
        plan_batches(GOOD, 50)  # 9**2 = 81 > 50, 6**2 = 36 fits
    message = str(info.value)
    assert "sample 5 (length 9) costs 81 alone, more than the budget 50" in message
    assert "(1 sample exceeds it)" in message
    assert "oversize='alone'" in message and "oversize='skip'" in message


def test_a_budget_too_small_for_every_sample():
    with pytest.raises(ValueError, match="every sample exceeds the budget alone"):
        plan_batches(GOOD, 0.5, oversize="skip")


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(cost="cubic"), "cost must be one of"),
        (dict(cost=42), "cost must be one of"),
        (dict(pad_multiple=0), "pad_multiple must be at least 1"),
        (dict(pad_multiple=2.5), "pad_multiple must be an integer"),
        (dict(max_batch_size=0), "max_batch_size must be at least 1"),
        (dict(oversize="drop"), "oversize must be 'error', 'alone' or 'skip'"),
        (dict(seed=-1), "seed must be in"),
        (dict(epoch=-1), "epoch must be in"),
        (dict(num_replicas=0), "num_replicas must be at least 1"),
        (dict(num_replicas=2, rank=2), r"rank must be in \[0, 1\]"),
        (dict(rank=-1), "rank must be in"),
        (dict(padding_noise=1.0), r"padding_noise must be in \[0, 1\)"),
        (dict(padding_noise=-0.1), r"padding_noise must be in \[0, 1\)"),
        (dict(padding_noise=math.nan), r"padding_noise must be in \[0, 1\)"),
        (dict(padding_noise=0.1, shuffle=False), "shuffle=False turns off"),
        (dict(batch_overhead=-1.0), "batch_overhead must be a finite number >= 0"),
        (dict(batch_overhead=math.inf), "batch_overhead must be a finite number >= 0"),
        (dict(batch_overhead="high"), "batch_overhead must be a number"),
        (dict(num_replicas=9, rank=0), "too few to split further; pass drop_last=True"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        plan_batches(GOOD, 1000, **options)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(quadratic=-1), "CostModel.quadratic must be a finite number >= 0"),
        (dict(linear=math.nan), "CostModel.linear must be a finite number >= 0"),
        (dict(constant="1"), "CostModel.constant must be a finite number >= 0"),
        (dict(), "CostModel is all zeros"),
    ],
)
def test_bad_cost_models(fields, message):
    with pytest.raises(ValueError, match=message):
        CostModel(**fields)


def test_padding_stats_rejects_indices_outside_the_data():
    with pytest.raises(ValueError, match="batch 1 holds index 8, outside the 8 samples"):
        padding_stats(GOOD, [[0, 1], [8]])
    with pytest.raises(ValueError, match="holds index -1"):
        padding_stats(GOOD, [[-1]])
    with pytest.raises(ValueError, match="batches is empty"):
        padding_stats(GOOD, [])
    with pytest.raises(ValueError, match="must be integers"):
        padding_stats(GOOD, [[0.5]])


def test_torch_tensors_are_accepted_as_lengths():
    batches = plan_batches(torch.tensor(GOOD), 1000)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(len(GOOD)))


@pytest.mark.parametrize("make", [
    lambda: plan_batches(GOOD, 1000, max_batch=4),
    lambda: plan_steps(GOOD, 1000, target=4, max_batch=4),
    lambda: BucketBatchSampler(GOOD, 1000, max_batch=4),
])  # fmt: skip
def test_an_unknown_option_is_a_type_error_naming_it(make):
    with pytest.raises(TypeError, match=r"\['max_batch'\].*PlanOptions"):
        make()


def test_plan_options_are_checked_and_normalised_when_made():
    options = PlanOptions(1000, cost="tokens", max_batch_size=4)
    assert options.cost == CostModel(linear=1) and options.budget == 1000.0
    with pytest.raises(ValueError, match="pad_multiple must be at least 1"):
        PlanOptions(1000, pad_multiple=0)
    with pytest.raises(ValueError, match="oversize must be 'error', 'alone' or 'skip'"):
        PlanOptions(1000, oversize="drop")


@pytest.mark.parametrize("options, message", [
    (dict(max_batch_size=2**63), r"max_batch_size must be at most 9223372036854775807"),
    (dict(pad_multiple=2**64), r"pad_multiple must be at most 1073741824"),
    (dict(num_replicas=2**70), r"num_replicas must be at most"),
    (dict(seed=2**64), r"seed must be in \[0, 18446744073709551615\]"),
    (dict(epoch=2**63), r"epoch must be in"),
])  # fmt: skip
def test_integers_past_what_the_core_holds_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        plan_batches(GOOD, 1000, **options)


def test_a_budget_too_large_for_a_float_is_named():
    with pytest.raises(ValueError, match="budget must be a positive finite number, got 1000000"):
        plan_batches(GOOD, 10**400)


def test_padding_stats_checks_pad_multiple_as_plan_batches_does():
    with pytest.raises(ValueError, match="pad_multiple must be at most 1073741824"):
        padding_stats(GOOD, [[0, 1]], pad_multiple=2**62)
    stats = padding_stats(GOOD, [[0, 1]], pad_multiple=2**30)
    assert stats.padded_tokens > 0 and 0 < stats.efficiency <= 1


@pytest.mark.parametrize("lengths, message", [
    (torch.tensor(GOOD, device="meta"), "meta device, which holds no values"),
    (torch.tensor(GOOD).bfloat16(), "must be integers, got a torch.bfloat16 tensor"),
])  # fmt: skip
def test_torch_tensors_that_hold_no_integers_are_named(lengths, message):
    with pytest.raises(ValueError, match=message):
        plan_batches(lengths, 1000)
