"""Reading the data sets that tests and benchmarks use, and built-in synthetic lengths.

Real data stays outside the project (`../shared/data/` beside the checkout, or the folder named by
the DYNBATCH_DATA_DIR environment variable); the synthetic generators need no file at all.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

import numpy as np

SNLI_DEV = "snli_1.0_dev.tsv"
CHNSENTICORP = "chnsenticorp_htl_all.csv"


def default_data_dir() -> Path | None:
    """$DYNBATCH_DATA_DIR if set, else `../shared/data` or `shared/data` from the working
    directory; None where the chosen folder does not exist."""
    if os.environ.get("DYNBATCH_DATA_DIR"):
        candidates = [Path(os.environ["DYNBATCH_DATA_DIR"])]
    else:
        candidates = [Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), None)


@dataclasses.dataclass
class PairData:
    """Sentence pairs in SNLI format: premise, hypothesis, integer label."""

    premises: list[str]
    hypotheses: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def token_lengths(self) -> np.ndarray:
        """(N, 2) int64 whitespace-token lengths (premise, hypothesis)."""
        return np.array(
            [[len(p.split()), len(h.split())] for p, h in zip(self.premises, self.hypotheses)],
            dtype=np.int64,
        ).reshape(-1, 2)


def read_pairs_tsv(path) -> PairData:
    """Reads an SNLI-format TSV: a header `premise<TAB>hypothesis<TAB>label`, then one pair a line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    data = PairData([], [], [])
    with path.open(encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
        if header[:3] != ["premise", "hypothesis", "label"]:
            raise ValueError(
                f"{path}: expected a header 'premise<TAB>hypothesis<TAB>label', got {header!r}"
            )
        for number, line in enumerate(handle, start=2):
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 3:
                raise ValueError(f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}")
            try:
                label = int(fields[2])
            except ValueError:
                raise ValueError(f"{path}:{number}: label {fields[2]!r} is not an integer") from None
            data.premises.append(fields[0])
            data.hypotheses.append(fields[1])
            data.labels.append(label)
    if not len(data):
        raise ValueError(f"{path}: holds no pairs")
    return data


def read_texts(path, column: int = -1) -> list[str]:
    """Reads one text column of a header-less CSV (or TSV, by extension), e.g. `label,review`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    texts = []
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
            if not row:
                continue
            if not -len(row) <= column < len(row):
                raise ValueError(f"{path}:{number}: no column {column} in a row of {len(row)}")
            texts.append(row[column])
    if not texts:
        raise ValueError(f"{path}: holds no rows")
    return texts


def character_lengths(texts) -> np.ndarray:
    return np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))


def synthetic_lengths(n: int, *, seed: int = 0, low: int = 2, high: int = 512) -> np.ndarray:
    """Long-tailed single-text lengths: lognormal (median 64), rounded and clipped to [low, high]."""
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(rng.lognormal(np.log(64), 0.9, n)), low, high).astype(np.int64)


def synthetic_pair_lengths(n: int, *, seed: int = 0) -> np.ndarray:
    """(N, 2) pair lengths shaped like SNLI's (premise median 12, hypothesis median 7)."""
    rng = np.random.default_rng(seed)
    premise = np.clip(np.rint(rng.lognormal(np.log(12.5), 0.45, n)), 1, 80)
    hypothesis = np.clip(np.rint(rng.lognormal(np.log(7.0), 0.4, n)), 1, 60)
    return np.stack([premise, hypothesis], axis=1).astype(np.int64)
