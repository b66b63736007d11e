"""The common baseline the benchmark compares with: fixed-size random batches."""
from __future__ import annotations

import numpy as np

from ..batching.checks import check_int
from ..batching.resumable import ResumableBatchSampler


class FixedBatchSampler(ResumableBatchSampler):
    """A random permutation of the samples cut into batches of `batch_size` (the last may be
    smaller), each batch its own optimizer step; a new permutation every epoch. One process."""

    def __init__(self, num_samples: int, batch_size: int, *, seed: int = 0):
        super().__init__()
        self.num_samples = check_int("num_samples", num_samples, 1)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.seed = check_int("seed", seed, 0)
        self._cached: tuple[int, list[np.ndarray]] | None = None

    def batches(self) -> list[np.ndarray]:
        if self._cached is None or self._cached[0] != self.epoch:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)
            cut = range(0, self.num_samples, self.batch_size)
            self._cached = (self.epoch, [order[i : i + self.batch_size] for i in cut])
        return self._cached[1]

    def _step_layout(self) -> list[int]:
        return [1] * len(self)

    def _settings(self) -> dict:
        return {"num_samples": self.num_samples, "batch_size": self.batch_size, "seed": self.seed}
