"""The dynamic loader of the experiment this project grew from, exactly as its code has it.

`DatasetForDBL` (../shared/seeds/000_8cb0412cc80b3838.txt, section 1) with the settings of its
real-data runs (`uprank=None, shuffle=True`): the samples are shuffled, then walked in that order
while a batch grows. Its `controller` stands for `batch_size * input_length**2`, but:
- inside a batch the size limit is `int(controller / max_length)`, linear in the batch's longest
  length so far (`max_length`, in tokens with [CLS] and [SEP], as its tokenizer's `encode` gives);
- at a cut it sets `int(controller / max_length**2)`, which the next sample overwrites with the
  linear limit;
- the counter restarts at 0 with the cut sample already in the new batch, so a batch can hold
  one sample more than its limit;
- the batches are consecutive runs of the shuffled data (not sorted), in shuffled order, one
  optimizer step each.
"""
from __future__ import annotations

import numpy as np


def seed_dynamic_batches(lengths: np.ndarray, controller: float, seed: int) -> list[np.ndarray]:
    """Index arrays of DatasetForDBL's batches over samples of `lengths` tokens ([CLS] and
    [SEP] included), shuffled by `seed` (its random.shuffle, here numpy's)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))  # _rank(): uprank=None, shuffle=True
    bounds, batch, start, max_length = [], 0, 0, 0
    for position, sample in enumerate(order):  # _update_data_index(), line by line
        sample_length = int(lengths[sample])
        max_length = max(max_length, sample_length)
        batch_size = int(controller / max_length)
        batch += 1
        if batch > batch_size:
            bounds.append((start, position))
            start = position
            max_length = sample_length
            batch_size = int(controller / max_length**2)  # overwritten at the next sample
            batch = 0
    bounds.append((start, len(lengths)))
    shuffled = rng.permutation(len(bounds))  # _index_to_index, shuffled
    # A run can be empty only where a sample is longer than the controller: the seed's loader
    # would hand its collate an empty batch there; it is left out.
    return [order[bounds[k][0]:bounds[k][1]] for k in shuffled if bounds[k][1] > bounds[k][0]]
