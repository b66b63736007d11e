"""Budgeted batches from a stream, against the in-memory planner (the ceiling) and a fixed batch
of 32 over the stream (what a user of a stream has today).

Two measurements:
  quality      files read line by line, never whole (SNLI dev pairs, ChnSentiCorp reviews), and
               synthetic streams, batched by bucket_stream / stream_batches with a buffer of
               10,000 samples (and of 1,000, to show what the buffer buys): padding efficiency
               over the in-memory planner's at the same budget, batches over budget, samples
               missing or repeated.
  throughput   N synthetic lengths streamed in chunks through stream_batches (lengths only, no
               tensors): samples/s on one core, and the most resident memory the stream takes
               (beyond the process's before it) when a fresh process streams 1M and 10M
               lengths, which must not grow with the stream.
"""
from __future__ import annotations

import os
import subprocess
import warnings
import sys
import time
from pathlib import Path

import numpy as np

from ... import corpora
from ...batching import padding_stats, plan_batches
from ...batching.stream import bucket_stream, stream_batches
from .. import figures
from ..context import RunContext, Section
from ..targets import target, target_line

BUFFER = 10_000
SMALL_BUFFER = 1_000
FIXED_BATCH = 32
CHUNK = 65_536  # lengths per chunk of the throughput stream
SIZES = {
    "tiny": dict(synthetic=20_000, streams=(200_000,), repeats=1),
    "quick": dict(synthetic=100_000, streams=(1_000_000,), repeats=3),
    "full": dict(synthetic=200_000, streams=(1_000_000, 10_000_000), repeats=3),
}
EFFICIENCY_SHARE_TARGET = 0.95  # of the in-memory planner's, at a buffer of 10,000
SPEED_TARGET = 5e6  # samples/s
MEMORY_GROWTH_TARGET = 1.1  # peak RSS at the longest stream over the shortest


def synthetic_chunks(n: int, seed: int = 0, chunk: int = CHUNK):
    """Lengths like corpora.synthetic_lengths, made a chunk at a time (never all at once)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        yield np.clip(np.rint(rng.lognormal(np.log(64), 0.9, size)), 2, 512).astype(np.int64)


def _file_streams(data_dir: Path | None):
    """(name, a function that opens the file's stream of rows, length function, pairs, budget,
    oversize) per file."""
    snli = data_dir / corpora.SNLI_DEV if data_dir else None
    if snli is not None and snli.is_file():
        yield ("SNLI dev pairs (from the file)", lambda: corpora.iter_pairs_tsv(snli),
               lambda row: (len(row[0].split()), len(row[1].split())), True, 8192, "error")  # fmt: skip
    chn = data_dir / corpora.CHNSENTICORP if data_dir else None
    if chn is not None and chn.is_file():
        # As in the batching section: the 28 reviews over 1,024 characters cost more than the
        # budget alone and are left out (counted) by every strategy.
        yield ("ChnSentiCorp reviews (from the file)", lambda: corpora.iter_texts(chn), len, False,
               16 * 256**2, "skip")  # fmt: skip


def _rows(lengths: np.ndarray, streamed: dict[str, list], budget: float, oversize: str) -> dict:
    """The strategies' figures on the same lengths; the in-memory plan is the ceiling."""
    skip = oversize == "skip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # samples left out as oversize are counted below
        in_memory = plan_batches(lengths, budget, oversize=oversize)
    plans = {"in-memory plan_batches (ceiling)": in_memory, **streamed}
    kept = np.concatenate(plans["in-memory plan_batches (ceiling)"])
    order = np.sort(kept) if skip else np.arange(len(lengths))
    plans[f"fixed {FIXED_BATCH}, stream order"] = [order[k : k + FIXED_BATCH]
                                                   for k in range(0, len(order), FIXED_BATCH)]  # fmt: skip
    rows = {}
    for name, batches in plans.items():
        stats = padding_stats(lengths, batches, budget=budget)
        rows[name] = {"efficiency": stats.efficiency, "num_batches": stats.num_batches,
                      "batches_over_budget": stats.batches_over_budget,
                      # oversize samples left out on purpose are not missing
                      "samples_missing": stats.samples_missing - (len(lengths) - len(kept)),
                      "samples_repeated": stats.samples_repeated}  # fmt: skip
    ceiling = rows["in-memory plan_batches (ceiling)"]["efficiency"]
    for row in rows.values():
        row["efficiency_over_ceiling"] = row["efficiency"] / ceiling
    return rows


def _stream_file(open_stream, length, pairs: bool, budget: float, oversize: str):
    """The stream's batches at each buffer size (as arrays of positions in the stream), and its
    lengths, kept for the figures. The file is read row by row, once per buffer size."""
    streamed, lengths = {}, []

    def measured(item):  # (position, row) -> the row's length, noted on the first pass
        value = length(item[1])
        if item[0] == len(lengths):
            lengths.append(value)
        return value

    for buffer in (BUFFER, SMALL_BUFFER):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # samples left out as oversize are counted
            batches = list(bucket_stream(enumerate(open_stream()), measured, budget, pairs=pairs,
                                         buffer_size=buffer, oversize=oversize))  # fmt: skip
        streamed[f"stream, buffer {buffer:,}"] = [np.array([p for p, _ in b]) for b in batches]
    return np.array(lengths, dtype=np.int64), streamed


def quality(mode: str, data_dir: Path | None, progress) -> list[dict]:
    cases = []
    for name, open_stream, length, pairs, budget, oversize in _file_streams(data_dir):
        progress.set_description(f"streaming: {name}")
        lengths, streamed = _stream_file(open_stream, length, pairs, budget, oversize)
        cases.append({"case": name, "num_samples": len(lengths), "budget": budget,
                      "rows": _rows(lengths, streamed, budget, oversize)})  # fmt: skip
        progress.update()
    n = SIZES[mode]["synthetic"]
    for name, lengths, pairs, budget in (
        ("synthetic single texts", corpora.synthetic_lengths(n, seed=1), False, 16 * 256**2),
        ("synthetic pairs", corpora.synthetic_pair_lengths(n, seed=2), True, 8192),
    ):
        progress.set_description(f"streaming: {name}")
        streamed = {f"stream, buffer {buffer:,}": list(stream_batches(
            (lengths[k : k + 4096] for k in range(0, n, 4096)), budget, pairs=pairs, buffer_size=buffer))
            for buffer in (BUFFER, SMALL_BUFFER)}  # fmt: skip
        cases.append({"case": f"{name}, {n:,}", "num_samples": n, "budget": budget,
                      "rows": _rows(lengths, streamed, budget, "error")})  # fmt: skip
        progress.update()
    for case in cases:
        ours = case["rows"][f"stream, buffer {BUFFER:,}"]
        case["targets"] = {
            "efficiency over the in-memory plan's": target(ours["efficiency_over_ceiling"], ">=",
                                                           EFFICIENCY_SHARE_TARGET),  # fmt: skip
            "batches over budget": target(ours["batches_over_budget"], "==", 0),
            "samples missing or repeated": target(ours["samples_missing"] + ours["samples_repeated"], "==", 0),
        }
    return cases


def _samples_per_second(n: int, repeats: int) -> float:
    chunks = list(synthetic_chunks(n))  # made before timing: the batcher's speed alone
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        seen = sum(len(batch) for batch in stream_batches(iter(chunks), 16 * 256**2))
        best = min(best, time.perf_counter() - start)
        assert seen == n
    return n / best


def resident_bytes() -> int:
    """This process's resident memory now (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# A fresh process streams n lengths made on the fly; it prints the most resident memory the
# stream took beyond what the process held before it (sampled at every chunk), in bytes.
_PEAK_SCRIPT = """
import sys
from dynbatch_ext.bench.sections.streaming import resident_bytes, synthetic_chunks
from dynbatch_ext.batching.stream import stream_batches
n = int(sys.argv[1])
before = most = resident_bytes()
def sampled(chunks):
    global most
    for chunk in chunks:
        most = max(most, resident_bytes())
        yield chunk
assert sum(len(b) for b in stream_batches(sampled(synthetic_chunks(n)), 16 * 256**2)) == n
print(max(most, resident_bytes()) - before)
"""


def _stream_memory(n: int) -> int:
    if not Path("/proc/self/statm").exists():
        raise RuntimeError("the streaming section reads resident memory from /proc (Linux); "
                           "leave it out here (--sections ...)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(n)], capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"streaming {n:,} lengths in a subprocess failed: {done.stderr[-2000:]}")
    return int(done.stdout.strip().splitlines()[-1])


def throughput(mode: str, progress) -> dict:
    size = SIZES[mode]
    progress.set_description("streaming: throughput and memory")
    longest = max(size["streams"])
    rate = _samples_per_second(longest, size["repeats"])
    peaks = {n: _stream_memory(n) for n in size["streams"]}
    progress.update()
    result = {"num_lengths": longest, "samples_per_second": rate, "chunk": CHUNK,
              "stream_memory_bytes": {str(n): p for n, p in peaks.items()},
              "targets": {"million samples/s": target(rate / 1e6, ">=", SPEED_TARGET / 1e6)}}  # fmt: skip
    if len(peaks) > 1:
        # At least a MiB apart: page-granular readings of a few hundred KiB are noise.
        growth = max(peaks[longest], 2**20) / max(peaks[min(peaks)], 2**20)
        result["targets"]["stream memory, longest stream over shortest"] = target(
            growth, "<=", MEMORY_GROWTH_TARGET)
    return result


def run(context: RunContext) -> dict:
    progress = context.progress
    progress.reset(total=len(list(_file_streams(context.data_dir))) + 3)
    cases = quality(context.mode, context.data_dir, progress)
    speed = throughput(context.mode, progress)
    plot = _plot(cases, context.out_dir / "streaming.png")
    return {"buffer": BUFFER, "cases": cases, "throughput": speed, "plots": [plot.name],
            "notes": ["a stream shorter than the buffer is planned whole at its end, as in memory"]}


def _plot(cases: list[dict], path: Path) -> Path:
    plt = figures.pyplot()

    fig, ax = plt.subplots(figsize=(13, 0.9 + 0.9 * len(cases)))
    names = list(cases[0]["rows"])
    height = 0.8 / len(names)
    colours = dict(zip(names, ("tab:gray", "tab:blue", "tab:cyan", "tab:red")))
    for k, name in enumerate(names):
        values = [case["rows"][name]["efficiency"] for case in cases]
        ax.barh(np.arange(len(cases)) + k * height, values, height, label=name, color=colours[name])
    ax.set_yticks(np.arange(len(cases)) + 0.4 - height / 2, [c["case"] for c in cases])
    ax.invert_yaxis()
    ax.set(xlabel="padding efficiency (real / padded tokens)", xlim=(0, 1),
           title="Batches from a stream against the in-memory plan, at the same budget")  # fmt: skip
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside, not over, the bars
    ax.grid(alpha=0.3, axis="x")
    return figures.save(fig, path)


def table(section: dict) -> str:
    """The section's results as a text table, printed when it ends."""
    lines = [f"Batches from a stream (bucket_stream, buffer {section['buffer']:,} samples unless "
             "said): padding efficiency against the in-memory plan at the same budget"]  # fmt: skip
    header = (f"  {'strategy':<36}{'efficiency':>11}{'/ in-memory':>13}{'batches':>9}"
              f"{'over budget':>13}{'missing/repeated':>18}")  # fmt: skip
    for case in section["cases"]:
        lines += [f"{case['case']}: {case['num_samples']:,} samples, budget {case['budget']:,}", header]
        for name, r in case["rows"].items():
            lines.append(f"  {name:<36}{r['efficiency']:>11.3f}{r['efficiency_over_ceiling']:>13.3f}"
                         f"{r['num_batches']:>9}{r['batches_over_budget']:>13}"
                         f"{str(r['samples_missing']) + '/' + str(r['samples_repeated']):>18}")  # fmt: skip
        lines += [target_line(name, t, 3) for name, t in case["targets"].items()]
        lines.append("")
    speed = section["throughput"]
    peaks = ", ".join(f"{int(n):,}: {b / 2**20:.1f} MiB" for n, b in speed["stream_memory_bytes"].items())
    lines += [f"Streaming {speed['num_lengths']:,} synthetic lengths (chunks of {speed['chunk']:,}, "
              f"lengths only): {speed['samples_per_second'] / 1e6:.2f} M samples/s; resident "
              f"memory the stream takes, by its length: {peaks}"]  # fmt: skip
    lines += [target_line(name, t, 2) for name, t in speed["targets"].items()]
    lines += [f"note: {n}" for n in section["notes"]]
    return "\n".join(lines) + "\n"


SECTION = Section("streaming", run, table)
