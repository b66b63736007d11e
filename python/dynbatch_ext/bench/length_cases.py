"""The length cases the benchmark batches: `Case`, and the one read from the user's `--data`."""
from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np

from .. import corpora
from ..batching import plan_batches
from ..training.text import check_labels


@dataclasses.dataclass
class Case:
    """Lengths to cut into batches, the budget and cost to cut them under, and what the batching
    section holds the planner to on them."""

    name: str
    lengths: np.ndarray
    budget: float
    cost: str = "quadratic"
    oversize: str = "error"
    targets: dict = dataclasses.field(default_factory=dict)  # metric -> (op, value)
    note: str = ""
    source: Path | None = None  # the user's file the lengths were read from

    @property
    def is_pairs(self) -> bool:
        return self.lengths.ndim == 2


# Characters per whitespace token above which a text reads as unsegmented (Chinese, Japanese,
# Thai: a whole review is one "word"); English runs at about 5-6.
UNSEGMENTED_CHARS_PER_TOKEN = 15


def text_unit(texts: list[str], unit: str) -> tuple[str, str]:
    """The unit single texts are measured in, and why: `unit` as asked, or for "auto" whitespace
    tokens, unless the texts hold so few spaces that tokens would be whole sentences."""
    if unit != "auto":
        return unit, f"--unit {unit}"
    chars = sum(len(t) for t in texts)
    tokens = sum(len(t.split()) for t in texts)
    per_token = chars / max(tokens, 1)
    if per_token > UNSEGMENTED_CHARS_PER_TOKEN:
        return "chars", (f"characters: the texts have {per_token:.0f} characters per whitespace token, "
                         "so they are not split by spaces (pass --unit tokens to force tokens)")  # fmt: skip
    return "tokens", f"whitespace tokens ({per_token:.1f} characters per token; --unit chars for characters)"


def user_case(path: Path, budget: float | None, unit: str, oversize: str = "error") -> Case:
    """A case from the user's own file (bench's --data): an SNLI-format TSV (pairs, whose labels
    are checked: the training section trains on them), else a CSV/TSV whose last column is the
    text (single texts, lengths in whitespace tokens or characters: `unit` "tokens", "chars" or
    "auto")."""
    if corpora.is_pairs_tsv(path):
        pairs = corpora.read_pairs_tsv(path)
        try:
            check_labels(pairs.labels)
        except ValueError as error:
            raise ValueError(f"--data {path}: {error}") from None
        lengths, default_budget = pairs.token_lengths(), 8192
        note = "pairs: whitespace tokens of premise and hypothesis"
    else:
        texts = corpora.read_texts(path)
        unit, note = text_unit(texts, unit)
        if unit == "chars":
            lengths = corpora.character_lengths(texts)
        else:
            lengths = np.fromiter((len(t.split()) for t in texts), np.int64, count=len(texts))
        default_budget = 16 * 256**2
    return Case(f"your data ({path.name})", lengths, default_budget if budget is None else budget,
                oversize=oversize, note=f"lengths in {note}", source=path)  # fmt: skip


def check_user_case(path: Path, budget: float | None, unit: str, oversize: str) -> Case:
    """`user_case` for bench's --data, checked now rather than after minutes of other sections:
    a ValueError in one line, in the command's own option names, when the file is missing, a
    sample alone costs more than the budget, or (pairs, which the training section trains on) a
    label is unknown."""
    if not path.is_file():
        raise ValueError(f"--data {path}: no such file")
    case = user_case(path, budget, unit, oversize)
    try:
        with warnings.catch_warnings():  # the batching section reports left-out samples itself
            warnings.simplefilter("ignore")
            plan_batches(case.lengths, case.budget, cost=case.cost, oversize=case.oversize)
    except ValueError as error:
        message = re.sub(r"oversize='(\w+)'", r"--oversize \1", str(error))
        raise ValueError(f"--data {path}: {message.replace('raise the budget', 'raise --budget')}") from None
    return case
