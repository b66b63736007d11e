"""A tiny float64 classifier trained by Lightning on BudgetDataModule's steps: shared by
tests/test_integration_lightning.py and the script it runs under torchrun."""
from __future__ import annotations

import numpy as np
import pytest
import torch

L = pytest.importorskip("lightning")

from dynbatch_ext.integrations.lightning import BudgetDataModule, BudgetedSteps  # noqa: E402

VOCAB = 30


def ragged_samples(n: int = 120, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"index": i, "input_ids": rng.integers(1, VOCAB, size=int(rng.integers(1, 30))).tolist(),
             "labels": int(rng.integers(0, 2))} for i in range(n)]  # fmt: skip


def pad(rows: list[dict]) -> dict:
    longest = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros(len(rows), longest, dtype=torch.long)
    for k, row in enumerate(rows):
        ids[k, : len(row["input_ids"])] = torch.as_tensor(row["input_ids"])
    return {"input_ids": ids, "labels": torch.as_tensor([r["labels"] for r in rows]),
            "index": torch.as_tensor([r["index"] for r in rows])}  # fmt: skip


class Classifier(BudgetedSteps, L.LightningModule):
    """Mean of token embeddings, then a tanh layer: its loss is not linear in the batch."""

    def __init__(self, lr: float = 0.1, seed: int = 0, dropout: float = 0.0):
        super().__init__()
        torch.manual_seed(seed)
        self.embedding = torch.nn.Embedding(VOCAB, 8, padding_idx=0).double()
        self.head = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Dropout(dropout),
                                        torch.nn.Linear(8, 2)).double()  # fmt: skip
        self.lr = lr
        self.steps: list[list[list[int]]] = []  # the sample indices of every step's micro-batches
        self.gradients: list[dict] = []

    def loss_of(self, batch) -> torch.Tensor:
        mask = (batch["input_ids"] != 0).double()[..., None]
        pooled = (self.embedding(batch["input_ids"]) * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.cross_entropy(self.head(pooled), batch["labels"])

    def micro_batch_loss(self, batch) -> torch.Tensor:
        return self.loss_of(batch)

    def micro_batch_count(self, batch) -> float:
        return float(len(batch["labels"]))

    def training_step(self, micro_batches, batch_idx):
        self.steps.append([mb["index"].tolist() for mb in micro_batches])
        return super().training_step(micro_batches, batch_idx)

    def on_before_optimizer_step(self, optimizer):
        self.gradients.append({n: p.grad.detach().clone() for n, p in self.named_parameters() if p.grad is not None})

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def big_batch_gradients(samples: list[dict], indices, seed: int = 0) -> dict:
    model = Classifier(seed=seed)
    model.loss_of(pad([samples[i] for i in indices])).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def data_module(samples, **options) -> BudgetDataModule:
    settings = dict(budget=120, cost="tokens", step_target=12, collate_fn=pad)
    settings.update(options)
    lengths = [len(s["input_ids"]) for s in samples]
    return BudgetDataModule(samples, lengths, settings.pop("budget"), **settings)


def trainer(**overrides):
    settings = dict(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)  # fmt: skip
    return L.Trainer(**{**settings, **overrides})
