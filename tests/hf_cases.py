"""A tiny BERT classifier, a datasets.Dataset of ragged token ids, and BudgetTrainers over them:
shared by tests/test_integration_hf.py and the script it runs under torchrun."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")

from dynbatch_ext.integrations.hf import BudgetTrainer  # noqa: E402
from dynbatch_ext.integrations.step_loader import StepBatches, StepCollator  # noqa: E402

VOCAB = 40


def tiny_bert(seed: int = 0, dropout: float = 0.0):
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout, num_labels=2, attn_implementation="eager",
    )  # fmt: skip
    return transformers.BertForSequenceClassification(config).double()


def ragged_dataset(n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 40, size=n)
    ids = [rng.integers(1, VOCAB, size=int(length)).tolist() for length in lengths]
    return datasets.Dataset.from_dict({"input_ids": ids, "labels": rng.integers(0, 2, n).tolist(),
                                       "length": lengths.tolist()})  # fmt: skip


def pad_collate(rows):
    longest = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros(len(rows), longest, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row["input_ids"])] = torch.as_tensor(row["input_ids"])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(),
            "labels": torch.as_tensor([r["labels"] for r in rows])}  # fmt: skip


def arguments(out_dir, **overrides):
    settings = dict(output_dir=str(out_dir), num_train_epochs=2, learning_rate=0.05,
                    lr_scheduler_type="constant", optim="sgd", report_to=[], save_strategy="no",
                    logging_strategy="no", use_cpu=True, seed=0, disable_tqdm=True,
                    per_device_train_batch_size=1)  # fmt: skip
    return transformers.TrainingArguments(**{**settings, **overrides})


PLAN_ARGUMENTS = ("budget", "cost", "step_target", "plan_options", "composition", "pool_steps")


def trainer(out_dir, model=None, dataset=None, **overrides):
    plan = dict(budget=200, cost="tokens", step_target=12)
    plan.update({k: overrides.pop(k) for k in list(overrides) if k in PLAN_ARGUMENTS})
    return BudgetTrainer(model=model if model is not None else tiny_bert(), args=arguments(out_dir, **overrides),
                         train_dataset=dataset if dataset is not None else ragged_dataset(),
                         data_collator=pad_collate, **plan)  # fmt: skip


class GradientsPerStep(transformers.TrainerCallback):
    """Copies the gradients just before every optimizer step."""

    def __init__(self):
        self.gradients = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.gradients.append({n: p.grad.detach().clone() for n, p in model.named_parameters()
                               if p.grad is not None})  # fmt: skip


def big_batch_gradients(model, dataset, indices) -> dict:
    """The gradient of the mean loss over `indices` as one batch."""
    model = copy.deepcopy(model)
    model.zero_grad()
    batch = pad_collate([dataset[int(i)] for i in indices])
    model(**batch).loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def record_steps(monkeypatch=None):
    """Every step the training DataLoader is handed, as a list of micro-batch index lists."""
    seen = []
    original = StepBatches.__iter__

    def recording(self):
        for keys in original(self):
            step: dict[int, list] = {}
            for k, i in keys:
                step.setdefault(k, []).append(i)
            seen.append([step[k] for k in sorted(step)])
            yield keys

    if monkeypatch is not None:
        monkeypatch.setattr(StepBatches, "__iter__", recording)
    else:
        StepBatches.__iter__ = recording
    return seen


def record_trained(monkeypatch=None) -> list:
    """Every step whose samples were loaded (what the Trainer trains: a step it skips on resume
    is never collated), as a list of micro-batch index lists."""
    seen = []
    original = StepCollator.__call__

    def recording(self, tagged):
        step: dict[int, list] = {}
        for k, index, _ in tagged:
            step.setdefault(k, []).append(index)
        seen.append([step[k] for k in sorted(step)])
        return original(self, tagged)

    if monkeypatch is not None:
        monkeypatch.setattr(StepCollator, "__call__", recording)
    else:
        StepCollator.__call__ = recording
    return seen
