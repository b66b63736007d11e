"""Reading the data sets that tests and benchmarks use, and built-in synthetic lengths.

Real data stays outside the project (`../shared/data/` beside the checkout, or the folder named by
the DYNBATCH_DATA_DIR environment variable); the synthetic generators need no file at all.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import re
from pathlib import Path
from typing import Iterator

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


# The longest field the readers take: csv's own default limit, which a 10 MB field breaks with
# "_csv.Error: field larger than field limit".
MAX_FIELD_CHARS = 131_072
PAIRS_HEADER = ["premise", "hypothesis", "label"]
LABEL = re.compile(r"[0-9]{1,9}")  # a non-negative integer; int() would also take "0_1" or " 1"


def _shown(text: str, limit: int = 80) -> str:
    """repr of text, cut to about `limit` characters for an error message."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} characters)"


def _lines(path: Path, keep_ends: bool = False):
    """(line number, text) of every line of a UTF-8 file (a byte-order mark ignored), its line end
    removed unless `keep_ends`; a line that is not UTF-8 (a UTF-16 file, say) is a ValueError
    naming the file and the line."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                yield number, line if keep_ends else line.rstrip("\r\n")
            except UnicodeDecodeError as error:
                hint = " (it looks like UTF-16)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
                raise ValueError(f"{path}:{number}: not UTF-8{hint}, byte {raw[error.start]:#04x} at "
                                 f"column {error.start + 1}; save the file as UTF-8") from None  # fmt: skip


def _check_field(path: Path, number: int, field: str) -> str:
    if len(field) > MAX_FIELD_CHARS:
        raise ValueError(f"{path}:{number}: a field of {len(field):,} characters, more than "
                         f"{MAX_FIELD_CHARS:,}: is the file one text per line?")  # fmt: skip
    return field


def is_pairs_tsv(path) -> bool:
    """Whether the file starts with the SNLI-format header."""
    _, header = next(_lines(Path(path)), (1, ""))
    return header.split("\t")[:3] == PAIRS_HEADER


def iter_pairs_tsv(path) -> Iterator[tuple[str, str, int]]:
    """(premise, hypothesis, label) of each line of an SNLI-format TSV, read line by line: a
    header `premise<TAB>hypothesis<TAB>label`, then one pair a line with a non-negative integer
    label. Bad lines are ValueErrors naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    lines = _lines(path)
    number, header = next(lines, (1, ""))
    if header.split("\t")[:3] != PAIRS_HEADER:
        raise ValueError(f"{path}:{number}: expected a header 'premise<TAB>hypothesis<TAB>label', "
                         f"got {_shown(header)}")  # fmt: skip
    for number, line in lines:
        fields = [_check_field(path, number, f) for f in line.split("\t")]
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}")
        if not LABEL.fullmatch(fields[2]):
            raise ValueError(f"{path}:{number}: label {_shown(fields[2])} is not a non-negative "
                             "integer")  # fmt: skip
        yield fields[0], fields[1], int(fields[2])


def read_pairs_tsv(path) -> PairData:
    """An SNLI-format TSV (see iter_pairs_tsv), whole."""
    data = PairData([], [], [])
    for premise, hypothesis, label in iter_pairs_tsv(path):
        data.premises.append(premise)
        data.hypotheses.append(hypothesis)
        data.labels.append(label)
    if not len(data):
        raise ValueError(f"{path}: holds no pairs")
    return data


def iter_texts(path, column: int = -1) -> Iterator[str]:
    """One text column of a header-less CSV (or TSV, by extension), e.g. `label,review`, read
    row by row (a quoted field may span lines)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader((line for _, line in _lines(path, keep_ends=True)), delimiter=delimiter)
    try:
        for row in reader:
            if not row:
                continue
            if not -len(row) <= column < len(row):
                raise ValueError(f"{path}:{reader.line_num}: no column {column} in a row of {len(row)}")
            yield row[column]
    except csv.Error as error:  # a field past csv's limit, a stray quote at the end
        raise ValueError(f"{path}:{reader.line_num}: {error} (at most {MAX_FIELD_CHARS:,} "
                         "characters a field)") from None  # fmt: skip


def read_texts(path, column: int = -1) -> list[str]:
    """One text column of a header-less CSV or TSV (see iter_texts), whole."""
    texts = list(iter_texts(path, column))
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
