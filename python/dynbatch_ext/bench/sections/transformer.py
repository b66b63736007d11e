"""Transformer training: the experiment this project grew from, reproduced and beaten.

A small BERT classifier (HF `BertForSequenceClassification`, random configuration, eager
attention) learns the sentiment of ChnSentiCorp hotel reviews, one token per character (a
long-tailed synthetic stand-in where the file is absent), through the HF Trainer, three ways
from the same initial weights and the same held-out 20%:
  (a) fixed 20, random        the seed's baseline: batches of 20 in random order, each padded
                              to its longest review
  (b) the seed's loader       its dynamic batches (seed_experiment_loader.py: DatasetForDBL, exactly, with
                              its real-data runs' settings), a batch per optimizer step, its
                              controller scaled so that its batch at our longest length fits the
                              budget of (c)
  (c) dynbatch_ext            BudgetTrainer: micro-batches within the budget under the quadratic
                              cost, grouped into optimizer steps of 20 reviews (the default
                              composition, "pooled"), exact loss weights
Measured: training samples/s (training steps only), accuracy on the held-out reviews, samples
per step, micro-batches over the budget, the loss per step, and peak memory per step.

Peak memory is measured as calibrate measures it: the step's peak tensor memory from the
profiler's allocation records, plus the fixed memory (weights, gradients, optimizer state). The
profiler slows a step, so it is not run while timing: afterwards, each run's steps at the
smallest, median and largest cost (`B * L**2` of its costliest micro-batch) and at the fewest and
most tokens (`B * L`: the linear part of memory) are replayed on a copy of the initial model with
batches of their shapes. Max and min are taken over those, the median is the median-cost step's.
"""
from __future__ import annotations

import copy
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ...batching import plan_batches
from ...batching.memory import live_bytes_after, peak_bytes
from ...plotting import MissingExtra
from ...training.metrics import smooth
from .. import figures, reviews
from ..seed_experiment_loader import seed_dynamic_batches
from ..context import RunContext, Section
from ..targets import target, target_line

FIXED, SEED, OURS = RUNS = ("(a) fixed 20, random", "(b) the seed's dynamic loader",
                            "(c) dynbatch_ext: budgeted, steps of 20")  # fmt: skip
SEED_BATCH = 20  # the seed's fixed batch, and (c)'s step target
# Reviews (None: all), model size and epochs of each mode. Reviews are cut at max_tokens.
SIZES = {
    "tiny": dict(reviews=160, hidden=16, layers=1, heads=2, max_tokens=128, epochs=1),
    "quick": dict(reviews=1000, hidden=128, layers=2, heads=2, max_tokens=512, epochs=1),
    "full": dict(reviews=None, hidden=128, layers=2, heads=2, max_tokens=512, epochs=1),
}
LEARNING_RATE = 5e-4
SPEEDUP_TARGET = 4.0  # (c) over (a), samples/s
# Accuracy is judged over paired seeds by the step-composition study (one run's difference moves
# by about 1.5 points from seed to seed); the memory target is that no micro-batch exceeds the
# budget (steps of 20 short reviews need less memory than steps of 20 long ones, by design).
STUDY = "python -m dynbatch_ext.bench.step_composition (README: Does it learn the same?)"


def budget_for(max_tokens: int) -> int:
    """16 reviews of half the longest length, under B * L**2 (the bench's single-text budget)."""
    return 16 * (max_tokens // 2) ** 2


def _imports():
    try:
        import datasets  # noqa: F401
        import transformers
    except ImportError as error:
        raise MissingExtra(f"bench's transformer section needs transformers and datasets ({error}): "
                           "pip install 'dynbatch_ext[hf]', or leave the section out (--sections "
                           "batching ops training calibration)") from None  # fmt: skip
    return transformers


def check_available(context: RunContext | None = None) -> None:
    """Fails now, not after the sections before it, where the hf extra is missing."""
    _imports()


class _StepLog:
    """Each optimizer step's samples, micro-batch shapes (B, padded L), mean loss and end time."""

    def __init__(self):
        self.start = None
        self.samples, self.shapes, self.losses, self.seconds = [], [], [], []

    def record(self, micro_batches: list[dict], loss: float) -> None:
        self.shapes.append([tuple(mb["input_ids"].shape) for mb in micro_batches])
        self.samples.append(sum(len(mb["labels"]) for mb in micro_batches))
        self.losses.append(loss)


def _trainer_classes(transformers):
    from ...integrations.hf import BudgetTrainer

    class Logged:
        """Records each step in `step_log` (the loss training_step returns: the step's mean)."""

        step_log: _StepLog

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            self.step_log.record(inputs if isinstance(inputs, list) else [inputs], float(loss))
            return loss

    class SeedLoaderTrainer(transformers.Trainer):
        """The Trainer on the seed's batches, a batch per optimizer step."""

        def __init__(self, *args, lengths, controller, **kwargs):
            super().__init__(*args, **kwargs)
            self.batches = _SeedBatches(lengths, controller, self.args.seed)

        def get_train_dataloader(self):
            dataset = self._remove_unused_columns(self.train_dataset, description="Training")
            return torch.utils.data.DataLoader(dataset, batch_sampler=self.batches,
                                               collate_fn=self.data_collator)  # fmt: skip

    return {FIXED: type("Fixed", (Logged, transformers.Trainer), {}),
            SEED: type("Seed", (Logged, SeedLoaderTrainer), {}),
            OURS: type("Ours", (Logged, BudgetTrainer), {})}  # fmt: skip


class _SeedBatches(torch.utils.data.Sampler):
    def __init__(self, lengths, controller: float, seed: int):
        self.lengths, self.controller, self.seed = lengths, controller, seed
        self.batches = seed_dynamic_batches(lengths, controller, seed)

    def set_epoch(self, epoch: int) -> None:
        self.batches = seed_dynamic_batches(self.lengths, self.controller, self.seed + epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            yield batch.tolist()


def _step_timer(transformers, log: _StepLog, progress):
    class StepTimer(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            progress.total = (progress.total or 0) + state.max_steps
            progress.refresh()
            log.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            log.seconds.append(time.perf_counter() - log.start)
            progress.update()

    return StepTimer()


def held_out_accuracy(model, dataset, collate, budget: int) -> float:
    """Accuracy on `dataset`, in batches within the budget (evaluation needs no fixed batch)."""
    model.eval()
    lengths = np.asarray(dataset["length"])
    rows = dataset.remove_columns("length")
    correct = 0
    with torch.no_grad():
        for batch in plan_batches(lengths, budget, cost="quadratic", shuffle=False):
            inputs = collate([rows[int(i)] for i in batch])
            labels = inputs.pop("labels")
            correct += int((model(**inputs).logits.argmax(-1) == labels).sum())
    return correct / len(dataset)


def _memory_meter(initial_model, vocab_size: int):
    """measure(micro-batch shapes) -> peak bytes of one optimizer step on batches of those
    shapes, fixed memory included, on a copy of `initial_model` (as calibrate measures)."""
    model = copy.deepcopy(initial_model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(0)

    def step(shapes):
        for batch, length in shapes:
            ids = torch.randint(len(reviews.SPECIAL_TOKENS), vocab_size, (batch, length), generator=generator)
            model(input_ids=ids, attention_mask=torch.ones_like(ids),
                  labels=torch.randint(0, 2, (batch,), generator=generator)).loss.backward()  # fmt: skip
        optimizer.step()
        optimizer.zero_grad()

    owned = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    fixed = owned + live_bytes_after(lambda: step([(2, 8)]))  # gradients, optimizer state
    return lambda shapes: fixed + peak_bytes(lambda: step(shapes), torch.device("cpu"))


def _peak_memory(log: _StepLog, measure) -> dict:
    costs = np.array([max(b * length**2 for b, length in step) for step in log.shapes])
    tokens = np.array([max(b * length for b, length in step) for step in log.shapes])
    by_cost = np.argsort(costs, kind="stable")
    picked = {"min": int(by_cost[0]), "median": int(by_cost[(len(by_cost) - 1) // 2]),
              "max": int(by_cost[-1]), "fewest tokens": int(np.argmin(tokens)),
              "most tokens": int(np.argmax(tokens))}  # fmt: skip
    peaks = {name: float(measure(log.shapes[k])) for name, k in picked.items()}
    return {"max": max(peaks.values()), "median": peaks["median"], "min": min(peaks.values()),
            "measured_steps": {name: {"step": picked[name], "shapes": log.shapes[picked[name]],
                                      "peak_bytes": peaks[name]} for name in picked}}  # fmt: skip


def _summary(log: _StepLog, accuracy: float, budget: int, peak: dict) -> dict:
    shapes = [s for step in log.shapes for s in step]
    sizes = np.array(log.samples)
    return {
        "samples_per_second": float(sizes.sum() / log.seconds[-1]),
        "accuracy": accuracy,
        "steps": len(sizes),
        "micro_batches": len(shapes),
        "samples_per_step": {"min": int(sizes.min()), "median": float(np.median(sizes)),
                             "max": int(sizes.max())},  # fmt: skip
        "over_budget": sum(b * length**2 > budget for b, length in shapes),
        "cost_max_over_budget": max(b * length**2 for b, length in shapes) / budget,
        "peak_memory_bytes": peak,
        "loss_per_step": log.losses,
        "samples_per_step_all": sizes.astype(int).tolist(),
        "seconds_at_step_end": log.seconds,
    }


@dataclasses.dataclass
class Workload:
    """The section's data, tokenizer, initial model and each way's Trainer arguments."""

    size: dict
    source: str
    train_set: object  # datasets.Dataset with input_ids, labels, length
    valid_set: object
    held_out_reviews: int
    tokenizer: object
    collate: object
    initial: torch.nn.Module
    budget: int
    controller: float
    settings: dict  # way of training -> its Trainer's keyword arguments


def prepare(data_dir: Path | None, size: dict, seed: int) -> Workload:
    """Reviews split 80/20 at random by `seed`, a character tokenizer from the training text,
    and the initial BERT that every way of training starts from."""
    transformers = _imports()
    max_tokens, budget = size["max_tokens"], budget_for(size["max_tokens"])
    data = reviews.load_reviews(data_dir, size["reviews"], seed)
    order = np.random.default_rng(seed).permutation(len(data.texts))
    held_out, training = np.sort(order[: len(order) // 5]), np.sort(order[len(order) // 5 :])
    train_texts = [data.texts[k] for k in training]
    tokenizer = reviews.character_tokenizer(train_texts, max_tokens)
    train_set = reviews.tokenized(tokenizer, train_texts, data.labels[training], max_tokens)
    valid_set = reviews.tokenized(tokenizer, [data.texts[k] for k in held_out],
                                  data.labels[held_out], max_tokens)  # fmt: skip
    # The seed's controller (5,000 for bert-base-chinese on a GPU) scaled to this model's budget:
    # its limit at our longest length, controller / max_tokens, is what the budget allows there.
    controller = budget / max_tokens
    settings = {
        FIXED: dict(train_dataset=train_set),
        SEED: dict(train_dataset=train_set, lengths=np.asarray(train_set["length"]), controller=controller),
        OURS: dict(train_dataset=train_set, budget=budget, cost="quadratic", step_target=SEED_BATCH),
    }  # fmt: skip
    initial = reviews.small_bert(tokenizer.vocab_size, size["hidden"], size["layers"],
                                 size["heads"], max_tokens, seed)  # fmt: skip
    return Workload(size, data.source, train_set, valid_set, len(held_out), tokenizer,
                    transformers.DataCollatorWithPadding(tokenizer), initial, budget, controller,
                    settings)  # fmt: skip


def make_trainer(workload: Workload, name: str, output_dir: str, seed: int):
    """Way `name`'s Trainer on a copy of the initial model, logging each step to `.step_log`."""
    transformers = _imports()
    args = transformers.TrainingArguments(
        output_dir=output_dir, num_train_epochs=workload.size["epochs"], learning_rate=LEARNING_RATE,
        per_device_train_batch_size=SEED_BATCH, save_strategy="no", eval_strategy="no",
        logging_strategy="no", report_to=[], use_cpu=True, seed=seed, disable_tqdm=True,
        dataloader_num_workers=0,
    )  # fmt: skip
    trainer = _trainer_classes(transformers)[name](
        model=copy.deepcopy(workload.initial), args=args, data_collator=workload.collate,
        **workload.settings[name])
    trainer.remove_callback(transformers.PrinterCallback)  # its end-of-training line
    trainer.step_log = _StepLog()
    return trainer


def run(context: RunContext, seed: int = 0) -> dict:
    """(a), (b) and (c) through the HF Trainer on the CPU, whatever the context's device."""
    transformers = _imports()
    progress, out_dir = context.progress, context.out_dir
    work = prepare(context.data_dir, SIZES[context.mode], seed)
    size, budget, valid_set, collate = work.size, work.budget, work.valid_set, work.collate
    progress.reset(total=0)
    logs, accuracies = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in RUNS:
            progress.set_description(f"transformer: {name}")
            trainer = make_trainer(work, name, scratch, seed)
            log = logs[name] = trainer.step_log
            trainer.add_callback(_step_timer(transformers, log, progress))
            trainer.train()
            accuracies[name] = held_out_accuracy(trainer.model, valid_set, collate, budget)
    progress.set_description("transformer: peak memory per step")
    measure = _memory_meter(work.initial, work.tokenizer.vocab_size)
    summaries = {name: _summary(logs[name], accuracies[name], budget, _peak_memory(logs[name], measure))
                 for name in RUNS}  # fmt: skip
    ours, fixed = summaries[OURS], summaries[FIXED]
    targets = {
        "samples/s (c)/(a)": target(ours["samples_per_second"] / fixed["samples_per_second"],
                                    ">=", SPEEDUP_TARGET),  # fmt: skip
        "micro-batches of (c) over the budget": target(ours["over_budget"], "==", 0),
    }
    lengths = np.asarray(work.train_set["length"])
    max_tokens, controller = size["max_tokens"], work.controller
    plot = _plot(summaries, work.source, out_dir / "transformer.png")
    return {
        "data": work.source, "train_reviews": len(lengths), "held_out_reviews": work.held_out_reviews,
        "seed_experiment_loader_controller": controller, "vocab_size": work.tokenizer.vocab_size,
        "model": {k: size[k] for k in ("hidden", "layers", "heads", "max_tokens")},
        "epochs": size["epochs"], "budget": budget, "learning_rate": LEARNING_RATE,
        "train_lengths": {"median": float(np.median(lengths)), "max": int(lengths.max()),
                          "cut": int((lengths >= max_tokens).sum())},
        "runs": summaries, "targets": targets, "plots": [plot.name],
        "accuracy_difference": ours["accuracy"] - fixed["accuracy"],
        "notes": [f"(b): DatasetForDBL at controller {controller:g}; its batches' cost over the "
                  f"budget of (c): {_seed_overshoot(summaries[SEED], budget)}",
                  f"accuracy (c)-(a) in this run: {100 * (ours['accuracy'] - fixed['accuracy']):+.1f} "
                  f"points, one seed; over paired seeds: {STUDY}",
                  "throughput counts training steps only; every run starts from the same "
                  "weights and sees the same reviews"],
    }  # fmt: skip


def _seed_overshoot(run: dict, budget: int) -> str:
    return (f"{run['over_budget']} of {run['micro_batches']} batches over it, the costliest "
            f"{run['cost_max_over_budget']:.2f}x")


def _plot(summaries: dict, source: str, path: Path) -> Path:
    plt = figures.pyplot()

    colours = dict(zip(RUNS, ("tab:gray", "tab:red", "tab:blue")))
    fig, (by_samples, by_seconds) = plt.subplots(1, 2, figsize=(14, 4.5))
    for name, run in summaries.items():
        losses = run["loss_per_step"]
        trend = smooth(losses, 20)
        label = f"{name}: {run['samples_per_second']:.0f} samples/s, accuracy {run['accuracy']:.3f}"
        for ax, x in ((by_samples, np.cumsum(run["samples_per_step_all"])),
                      (by_seconds, run["seconds_at_step_end"])):  # fmt: skip
            ax.plot(x, losses, color=colours[name], alpha=0.15, linewidth=0.7)
            ax.plot(x, trend, color=colours[name], label=label)
    by_samples.set(xlabel="training reviews seen", ylabel="training loss per step",
                   title=f"{source}: loss against reviews seen (EMA 20; raw faint)")  # fmt: skip
    by_seconds.set(xlabel="seconds of training", ylabel="training loss per step",
                   title="loss against wall-clock time")  # fmt: skip
    for ax in (by_samples, by_seconds):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return figures.save(fig, path)


def table(section: dict) -> str:
    """The section's results as a text table, printed when it ends."""
    model = section["model"]
    lines = [
        f"Transformer training (the seed experiment): {section['data']}, "
        f"{section['train_reviews']:,} training / {section['held_out_reviews']:,} held-out reviews, "
        f"BERT {model['layers']} layers x {model['hidden']}, cut at {model['max_tokens']} tokens, "
        f"{section['epochs']} epoch(s), budget {section['budget']:,} (B*L**2)",
        f"  {'way of training':<42}{'samples/s':>10}{'accuracy':>10}{'steps':>7}"
        f"{'samples/step min-med-max':>26}{'over budget':>13}{'peak MiB max/med/min':>23}",
    ]
    for name, r in section["runs"].items():
        per, peak = r["samples_per_step"], r["peak_memory_bytes"]
        spread = f"{per['min']}-{per['median']:.0f}-{per['max']}"
        peaks = "/".join(f"{peak[k] / 2**20:.0f}" for k in ("max", "median", "min"))
        over = f"{r['over_budget']}/{r['micro_batches']}"
        lines.append(f"  {name:<42}{r['samples_per_second']:>10.0f}{r['accuracy']:>10.3f}"
                     f"{r['steps']:>7}{spread:>26}{over:>13}{peaks:>23}")  # fmt: skip
    lines += [target_line(name, t, 2) for name, t in section["targets"].items()]
    lines += [f"note: {n}" for n in section["notes"]]
    return "\n".join(lines) + "\n"


SECTION = Section("transformer", run, table, check=check_available)
