"""The training and validation pairs of a run: an SNLI-format file, or the synthetic task."""
from __future__ import annotations

import hashlib

import numpy as np

from ..corpora import PairData, read_pairs_tsv
from .config import TrainConfig
from .synthetic import synthetic_pairs


def subset(data: PairData, indices) -> PairData:
    return PairData(
        [data.premises[i] for i in indices],
        [data.hypotheses[i] for i in indices],
        [data.labels[i] for i in indices],
    )


def split(data: PairData, valid_fraction: float, seed: int) -> tuple[PairData, PairData]:
    """A seeded random split: (1 - valid_fraction) for training, the rest for validation."""
    order = np.random.default_rng([seed, 7]).permutation(len(data))
    cut = len(data) - max(1, int(round(valid_fraction * len(data))))
    if cut < 1:
        raise ValueError(f"{len(data)} pairs are too few to split into training and validation")
    return subset(data, order[:cut]), subset(data, order[cut:])


def data_sha256(data: PairData) -> str:
    """A digest of every premise, hypothesis and label, in order: what a resumed run checks."""
    digest = hashlib.sha256()
    for premise, hypothesis, label in zip(data.premises, data.hypotheses, data.labels):
        digest.update(f"{len(premise)}:{premise}{len(hypothesis)}:{hypothesis}{label};".encode())
    return digest.hexdigest()


def load_pairs(config: TrainConfig) -> tuple[PairData, PairData, str]:
    """(train, valid, a name for the source) as the config asks."""
    if config.train_file is None:
        data, name = synthetic_pairs(config.synthetic_size, seed=config.seed), "synthetic"
    else:
        data, name = read_pairs_tsv(config.train_file), str(config.train_file)
    if config.valid_file is not None:
        return data, read_pairs_tsv(config.valid_file), name
    train, valid = split(data, config.valid_fraction, config.seed)
    return train, valid, name
