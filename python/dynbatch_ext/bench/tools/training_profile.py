"""Where a training step's time goes, by kind of op: for the training section's (a) and (b),
the measurement behind its note on why (b)/(a) stays below the ceiling from padding alone; for
the transformer section's (a) and (c), where its minutes go.

    python -m dynbatch_ext.bench.tools.training_profile [--steps 60] [--dim 300]
    python -m dynbatch_ext.bench.tools.training_profile --workload transformer [--reviews 2000]

ESIM: trains the section's ESIM on SNLI dev (or its synthetic pairs where the file is absent) for
a few warm-up steps, then profiles `--steps` steps of each configuration with torch's profiler
and prints each kind of op's time per sample, and the LSTMs' time per padded token.
Transformer: profiles one epoch of the section's (a) and (c) through the HF Trainer on
`--reviews` of its reviews (full-size model), and times torch's `bernoulli_` (dropout's masks)
on one thread and on all.
"""
from __future__ import annotations

import argparse
import collections
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

from ... import corpora
from ...batching.memory import quiet_profiler_start_stop_lines
from ...training import TrainConfig, synthetic_pairs
from ...training.loop import TrainingRun, World
from ...training.data import split
from ..sections import transformer
from ..sections.training import BASELINE, CONFIGS, OURS

KINDS = (("dropout masks", ("bernoulli",)), ("lstm", ("rnn", "lstm")),
         ("fused ops", ("dynbatch_ext",)), ("optimizer", ("adam",)),
         ("matmul", ("addmm", "aten::mm", "bmm", "linear", "matmul")))  # fmt: skip


def kind_of(op_name: str) -> str:
    name = op_name.lower()
    return next((kind for kind, marks in KINDS if any(m in name for m in marks)), "other")


def profile_config(label: str, pairs, steps: int, dim: int, out_dir: str) -> dict:
    config = TrainConfig(out_dir=out_dir, epochs=1,
                         embedding_dim=dim, hidden_size=dim, dropout=0.2, lr=1e-3, progress=False,
                         save_checkpoints=False, plot=False, **CONFIGS[label])  # fmt: skip
    run = TrainingRun(config, pairs, World())
    stream = iter(run.steps())
    for _ in range(5):  # warm-up: oneDNN primitives, allocator
        run.train_step(next(stream))
    chosen = [next(stream) for _ in range(steps)]
    samples = sum(len(mb) for step in chosen for mb in step)
    padded = sum(mb.token_counts()[1] for step in chosen for mb in step)
    quiet_profiler_start_stop_lines()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        started = time.perf_counter()
        for step in chosen:
            run.train_step(step)
        seconds = time.perf_counter() - started
    return {"samples_per_second": samples / seconds, "samples": samples, "padded": padded,
            "seconds_by_kind": seconds_by_kind(profiler)}  # fmt: skip


def seconds_by_kind(profiler) -> dict:
    kinds = collections.Counter()
    for event in profiler.key_averages():
        kinds[kind_of(event.key)] += event.self_cpu_time_total / 1e6
    return dict(kinds)


def profile_transformer(workload: "transformer.Workload", name: str) -> dict:
    """One epoch of way `name` under the profiler (samples/s over the whole epoch, profiled)."""
    with tempfile.TemporaryDirectory() as scratch:
        trainer = transformer.make_trainer(workload, name, scratch, seed=0)
        quiet_profiler_start_stop_lines()
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            started = time.perf_counter()
            trainer.train()
            seconds = time.perf_counter() - started
    samples = sum(trainer.step_log.samples)
    padded = sum(b * length for step in trainer.step_log.shapes for b, length in step)
    return {"samples_per_second": samples / seconds, "samples": samples, "padded": padded,
            "seconds_by_kind": seconds_by_kind(profiler)}  # fmt: skip


def bernoulli_ns_per_element(threads: int, shape=(20, 2, 450, 450)) -> float:
    """torch's bernoulli_ (what dropout draws its masks with) on a (B, heads, L, L) block."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        block = torch.empty(shape)
        block.bernoulli_(0.9)
        started = time.perf_counter()
        for _ in range(5):
            block.bernoulli_(0.9)
        return (time.perf_counter() - started) / 5 / block.numel() * 1e9
    finally:
        torch.set_num_threads(before)


def _print_kinds(results: dict, header: str) -> None:
    print(header)
    kinds = sorted({k for r in results.values() for k in r["seconds_by_kind"]})
    print(f"  {'kind':<14}" + "".join(f"{label[:24]:>26}" for label in results) + f"{'(a)/ours':>9}")
    for kind in kinds:
        per = [r["seconds_by_kind"].get(kind, 0.0) / r["samples"] * 1e3 for r in results.values()]
        ratio = f"{per[0] / per[1]:.2f}" if per[1] else "-"
        print(f"  {kind:<14}" + "".join(f"{p:>26.3f}" for p in per) + f"{ratio:>9}")
    shares = [r["seconds_by_kind"].get("dropout masks", 0.0) / sum(r["seconds_by_kind"].values())
              for r in results.values()]  # fmt: skip
    print("  dropout masks' share of the profiled time: " + ", ".join(f"{s:.0%}" for s in shares))


def main_transformer(reviews: int) -> int:
    size = dict(transformer.SIZES["full"], reviews=reviews)
    workload = transformer.prepare(corpora.default_data_dir(), size, seed=0)
    results = {name: profile_transformer(workload, name) for name in (transformer.FIXED, transformer.OURS)}
    _print_kinds(results, f"one epoch of {len(workload.train_set)} reviews each, 2 layers x "
                          f"{size['hidden']}; ms per sample by kind of op (self time)")  # fmt: skip
    rates = [r["samples_per_second"] for r in results.values()]
    tokens = [r["padded"] / r["samples"] for r in results.values()]
    print(f"  padded tokens per sample: {tokens[0]:.0f} and {tokens[1]:.0f}; samples/s under the "
          f"profiler {rates[0]:.1f} and {rates[1]:.1f} ({rates[1] / rates[0]:.2f}x)")  # fmt: skip
    threads = torch.get_num_threads()
    print(f"  torch's bernoulli_ on a 20 x 2 x 450 x 450 block: {bernoulli_ns_per_element(1):.1f} ns "
          f"an element on 1 thread, {bernoulli_ns_per_element(threads):.1f} on {threads}")  # fmt: skip
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynbatch_ext.bench.tools.training_profile",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--workload", choices=("esim", "transformer"), default="esim")
    parser.add_argument("--steps", type=int, default=60, help="ESIM: steps profiled")
    parser.add_argument("--dim", type=int, default=300, help="ESIM: embedding and hidden width")
    parser.add_argument("--reviews", type=int, default=2000,
                        help="transformer: reviews drawn (80%% trained on; default 2000)")
    args = parser.parse_args(argv)
    if args.workload == "transformer":
        return main_transformer(args.reviews)
    data_dir = corpora.default_data_dir()
    snli = data_dir / corpora.SNLI_DEV if data_dir else None
    data = corpora.read_pairs_tsv(snli) if snli and snli.is_file() else synthetic_pairs(6000)
    pairs = split(data, 0.2, 0)
    results = {}
    for label in (BASELINE, OURS):
        with tempfile.TemporaryDirectory() as out_dir:
            results[label] = profile_config(label, pairs, args.steps, args.dim, out_dir)
    _print_kinds(results, f"{args.steps} steps each, d={args.dim}; ms per sample by kind of op (self time)")
    tokens = [r["padded"] / r["samples"] for r in results.values()]
    lstm = [r["seconds_by_kind"].get("lstm", 0.0) / r["padded"] * 1e6 for r in results.values()]
    rates = [r["samples_per_second"] for r in results.values()]
    print(f"  padded tokens per sample: {tokens[0]:.1f} and {tokens[1]:.1f} ({tokens[0] / tokens[1]:.2f}x, "
          f"the ceiling); LSTM us per padded token: {lstm[0]:.1f} and {lstm[1]:.1f}; samples/s "
          f"{rates[0]:.0f} and {rates[1]:.0f} ({rates[1] / rates[0]:.2f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
