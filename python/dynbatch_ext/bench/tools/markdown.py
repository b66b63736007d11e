"""The ops section of a benchmark's results.json as Markdown, for the README:

    python -m dynbatch_ext.bench.tools.markdown bench-results/results.json

prints where and when it was measured, one table per dtype (median time of each path, how many
times longer than fused, fused over the bandwidth floor where measured) and the targets, then the
long-sequence grid and its targets, so that a table in the README is copied from a committed
results file rather than typed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..targets import verdict

# results.json's path names, as the README's column headers.
COLUMNS = {"fused": "fused", "eager reference": "eager reference",
           "compiled reference": "`torch.compile` of it", "SDPA pair": "two SDPA calls"}  # fmt: skip


def duration(seconds: float) -> str:
    """3.1 ms, 307.4 ms, 84 µs, 9.6 µs: three or four significant figures at most."""
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    micro = seconds * 1e6
    return f"{micro:.1f} µs" if micro < 10 else f"{micro:.0f} µs"


def provenance(results: dict) -> str:
    env, ops = results["environment"], results["ops"]
    if "gpu" in env:
        where = (f"{env['gpu']} (driver {env['driver']}, CUDA {env['cuda']}, compute capability "
                 f"{env['compute_capability']})")  # fmt: skip
    else:
        where = f"{env['cpu']} ({env['cpu_cores']} cores, {env['torch_threads']} torch threads)"
    line = (f"Measured on {where}, torch {env['torch']}, dynbatch_ext {env['dynbatch_ext']}, "
            f"{env['date'][:10]}, `bench` in {results['mode']} mode.")  # fmt: skip
    if ops.get("copy_bandwidth_bytes_per_second"):
        line += (f" Device copy bandwidth {ops['copy_bandwidth_bytes_per_second'] / 1e12:.2f} TB/s "
                 "(bytes read + written), in the same run.")  # fmt: skip
    return line


def ops_table(section: dict) -> str:
    batches = section["batches"]
    names = list(batches[0]["paths"])
    floor = "fused_over_floor" in batches[0]
    header = ["B", "padded La × Lb", *(COLUMNS.get(n, n) for n in names)] + (["fused / floor"] if floor else [])
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in batches:
        cells = [str(r["batch"]), f"{r['padded_shape_a'][1]} × {r['padded_shape_b'][1]}"]
        for name in names:
            time = duration(r["paths"][name]["seconds"])
            cells.append(f"**{time}**" if name == "fused" else f"{time} ({r['speedup_of_fused'][name]:.1f}x)")
        if floor:
            cells.append(f"{r['fused_over_floor']:.1f}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def target_lines(targets: dict, prefix: str = "") -> list[str]:
    """A list item per target; "worst X at P" for a target judged at its worst point P."""
    lines = []
    for name, t in targets.items():
        measured = f"worst {t['measured']:.2f} at {t['at']}" if "at" in t else f"{t['measured']:.2f}"
        lines.append(f"- {prefix}{name}: {measured} (target {t['op']} {t['value']}, {verdict(t)})")
    return lines


def grid_table(grid: dict) -> str:
    """The long-sequence grid: a row per point, each path's time and how many times longer than
    fused, padded / valid work, and the fused and torch.mm throughputs."""
    others = list(grid["points"][0]["over_fused"])
    header = ["B", "L", "d", "fused", *(COLUMNS.get(n, n) for n in others), "padded / valid work",
              "fused GFLOP/s", "`torch.mm` GFLOP/s", "fused / mm"]  # fmt: skip
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in grid["points"]:
        cells = [str(p["batch"]), str(p["max_len"]), str(p["dim"]), f"**{duration(p['seconds']['fused'])}**"]
        cells += [f"{duration(p['seconds'][n])} ({p['over_fused'][n]:.2f}x)" for n in others]
        cells += [f"{p['padded_over_valid_work']:.2f}x", f"{p['fused_gflops']:.1f}", f"{p['mm_gflops']:.1f}",
                  f"{p['fused_over_mm']:.2f}"]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def render(results: dict) -> str:
    if "ops" not in results:
        raise ValueError("this results file has no ops section (run bench with --sections ops)")
    ops = results["ops"]
    if "sections" not in ops:
        raise ValueError("this results file's ops section has no per-dtype sections (an older "
                         "layout); measure again")  # fmt: skip
    parts = [provenance(results)]
    if ops.get("partial"):
        parts.append("**Partial:** this run stopped before it had measured every batch; the "
                     "figures below are those it saved on the way.")  # fmt: skip
    for section in ops["sections"]:
        first = section["batches"][0]
        parts.append(f"**{section['dtype'].split('.')[-1]}**, d = {ops['dim']}, on {ops['device']}, "
                     f"lengths from {first['lengths_from']}; the parentheses give how many times "
                     "longer each path takes than the fused one.")  # fmt: skip
        parts.append(ops_table(section))
        if section["targets"]:
            parts.append("\n".join(target_lines(section["targets"])))
    grid = ops.get("long_sequences")
    if grid:
        parts.append(f"**Long sequences**, float32, on {grid['device']}: B pairs padded to L with "
                     f"B * L^2 = {grid['budget']:,}, valid lengths in [L/2, L]; median of "
                     f"{min(p['repeats'] for p in grid['points'])} to "
                     f"{max(p['repeats'] for p in grid['points'])} alternating runs (the shorter "
                     "steps more).")  # fmt: skip
        parts.append(grid_table(grid))
        if grid["targets"]:
            parts.append("\n".join(target_lines(grid["targets"], prefix="fused ")))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m dynbatch_ext.bench.tools.markdown",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("results", type=Path, help="a results.json written by `bench`")
    args = parser.parse_args(argv)
    if not args.results.is_file():
        parser.error(f"{args.results}: no such file")
    try:
        text = render(json.loads(args.results.read_text()))
    except ValueError as error:
        parser.error(f"{args.results}: {error}")
    except (KeyError, IndexError) as error:
        parser.error(f"{args.results}: not a results file of `bench` (no field or entry {error})")
    print(text, end="")
    return text


if __name__ == "__main__":
    main()
