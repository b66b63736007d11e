"""A built-in pair task that needs alignment to solve, so train-esim runs with no data file.

Premises are long-tailed runs of content words. A hypothesis holds a few words:
  0 (entailment)     every word occurs in the premise;
  1 (neutral)        one word does not occur in the premise (sometimes after "no");
  2 (contradiction)  "no X" where X occurs in the premise, the other words occur there too.
Telling 1 from 2 needs to know whether the word after "no" is in the premise: exactly what soft
alignment provides.
"""
from __future__ import annotations

import numpy as np

from ..corpora import PairData

WORDS = [f"w{i}" for i in range(40)]


def synthetic_pairs(n: int, *, seed: int = 0) -> PairData:
    """`n` labelled pairs, balanced over the three classes, a pure function of `seed`."""
    rng = np.random.default_rng(seed)
    data = PairData([], [], [])
    premise_lengths = np.clip(np.rint(rng.lognormal(np.log(10), 0.5, n)), 2, 60).astype(int)
    for i in range(n):
        premise = list(rng.choice(WORDS, size=premise_lengths[i]))
        present = sorted(set(premise))
        absent = sorted(set(WORDS) - set(premise))
        label = int(rng.integers(3))
        size = int(rng.integers(1, 5))
        words = list(rng.choice(present, size=size))
        if label == 1:
            odd = str(rng.choice(absent))
            words[rng.integers(size)] = f"no {odd}" if rng.random() < 0.5 else odd
        elif label == 2:
            words[rng.integers(size)] = f"no {rng.choice(present)}"
        data.premises.append(" ".join(premise))
        data.hypotheses.append(" ".join(words))
        data.labels.append(label)
    return data
