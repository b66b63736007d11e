"""Shared fixtures: real data from ../shared/data (skipped with a reason when absent), and the
probabilities benchmark program built for the CUDA emulator."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from emulator_build import ROOT, build
from hypothesis import HealthCheck, settings

from dynbatch_ext import corpora

settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _data_file(name: str):
    folder = corpora.default_data_dir()
    if folder is None or not (folder / name).is_file():
        pytest.skip(f"{name} not found: real data lives in ../shared/data (or $DYNBATCH_DATA_DIR)")
    return folder / name


@pytest.fixture(scope="session")
def snli_lengths() -> np.ndarray:
    """(N, 2) whitespace-token lengths of SNLI dev pairs."""
    return corpora.read_pairs_tsv(_data_file(corpora.SNLI_DEV)).token_lengths()


@pytest.fixture(scope="session")
def chnsenticorp_lengths() -> np.ndarray:
    """(N,) character lengths of ChnSentiCorp hotel reviews (one is empty)."""
    return corpora.character_lengths(corpora.read_texts(_data_file(corpora.CHNSENTICORP)))


def reference_batch_cost(lengths, batch, constant=0.0, linear=0.0, quadratic=0.0, pad_multiple=1):
    """The cost model written out independently of the C++ core, as a test oracle."""
    rows = np.asarray(lengths)[np.asarray(batch, dtype=np.int64)]
    size = len(rows)
    if size == 0:
        return 0.0

    def padded(value):
        return math.ceil(int(value) / pad_multiple) * pad_multiple

    if rows.ndim == 1:
        longest = padded(rows.max())
        return size * (constant + linear * longest + quadratic * longest * longest)
    first, second = padded(rows[:, 0].max()), padded(rows[:, 1].max())
    return size * (constant + linear * (first + second) + quadratic * first * second)


@pytest.fixture(scope="session")
def probs_program(tmp_path_factory):
    """csrc/bench/soft_align_probs.cu built against the CUDA emulator, under ASan and UBSan."""
    sources = [ROOT / "csrc" / "kernels" / "soft_align.cu", ROOT / "csrc" / "bench" / "soft_align_probs.cu"]
    return build(tmp_path_factory.mktemp("probs") / "soft_align_probs", cuda=sources, sanitize=True)
