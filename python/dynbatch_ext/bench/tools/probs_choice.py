"""Recompute or save soft_align's attention probabilities for the backward: which is faster here?

The CUDA backward recomputes the scores and both softmaxes from A and B (it reads them anyway);
the other choice writes the probabilities in the forward and reads them back. The program
csrc/bench/soft_align_probs (no torch; build it with nvcc) runs both on one batch, checks
they agree and times each forward and backward with CUDA events. This runs it on the
ops benchmark's lengths (SNLI dev, or SNLI-like synthetic ones), writes its figures with the
environment to OUT/probs_choice.json and prints a table. scripts/gpu_check.sh's `probs` step
builds the program and runs this:

    nvcc -O3 -std=c++17 -arch=native -I csrc -o soft_align_probs \\
        csrc/bench/soft_align_probs.cu csrc/kernels/soft_align.cu
    python -m dynbatch_ext.bench.tools.probs_choice --program ./soft_align_probs --out results/
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import torch

from ... import corpora

from ..environment import describe
from ..sections.ops import pair_lengths


def run_program(program: Path, lengths, dim: int, repeats: int, timeout: float = 900) -> dict:
    """The program's JSON for one batch of (la, lb) `lengths`; RuntimeError with its message if it
    fails (a CUDA error, or the two choices giving different results)."""
    text = "".join(f"{int(la)} {int(lb)}\n" for la, lb in lengths)
    try:
        done = subprocess.run([str(program), str(dim), str(repeats)], input=text,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
    except OSError as error:
        raise RuntimeError(f"cannot run {program}: {error}") from error
    if done.returncode != 0:
        raise RuntimeError(f"{program} failed (exit {done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-2000:]}")  # fmt: skip
    return json.loads(done.stdout)


def choices(measurement: dict) -> list[dict]:
    """Per dtype: both step times (median forward + backward), save over recompute, and the faster
    choice, or "neither (within noise)" when the two interquartile ranges of the step overlap."""
    rows = []
    for result in measurement["results"]:
        recompute, save = result["recompute"], result["save"]
        overlap = (save["step_ms_q25"] <= recompute["step_ms_q75"]
                   and recompute["step_ms_q25"] <= save["step_ms_q75"])  # fmt: skip
        faster = "recompute" if recompute["step_ms"] < save["step_ms"] else "save"
        rows.append({
            "dtype": result["dtype"],
            "recompute_step_ms": recompute["step_ms"],
            "save_step_ms": save["step_ms"],
            "save_over_recompute": save["step_ms"] / recompute["step_ms"],
            "faster": "neither (within noise)" if overlap else faster,
        })  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'dtype':<10} {'recompute ms':>13} {'save ms':>9} {'save/recompute':>15}  faster"]
    for row in rows:
        lines.append(f"{row['dtype']:<10} {row['recompute_step_ms']:>13.4f} {row['save_step_ms']:>9.4f} "
                     f"{row['save_over_recompute']:>15.3f}  {row['faster']}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m dynbatch_ext.bench.tools.probs_choice",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--program", type=Path, required=True,
                        help="the built csrc/bench/soft_align_probs")  # fmt: skip
    parser.add_argument("--batch", type=int, default=512, help="pairs in the batch (default: 512)")
    parser.add_argument("--dim", type=int, default=600, help="feature width d (default: 600)")
    parser.add_argument("--repeats", type=int, default=50, help="timed steps per choice (default: 50)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="folder for probs_choice.json (default: bench-results)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.program.is_file():
        parser.error(f"--program {args.program}: no such file; build it with nvcc first "
                     "(the command is in this module's help)")  # fmt: skip
    for name in ("batch", "dim", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    lengths, source = pair_lengths(args.batch, corpora.default_data_dir(), seed=0)
    measurement = run_program(args.program, lengths, args.dim, args.repeats)
    rows = choices(measurement)
    report = {
        "environment": describe("cuda" if torch.cuda.is_available() else "cpu"),
        "lengths": source,
        "measurement": measurement,
        "choices": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "probs_choice.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"soft_align probabilities on {measurement['gpu']}: B = {measurement['batch']}, "
          f"La = {measurement['max_len_a']}, Lb = {measurement['max_len_b']}, d = {measurement['dim']} "
          f"({source}); median forward + backward of {measurement['repeats']} steps, L2 flushed "
          "before each pass")  # fmt: skip
    print(table(rows))
    print(f"written to {args.out / 'probs_choice.json'}")
    return report


if __name__ == "__main__":
    main()
