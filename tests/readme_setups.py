"""Stand-ins for what README examples call the user's own: tiny models, a tokenizer built from
local text, small data sets. tests/test_readme.py runs each README code block after the setup
its marker names (`<!-- readme-test: NAME -->`), in a fresh namespace."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """A padded batch (module level: DataLoader workers pickle what they collate)."""

    ids: torch.Tensor
    labels: torch.Tensor


def _pad_collate(rows) -> Batch:
    ids = torch.nn.utils.rnn.pad_sequence([ids for ids, _ in rows], batch_first=True)
    return Batch(ids, torch.as_tensor([label for _, label in rows]))


def _lightning_collate(rows) -> dict:
    ids = torch.nn.utils.rnn.pad_sequence([torch.as_tensor(r["input_ids"]) for r in rows], batch_first=True)
    return {"input_ids": ids, "labels": torch.as_tensor([r["labels"] for r in rows])}


def texts() -> dict:
    """Whitespace texts, a dataset of (token ids, label) rows, its collate, a model on it."""
    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{k}" for k in rng.integers(0, 50, n)) for n in rng.integers(1, 60, 200)]
    dataset = [(torch.as_tensor(rng.integers(1, 50, len(t.split()))), int(rng.integers(0, 2))) for t in texts]

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.EmbeddingBag(50, 8)
            self.head = torch.nn.Linear(8, 2)

        def forward(self, batch):
            return self.head(self.embedding(batch.ids))

    model = Model()
    return {"texts": texts, "dataset": dataset, "pad_collate": _pad_collate, "model": model,
            "loss_fn": torch.nn.functional.cross_entropy, "epochs": 2,
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.1)}  # fmt: skip


def _reviews(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    from dynbatch_ext.bench import reviews

    data = reviews.synthetic_reviews(n, seed)
    return [t[:300] for t in data.texts], data.labels.tolist()


def hf() -> dict:
    """A character tokenizer from local text, a tiny BERT, and train / valid sets of raw text."""
    import datasets

    from dynbatch_ext.bench import reviews

    texts, labels = _reviews(200)
    tokenizer = reviews.character_tokenizer(texts, 512)
    model = reviews.small_bert(tokenizer.vocab_size, hidden=16, layers=1, heads=2, max_tokens=512, seed=0)
    rows = {"text": texts, "labels": labels}
    return {"tokenizer": tokenizer, "model": model,
            "train": datasets.Dataset.from_dict({k: v[:160] for k, v in rows.items()}),
            "valid": datasets.Dataset.from_dict({k: v[160:] for k, v in rows.items()})}  # fmt: skip


def calibrate() -> dict:
    """The HF setup's tokenized training set, with an optimizer for its model."""
    names = hf()
    names["train"] = names["train"].map(
        lambda rows: names["tokenizer"](rows["text"], truncation=True, max_length=512, return_length=True),
        batched=True)  # fmt: skip
    names["optimizer"] = torch.optim.AdamW(names["model"].parameters(), lr=5e-4)
    return names


def lightning() -> dict:
    rng = np.random.default_rng(0)
    train_set = [{"input_ids": rng.integers(1, 1000, int(n)).tolist(), "labels": int(rng.integers(0, 2))}
                 for n in rng.integers(1, 300, 160)]  # fmt: skip
    return {"train_set": train_set, "lengths": [len(r["input_ids"]) for r in train_set],
            "pad_collate": _lightning_collate}


def accelerate() -> dict:
    names = texts()
    names["lengths"] = np.array([len(ids) for ids, _ in names["dataset"]])
    return names


def stream() -> dict:
    """Two CSV files with a header (text,label) in the working folder, and a tokenizer."""
    import csv

    from dynbatch_ext.bench import reviews

    texts, labels = _reviews(120, seed=1)
    for k in range(2):
        with Path(f"reviews-{k}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(zip(texts[k::2], labels[k::2]))
    return {"tokenizer": reviews.character_tokenizer(texts, 512)}


def esim() -> dict:
    generator = torch.Generator().manual_seed(0)
    lengths_p, lengths_h = torch.tensor([7, 3, 5]), torch.tensor([4, 6, 1])
    return {"vocab_size": 100,
            "premise": torch.randint(2, 100, (3, 7), generator=generator), "premise_lengths": lengths_p,
            "hypothesis": torch.randint(2, 100, (3, 6), generator=generator), "hypothesis_lengths": lengths_h}  # fmt: skip


def ops() -> dict:
    generator = torch.Generator().manual_seed(0)
    return {"a": torch.randn(3, 7, 600, generator=generator), "b": torch.randn(3, 5, 600, generator=generator),
            "len_a": torch.tensor([7, 2, 0]), "len_b": torch.tensor([5, 5, 3])}  # fmt: skip


SETUPS = {"plain": dict, "texts": texts, "hf": hf, "calibrate": calibrate, "lightning": lightning,
          "accelerate": accelerate, "stream": stream, "esim": esim, "ops": ops}  # fmt: skip
