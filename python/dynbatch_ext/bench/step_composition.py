"""Does it learn the same? The step-composition study, over paired seeds.

    python -m dynbatch_ext.bench.step_composition --seeds 8 --jobs 2 --out bench-results/study

Trains the seed experiment's workload (the transformer section's: a small BERT from a random
configuration on ChnSentiCorp reviews, characters as tokens, 20% held out) every way at once for
each seed, where a seed fixes the held-out split and the initial weights that every way shares:
  HF Trainer    fixed batches of 20 (the Trainer's own random sampler), BudgetTrainer with steps
                of 20 composed "random", "pooled" and "sorted", and the Trainer's own
                train_sampling_strategy "group_by_length" and "batch_rebalance" (steps of 20 in
                as many micro-batches as ours take on average)
  plain loop    the same model, optimizer (torch AdamW), linear schedule and clipping (1.0) as the
                Trainer, on fixed batches of 20 cut from `epoch_order` (so that "fixed" and
                "random" hold exactly the same samples in every step) and on plan_steps' steps
and ESIM on SNLI dev through train-esim's loop (fixed 32 against steps of 32 of each
composition, the same fused model and padding-free LSTMs). A second regime trains the
transformer at scale: steps of 256 (the learning rate scaled by sqrt(256 / 20)) against the
Trainer at the same effective batch (the largest fixed per-device batch whose longest reviews fit
the budget, times gradient accumulation).

Per way: held-out accuracy (mean, spread), the paired difference to the fixed baseline of its
path with a 95% t-interval, samples/s against that baseline (median of the seeds' ratios),
padding efficiency, micro-batches per step, the costliest micro-batch against the budget, and the
loss curves (study.png). Each finished run is kept in OUT/runs/ and not run again, so a study can
be stopped and continued; `--report` only aggregates what is there.

Not part of `bench`'s default run: a full study takes hours on 2 cores.
"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import corpora, plan_steps
from ..batching.steps import epoch_order
from . import environment, figures, reviews
from .sections.transformer import LEARNING_RATE, SEED_BATCH, SIZES, budget_for, held_out_accuracy

HF_WAYS = ("fixed", "random", "pooled", "sorted", "group_by_length", "batch_rebalance")
LOOP_WAYS = ("fixed", "random", "pooled", "sorted")
COMPOSITIONS = ("random", "pooled", "sorted")
REGIMES = {  # samples per optimizer step, epochs, learning rate
    "steps of 20": dict(step=SEED_BATCH, epochs=1, lr=LEARNING_RATE),
    "steps of 256": dict(step=256, epochs=3, lr=LEARNING_RATE * math.sqrt(256 / SEED_BATCH)),
}
ESIM = dict(dims=128, epochs=2, step=32)
MAX_GRAD_NORM = 1.0  # the Trainer's default, reproduced in the plain loop
ACCURACY_INTERVAL_FLOOR = -0.01  # the 95% interval of (way - fixed) must lie above -1 point
ACCURACY_MEAN_FLOOR = -0.003  # and its mean at least -0.3 points


# --- the transformer workload ---------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _reviews_workload(seed: int, data_dir: str | None, mode: str):
    """(train set, held-out set, tokenizer, collate, initial model) of a seed: its own split and
    initial weights, shared by every way."""
    import transformers

    size = SIZES[mode]
    data = reviews.load_reviews(Path(data_dir) if data_dir else None, size["reviews"], seed)
    order = np.random.default_rng(seed).permutation(len(data.texts))
    held_out, training = np.sort(order[: len(order) // 5]), np.sort(order[len(order) // 5:])
    texts = [data.texts[k] for k in training]
    tokenizer = reviews.character_tokenizer(texts, size["max_tokens"])
    train_set = reviews.tokenized(tokenizer, texts, data.labels[training], size["max_tokens"])
    valid_set = reviews.tokenized(tokenizer, [data.texts[k] for k in held_out], data.labels[held_out],
                                  size["max_tokens"])  # fmt: skip
    initial = reviews.small_bert(tokenizer.vocab_size, size["hidden"], size["layers"], size["heads"],
                                 size["max_tokens"], seed)  # fmt: skip
    return train_set, valid_set, tokenizer, transformers.DataCollatorWithPadding(tokenizer), initial, data.source


class _Record:
    """Each optimizer step: its loss (sample-weighted over its micro-batches), samples and end
    time; every micro-batch's shape and real tokens."""

    def __init__(self):
        self.start = None
        self.steps, self.shapes, self.tokens = [], [], []
        self._pending = []  # (loss, samples) of the step's micro-batches so far

    def micro_batch(self, batch: dict, loss: float) -> None:
        ids = batch["input_ids"]
        self.shapes.append(tuple(ids.shape))
        self.tokens.append(int(batch["attention_mask"].sum()))
        self._pending.append((loss, len(ids)))

    def end_step(self) -> None:
        samples = sum(n for _, n in self._pending)
        loss = sum(l * n for l, n in self._pending) / max(samples, 1)
        self.steps.append((loss, samples, time.perf_counter() - self.start))
        self._pending = []

    def summary(self, accuracy: float, budget: float) -> dict:
        losses, samples, seconds = (list(v) for v in zip(*self.steps))
        padded = sum(b * length for b, length in self.shapes)
        return {
            "accuracy": accuracy,
            "samples_per_second": sum(samples) / seconds[-1],
            "train_seconds": seconds[-1],
            "steps": len(samples),
            "micro_batches_per_step": len(self.shapes) / len(samples),
            "padding_efficiency": sum(self.tokens) / padded,
            "cost_max_over_budget": max(b * length**2 for b, length in self.shapes) / budget,
            "loss_per_step": losses, "samples_per_step": samples, "seconds_at_step_end": seconds,
        }  # fmt: skip


def _hf_run(way: str, regime: dict, seed: int, data_dir: str | None, batch_rebalance_accum: int,
            mode: str) -> dict:  # fmt: skip
    import transformers

    from ..integrations.hf import BudgetTrainer

    train_set, valid_set, tokenizer, collate, initial, _ = _reviews_workload(seed, data_dir, mode)
    budget = budget_for(SIZES[mode]["max_tokens"])
    record = _Record()

    class Recorded:
        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            batches = inputs if isinstance(inputs, list) else [inputs]
            if isinstance(inputs, list):  # BudgetTrainer: the step's mean loss
                for batch in batches:
                    record.micro_batch(batch, float(loss))
                return loss
            # The Trainer divides a micro-batch's loss by the accumulation steps unless it takes
            # the model to have normalised it by the window's items (a model whose forward takes
            # **kwargs, as BERT's does: its classification loss is still the micro-batch's mean,
            # so it is then returned, and back-propagated, undivided).
            scaled = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or (
                self.compute_loss_func is not None)  # fmt: skip
            divisor = 1 if scaled else self.current_gradient_accumulation_steps
            record.micro_batch(inputs, float(loss) * divisor)
            return loss

    class Timer(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            record.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            record.end_step()

    step, per_device, accumulation = regime["step"], regime["step"], 1
    extra, trainer_class = {}, type("Recorded", (Recorded, transformers.Trainer), {})
    if way in COMPOSITIONS:
        trainer_class = type("Recorded", (Recorded, BudgetTrainer), {})
        extra = dict(budget=budget, cost="quadratic", step_target=step, composition=way)
    elif step > SEED_BATCH:  # at scale: the largest fixed batch whose longest reviews fit the budget
        per_device = budget // SIZES[mode]["max_tokens"] ** 2
        accumulation = step // per_device
    if way == "batch_rebalance":
        accumulation = batch_rebalance_accum
        per_device = step // accumulation
    with tempfile.TemporaryDirectory() as scratch:
        args = transformers.TrainingArguments(
            output_dir=scratch, num_train_epochs=regime["epochs"], learning_rate=regime["lr"],
            per_device_train_batch_size=per_device, gradient_accumulation_steps=accumulation,
            train_sampling_strategy={"group_by_length": "group_by_length",
                                     "batch_rebalance": "batch_rebalance"}.get(way, "random"),
            save_strategy="no", eval_strategy="no", logging_strategy="no", report_to=[],
            use_cpu=True, seed=seed, disable_tqdm=True, dataloader_num_workers=0,
        )  # fmt: skip
        trainer = trainer_class(model=copy.deepcopy(initial), args=args, train_dataset=train_set,
                                data_collator=collate, callbacks=[Timer()], **extra)  # fmt: skip
        trainer.remove_callback(transformers.PrinterCallback)
        trainer.train()
    return record.summary(held_out_accuracy(trainer.model, valid_set, collate, budget), budget)


def _linear_schedule(optimizer, total_steps: int):
    # The Trainer's default: linear decay to 0, no warm-up.
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: max(0.0, 1 - k / total_steps))


def _loop_run(way: str, regime: dict, seed: int, data_dir: str | None, mode: str) -> dict:
    from .. import micro_batch_weights

    train_set, valid_set, tokenizer, collate, initial, _ = _reviews_workload(seed, data_dir, mode)
    budget = budget_for(SIZES[mode]["max_tokens"])
    lengths = np.asarray(train_set["length"])
    rows = train_set.remove_columns("length")
    model = copy.deepcopy(initial).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=regime["lr"], weight_decay=0.0)
    epochs_steps = []
    for epoch in range(regime["epochs"]):
        if way == "fixed":  # the steps of "random", each padded whole
            order = epoch_order(len(lengths), epoch=epoch, seed=seed)
            steps = [[order[k:k + regime["step"]]] for k in range(0, len(order), regime["step"])]
        else:
            steps = plan_steps(lengths, budget, target=regime["step"], composition=way, epoch=epoch,
                               seed=seed, max_batch_size=regime["step"]).steps  # fmt: skip
        epochs_steps += steps
    scheduler = _linear_schedule(optimizer, len(epochs_steps))
    torch.manual_seed(seed)  # dropout
    record = _Record()
    record.start = time.perf_counter()
    for micro_batches in epochs_steps:
        counts = [len(mb) for mb in micro_batches]
        for mb, weight in zip(micro_batches, micro_batch_weights(counts)):
            batch = collate([rows[int(i)] for i in mb])
            loss = model(**batch).loss
            (loss * weight).backward()
            record.micro_batch(batch, loss.item())
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        record.end_step()
    return record.summary(held_out_accuracy(model, valid_set, collate, budget), budget)


# --- ESIM on SNLI -----------------------------------------------------------------------------


def _esim_run(way: str, seed: int, data_dir: str | None, mode: str) -> dict:
    from ..training import TrainConfig, train

    dims = ESIM["dims"] if mode == "full" else 8

    path = Path(data_dir) / corpora.SNLI_DEV if data_dir else None
    batching = dict(batching="fixed", batch_size=ESIM["step"]) if way == "fixed" else dict(
        batching="budget", step_target=float(ESIM["step"]), composition=way)  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        result = train(TrainConfig(
            train_file=str(path) if path is not None and path.is_file() else None, seed=seed,
            epochs=ESIM["epochs"], embedding_dim=dims, hidden_size=dims,
            synthetic_size=6000 if mode == "full" else 300,
            lstm="flipped", fused=True, out_dir=scratch, progress=False, plot=False,
            save_checkpoints=False, **batching))  # fmt: skip
    steps = [r for r in result.history if r["kind"] == "step"]
    micro = [r.get("micro_batches", 1) for r in steps]
    return {
        "accuracy": result.valid_accuracy, "samples_per_second": result.samples_per_second,
        "steps": len(steps), "micro_batches_per_step": float(np.mean(micro)),
        "padding_efficiency": sum(r["tokens"] for r in steps) / sum(r["padded_tokens"] for r in steps),
        "loss_per_step": [r["loss"] for r in steps], "samples_per_step": [r["samples"] for r in steps],
        "seconds_at_step_end": [r["seconds"] for r in steps],
    }  # fmt: skip


# --- running and aggregating ------------------------------------------------------------------


def _key(workload: str, path: str, regime: str, way: str, seed: int) -> str:
    return f"{workload}|{path}|{regime}|{way}|{seed}"


def _run_one(key: str, data_dir: str | None, threads: int, batch_rebalance_accum: int, mode: str) -> dict:
    torch.set_num_threads(threads)
    workload, path, regime, way, seed = key.split("|")
    seed = int(seed)
    if workload == "esim":
        return _esim_run(way, seed, data_dir, mode)
    if path == "hf":
        return _hf_run(way, REGIMES[regime], seed, data_dir, batch_rebalance_accum, mode)
    return _loop_run(way, REGIMES[regime], seed, data_dir, mode)


def _results(keys: list[str], options: tuple, jobs: int):
    """(key, result) of each run: in this process for one job; else in fresh processes (spawned:
    a fork of a process whose torch threads are running can deadlock)."""
    if jobs == 1:
        for key in keys:
            yield key, _run_one(key, *options)
        return
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run_one, key, *options): key for key in keys}
        for future in as_completed(futures):
            yield futures[future], future.result()


def planned_runs(workloads, paths, regimes, seeds: int, scale_seeds: int) -> list[str]:
    """Every run, the seed experiment's regime first (seed by seed), then ESIM, then the scale."""

    def transformer(regime: str) -> list[str]:
        if "transformer" not in workloads or regime not in regimes:
            return []
        return [_key("transformer", path, regime, way, seed)
                for seed in range(scale_seeds if regime == "steps of 256" else seeds)
                for path in paths for way in (HF_WAYS if path == "hf" else LOOP_WAYS)]  # fmt: skip

    esim = [_key("esim", "loop", "steps of 32", way, seed) for seed in range(seeds)
            for way in LOOP_WAYS] if "esim" in workloads else []  # fmt: skip
    return transformer("steps of 20") + esim + transformer("steps of 256")


# Student's t at 0.975 for 1..30 degrees of freedom (the usual table, to 4 decimals).
T_975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010,
         2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739,
         2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)  # fmt: skip


def _t975(df: int) -> float:
    if df <= len(T_975):
        return T_975[df - 1]
    z = 1.959964  # past 30: the Cornish-Fisher expansion, within 1e-3 of the table's values
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def _interval(differences: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t-interval of paired differences."""
    n = len(differences)
    mean = float(differences.mean())
    if n < 2:
        return mean, float("-inf"), float("inf")
    half = _t975(n - 1) * float(differences.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def aggregate(runs: dict[str, dict]) -> list[dict]:
    """One row per (workload, path, regime, way): over the seeds it has, against the fixed
    baseline of the same path on the same seeds."""
    groups: dict[tuple, dict[int, dict]] = {}
    for key, result in runs.items():
        workload, path, regime, way, seed = key.split("|")
        groups.setdefault((workload, path, regime, way), {})[int(seed)] = result
    rows = []
    for (workload, path, regime, way), by_seed in sorted(groups.items()):
        fixed = groups.get((workload, path, regime, "fixed"), {})
        seeds = sorted(s for s in by_seed if s in fixed)
        accuracy = np.array([by_seed[s]["accuracy"] for s in sorted(by_seed)])
        row = {"workload": workload, "path": path, "regime": regime, "way": way,
               "seeds": len(by_seed), "accuracy_mean": float(accuracy.mean()),
               "accuracy_std": float(accuracy.std(ddof=1)) if len(accuracy) > 1 else 0.0,
               "padding_efficiency": float(np.mean([r["padding_efficiency"] for r in by_seed.values()])),
               "micro_batches_per_step": float(np.mean([r["micro_batches_per_step"] for r in by_seed.values()]))}  # fmt: skip
        if "cost_max_over_budget" in next(iter(by_seed.values())):
            row["cost_max_over_budget"] = max(r["cost_max_over_budget"] for r in by_seed.values())
        if seeds and way != "fixed":
            differences = np.array([by_seed[s]["accuracy"] - fixed[s]["accuracy"] for s in seeds])
            mean, low, high = _interval(differences)
            ratios = [by_seed[s]["samples_per_second"] / fixed[s]["samples_per_second"] for s in seeds]
            row.update(paired_seeds=len(seeds), difference_mean=mean, difference_low=low,
                       difference_high=high, differences=differences.tolist(),
                       speed_over_fixed=float(np.median(ratios)), speed_ratios=ratios,
                       meets_accuracy=bool(low > ACCURACY_INTERVAL_FLOOR and mean >= ACCURACY_MEAN_FLOOR))  # fmt: skip
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = []
    for (workload, path, regime) in sorted({(r["workload"], r["path"], r["regime"]) for r in rows}):
        lines += [f"**{workload}, {'HF Trainer' if path == 'hf' else 'plain loop'}, {regime}**", "",
                  "| way | seeds | accuracy | vs fixed (95% interval) | samples/s vs fixed | padding efficiency | micro-batches / step | costliest / budget |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in rows:
            if (r["workload"], r["path"], r["regime"]) != (workload, path, regime):
                continue
            versus = (f"{100 * r['difference_mean']:+.2f} pt ({100 * r['difference_low']:+.2f}, "
                      f"{100 * r['difference_high']:+.2f})" if "difference_mean" in r else "")  # fmt: skip
            speed = f"{r['speed_over_fixed']:.2f}x" if "speed_over_fixed" in r else "1.00x"
            cost = f"{r['cost_max_over_budget']:.2f}" if "cost_max_over_budget" in r else ""
            lines.append(f"| {r['way']} | {r['seeds']} | {r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} "
                         f"| {versus} | {speed} | {r['padding_efficiency']:.3f} | "
                         f"{r['micro_batches_per_step']:.2f} | {cost} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def plot(runs: dict[str, dict], rows: list[dict], out: Path) -> Path:
    plt = figures.pyplot()
    panels = sorted({(r["workload"], r["path"], r["regime"]) for r in rows})
    fig, axes = plt.subplots(len(panels), 3, figsize=(18, 4 * len(panels)), squeeze=False)
    ways = sorted({r["way"] for r in rows})
    color = {way: f"C{k % 10}" for k, way in enumerate(ways)}  # a way's color in every panel

    def speed(r: dict) -> float:
        return r.get("speed_over_fixed", 1.0)

    for (workload, path, regime), (by_samples, by_seconds, plane) in zip(panels, axes):
        for key, result in sorted(runs.items()):
            w, p, g, way, seed = key.split("|")
            if (w, p, g) != (workload, path, regime) or seed != "0":
                continue
            seen = np.cumsum(result["samples_per_step"])
            window = max(1, min(25, len(seen) // 4))
            trend = np.convolve(result["loss_per_step"], np.ones(window) / window, mode="valid")
            by_samples.plot(seen[window - 1:], trend, label=way, color=color[way])
            by_seconds.plot(result["seconds_at_step_end"][window - 1:], trend, label=way,
                            color=color[way])  # fmt: skip
        panel = sorted((r for r in rows if (r["workload"], r["path"], r["regime"]) == (workload, path, regime)),
                       key=speed)  # fmt: skip
        for k, r in enumerate(panel):  # labels above and below in turn: neighbours apart
            plane.errorbar(speed(r), r["accuracy_mean"], yerr=r["accuracy_std"], fmt="o", capsize=3,
                           color=color[r["way"]])  # fmt: skip
            plane.annotate(r["way"], (speed(r), r["accuracy_mean"]), fontsize=8,
                           xytext=(4, 4 if k % 2 == 0 else -11), textcoords="offset points")
        title = f"{workload}, {'HF Trainer' if path == 'hf' else 'plain loop'}, {regime}"
        by_samples.set(xlabel="samples seen", ylabel="training loss (moving mean)", title=f"{title}: seed 0")
        by_seconds.set(xlabel="seconds", title="against wall-clock time")
        plane.set(xlabel="samples/s over fixed (median of seeds)", ylabel="held-out accuracy (mean ± sd)",
                  title="speed against accuracy")  # fmt: skip
        for ax in (by_samples, by_seconds, plane):
            ax.grid(alpha=0.3)
        by_samples.legend(fontsize=8)
    return figures.save(fig, out / "study.png")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynbatch_ext.bench.step_composition",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench-results/step-composition"))
    parser.add_argument("--seeds", type=int, default=8, help="paired seeds (default 8)")
    parser.add_argument("--scale-seeds", type=int, default=3, help="seeds of the steps-of-256 regime")
    parser.add_argument("--workloads", nargs="+", choices=("transformer", "esim"), default=["transformer", "esim"])
    parser.add_argument("--paths", nargs="+", choices=("hf", "loop"), default=["hf", "loop"])
    parser.add_argument("--regimes", nargs="+", choices=tuple(REGIMES), default=list(REGIMES))
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run "
                        "(default: the cores over --jobs)")  # fmt: skip
    parser.add_argument("--batch-rebalance-accumulation", type=int, default=4,
                        help="batch_rebalance's micro-batches per step of 20 (default 4: ours' average)")
    parser.add_argument("--data-dir", type=Path, default=corpora.default_data_dir())
    parser.add_argument("--report", action="store_true", help="aggregate what OUT/runs holds, run nothing")
    parser.add_argument("--size", choices=tuple(SIZES), default="full",
                        help="the transformer section's sizes (tiny, quick: smoke tests only)")
    args = parser.parse_args(argv)
    store = args.out / "runs"
    store.mkdir(parents=True, exist_ok=True)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    data_dir = str(args.data_dir) if args.data_dir else None
    keys = planned_runs(args.workloads, args.paths, args.regimes, args.seeds, args.scale_seeds)
    file_of = {k: store / (k.replace("|", "__").replace(" ", "-") + ".json") for k in keys}
    todo = [] if args.report else [k for k in keys if not file_of[k].is_file()]
    options = (data_dir, threads, args.batch_rebalance_accumulation, args.size)
    with tqdm(total=len(todo), desc="study", unit="run", disable=None) as bar:
        for key, result in _results(todo, options, args.jobs):
            # How it ran, with it: a study continued later may run with other settings.
            file_of[key].write_text(json.dumps({"key": key, "threads": threads, "jobs": args.jobs,
                                                **result}))  # fmt: skip
            bar.set_postfix_str(key)
            bar.update()
    runs = {}
    for path in sorted(store.glob("*.json")):
        result = json.loads(path.read_text())
        runs[result.pop("key")] = result
    rows = aggregate(runs)
    ran_with = {name: sorted({r.get(name) for r in runs.values()}, key=str)
                for name in ("threads", "jobs")}  # fmt: skip
    summary = {"environment": environment.describe(), "size": args.size,
               "threads_per_run": ran_with["threads"], "runs_at_once": ran_with["jobs"],
               "rows": rows, "plots": [plot(runs, rows, args.out).name]}  # fmt: skip
    (args.out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    table = markdown(rows)
    (args.out / "study.md").write_text(table + "\n")
    print(table)
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
