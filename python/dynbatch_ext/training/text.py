"""Whitespace tokens, a vocabulary built from the training split, and padded pair batches."""
from __future__ import annotations

import collections
import dataclasses

import numpy as np
import torch
from torch.utils.data import Dataset

from ..corpora import PairData

PAD, UNK = "<pad>", "<unk>"
NUM_CLASSES = 3  # SNLI's: 0 entailment, 1 neutral, 2 contradiction


def check_labels(labels, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """The labels as int64, each in [0, num_classes), or a ValueError naming the first that is
    not (checked before training starts, not when its batch comes up)."""
    labels = np.asarray(labels, dtype=np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        raise ValueError(f"pair {int(bad[0])} has label {int(labels[bad[0]])}, outside "
                         f"[0, {num_classes}); SNLI labels are 0, 1, 2")  # fmt: skip
    return labels


def tokenize(text: str) -> list[str]:
    """Lower-cased whitespace tokens (the unit in which the planner counts lengths)."""
    return text.lower().split()


class Vocabulary:
    """Token <-> id. Id 0 is padding, 1 stands for every token not in the vocabulary."""

    def __init__(self, tokens: list[str]):
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r} and {UNK!r}, got {tokens[:2]!r}")
        self.tokens = list(tokens)
        self.ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts, min_count: int = 1) -> "Vocabulary":
        """Every token seen at least `min_count` times, most frequent first (ties by spelling)."""
        counts = collections.Counter(token for text in texts for token in tokenize(text))
        kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls([PAD, UNK, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> np.ndarray:
        return np.array([self.ids.get(t, 1) for t in tokenize(text)], dtype=np.int64)


@dataclasses.dataclass
class PairBatch:
    premise: torch.Tensor  # (B, Lp) int64, right-padded with 0
    premise_lengths: torch.Tensor  # (B,) int64
    hypothesis: torch.Tensor  # (B, Lh)
    hypothesis_lengths: torch.Tensor  # (B,)
    labels: torch.Tensor  # (B,) int64
    ids: torch.Tensor  # (B,) int64: which samples of the data set these are

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> "PairBatch":
        return PairBatch(*(t.to(device) for t in dataclasses.astuple(self)))

    def inputs(self) -> tuple[torch.Tensor, ...]:
        return self.premise, self.premise_lengths, self.hypothesis, self.hypothesis_lengths

    def token_counts(self) -> tuple[int, int]:
        """(real, padded) tokens of both sentences: padded is what LSTMs over the padded
        tensors run over."""
        real = int(self.premise_lengths.sum()) + int(self.hypothesis_lengths.sum())
        return real, self.premise.numel() + self.hypothesis.numel()


def _pad(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.zeros((len(rows), max(1, int(lengths.max()))), dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return torch.from_numpy(out), torch.from_numpy(lengths)


class EncodedPairs(Dataset):
    """Token ids of sentence pairs. Items are their own indices; `collate` builds the batch, so
    a DataLoader over it with a batch sampler gathers a whole batch at once."""

    def __init__(self, data: PairData, vocab: Vocabulary, num_classes: int = NUM_CLASSES):
        labels = check_labels(data.labels, num_classes)
        self.premises = [vocab.encode(t) for t in data.premises]
        self.hypotheses = [vocab.encode(t) for t in data.hypotheses]
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> int:
        return index

    def lengths(self) -> np.ndarray:
        """(N, 2) premise and hypothesis token counts."""
        return np.array([[len(p), len(h)] for p, h in zip(self.premises, self.hypotheses)],
                        dtype=np.int64).reshape(-1, 2)  # fmt: skip

    def collate(self, indices) -> PairBatch:
        premise, len_p = _pad([self.premises[i] for i in indices])
        hypothesis, len_h = _pad([self.hypotheses[i] for i in indices])
        indices = np.asarray(indices, dtype=np.int64)
        return PairBatch(premise, len_p, hypothesis, len_h, torch.from_numpy(self.labels[indices]),
                         torch.from_numpy(indices))  # fmt: skip
