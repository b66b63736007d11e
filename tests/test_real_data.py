"""plan_batches on real lengths: SNLI dev pairs and ChnSentiCorp reviews (one of them empty).

The benchmark reports the figures; these tests hold the guarantees, plus floors well below the
measured efficiency so that a regression in the partition shows up here first.
"""
from __future__ import annotations

import numpy as np
import pytest

from dynbatch_ext import padding_stats, plan_batches

SNLI_PAIR_COST = "quadratic"  # pairs: B * Lp * Lh


@pytest.mark.parametrize("budget, floor", [(8192, 0.95), (32768, 0.89)])
def test_snli_pairs_fit_the_budget_with_little_padding(snli_lengths, budget, floor):
    batches = plan_batches(snli_lengths, budget, cost=SNLI_PAIR_COST, seed=0)
    stats = padding_stats(snli_lengths, batches, cost=SNLI_PAIR_COST, budget=budget)
    assert stats.samples_missing == 0 and stats.samples_repeated == 0
    assert stats.batches_over_budget == 0
    assert stats.efficiency >= floor
    assert stats.cost_max_over_median <= 1.15
    rng = np.random.default_rng(0)
    fixed = np.array_split(rng.permutation(len(snli_lengths)), len(snli_lengths) // 32)
    baseline = padding_stats(snli_lengths, fixed, cost=SNLI_PAIR_COST, budget=budget)
    assert baseline.efficiency < 0.55 < stats.efficiency


def test_snli_both_fields_are_bucketed(snli_lengths):
    # Sorting on the premise alone would leave hypotheses padded; the Hilbert order must not.
    batches = plan_batches(snli_lengths, 8192, seed=0)
    waste = [
        (snli_lengths[b, 1].max() - snli_lengths[b, 1]).sum() / snli_lengths[b, 1].sum()
        for b in batches
    ]
    assert np.median(waste) < 0.1


def test_chnsenticorp_empty_review_and_long_tail(chnsenticorp_lengths):
    lengths = chnsenticorp_lengths
    assert (lengths == 0).sum() == 1  # the real zero-length sample
    empty = int(np.flatnonzero(lengths == 0)[0])
    budget = 16 * 256**2
    with pytest.raises(ValueError, match="more than the budget"):
        plan_batches(lengths, budget)  # reviews over 1024 characters cannot fit alone
    with pytest.warns(UserWarning, match="left out 28 sample"):
        batches = plan_batches(lengths, budget, oversize="skip")
    seen = np.concatenate(batches)
    assert (seen == empty).sum() == 1
    stats = padding_stats(lengths, batches, budget=budget)
    assert stats.batches_over_budget == 0 and stats.samples_repeated == 0
    assert stats.samples_missing == 28
    assert stats.efficiency >= 0.97
    alone = plan_batches(lengths, budget, oversize="alone")
    long_ones = [b for b in alone if lengths[b].max() > 1024]
    assert len(long_ones) == 28 and all(len(b) == 1 for b in long_ones)
