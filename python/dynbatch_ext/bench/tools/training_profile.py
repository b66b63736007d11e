"""Where a training step's time goes, by kind of op, for the training section's (a) and (b): the
measurement behind its note on why (b)/(a) stays below the ceiling from padding alone.

    python -m dynbatch_ext.bench.tools.training_profile [--steps 60] [--dim 300]

Trains the section's ESIM on SNLI dev (or its synthetic pairs where the file is absent) for a
few warm-up steps, then profiles `--steps` steps of each configuration with torch's profiler and
prints each kind of op's time per sample, and the LSTMs' time per padded token.
"""
from __future__ import annotations

import argparse
import collections
import tempfile
import time

from torch.profiler import ProfilerActivity, profile

from ... import corpora
from ...batching.memory import quiet_profiler_start_stop_lines
from ...training import TrainConfig, synthetic_pairs
from ...training.loop import TrainingRun, World
from ...training.data import split
from ..sections.training import BASELINE, CONFIGS, OURS

KINDS = (("lstm", ("rnn", "lstm")), ("fused ops", ("dynbatch_ext",)), ("optimizer", ("adam",)),
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
    kinds = collections.Counter()
    for event in profiler.key_averages():
        kinds[kind_of(event.key)] += event.self_cpu_time_total / 1e6
    return {"samples_per_second": samples / seconds, "samples": samples, "padded": padded,
            "seconds_by_kind": dict(kinds)}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynbatch_ext.bench.tools.training_profile",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--dim", type=int, default=300)
    args = parser.parse_args(argv)
    data_dir = corpora.default_data_dir()
    snli = data_dir / corpora.SNLI_DEV if data_dir else None
    data = corpora.read_pairs_tsv(snli) if snli and snli.is_file() else synthetic_pairs(6000)
    pairs = split(data, 0.2, 0)
    results = {}
    for label in (BASELINE, OURS):
        with tempfile.TemporaryDirectory() as out_dir:
            results[label] = profile_config(label, pairs, args.steps, args.dim, out_dir)
    print(f"{args.steps} steps each, d={args.dim}; ms per sample by kind of op (self time)")
    kinds = sorted({k for r in results.values() for k in r["seconds_by_kind"]})
    print(f"  {'kind':<12}" + "".join(f"{label[:24]:>26}" for label in results) + f"{'(a)/(b)':>9}")
    for kind in kinds:
        per = [r["seconds_by_kind"].get(kind, 0.0) / r["samples"] * 1e3 for r in results.values()]
        ratio = f"{per[0] / per[1]:.2f}" if per[1] else "-"
        print(f"  {kind:<12}" + "".join(f"{p:>26.3f}" for p in per) + f"{ratio:>9}")
    tokens = [r["padded"] / r["samples"] for r in results.values()]
    lstm = [r["seconds_by_kind"].get("lstm", 0.0) / r["padded"] * 1e6 for r in results.values()]
    rates = [r["samples_per_second"] for r in results.values()]
    print(f"  padded tokens per sample: {tokens[0]:.1f} and {tokens[1]:.1f} ({tokens[0] / tokens[1]:.2f}x, "
          f"the ceiling); LSTM us per padded token: {lstm[0]:.1f} and {lstm[1]:.1f}; samples/s "
          f"{rates[0]:.0f} and {rates[1]:.0f} ({rates[1] / rates[0]:.2f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
