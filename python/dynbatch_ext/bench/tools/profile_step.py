"""One fused step of the ops benchmark (soft_align + masked_pool of both sides, forward and
backward) inside a profiler range, for Nsight Compute:

    ncu --clock-control none --profile-from-start off -k regex:soft_align|masked_pool \\
        python -m dynbatch_ext.bench.tools.profile_step --batch 512

profiles the fused kernels of exactly the work the benchmark times (same lengths, width and
values), after a warm-up step outside the range; with --length L, of a point of the long-sequence
grid instead (B pairs of valid lengths in [L/2, L], as bench/long_sequences.py draws them: e.g.
--batch 4 --length 512 --dim 256, where the CUDA kernels split each pair over many blocks). scripts/gpu_check.sh's `profile` step runs it.
On the CPU it runs the same steps with no range (a check that the command works).
"""
from __future__ import annotations

import argparse

import torch

from ... import corpora

from .. import long_sequences
from ..sections.ops import losses, step_inputs

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dynbatch_ext.bench.tools.profile_step",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--batch", type=int, default=512, help="pairs per step (default: 512)")
    parser.add_argument("--dim", type=int, default=600, help="feature width d (default: 600)")
    parser.add_argument("--dtypes", default="float32,bfloat16",
                        help="comma-separated, of " + ", ".join(DTYPES) + " (default: float32,bfloat16)")  # fmt: skip
    parser.add_argument("--length", type=int, default=None,
                        help="a long-sequence grid point's lengths, in [L/2, L] (default: SNLI's)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    args = parser.parse_args(argv)
    dtypes = args.dtypes.split(",")
    unknown = [name for name in dtypes if name not in DTYPES]
    if unknown:
        parser.error(f"--dtypes: unknown {unknown}; choose from {sorted(DTYPES)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device (use --device cpu to try the command)")
    fused = losses()["fused"]
    data_dir = corpora.default_data_dir()
    for name in dtypes:
        if args.length is None:
            a, b, len_a, len_b, _, source = step_inputs(args.batch, args.dim, DTYPES[name],
                                                        args.device, data_dir)  # fmt: skip
        else:
            a, b, len_a, len_b = long_sequences.inputs(args.batch, args.length, args.dim, args.device)
            a, b = (x.detach().to(DTYPES[name]).requires_grad_() for x in (a, b))
            source = f"[{args.length // 2}, {args.length}]"
        for profiled in (False, True):  # a warm-up step (allocator, module loading), then one
            a.grad = b.grad = None
            if profiled and a.is_cuda:
                torch.cuda.synchronize()
                torch.cuda.profiler.start()
            fused(a, b, len_a, len_b).backward()
            if profiled and a.is_cuda:
                torch.cuda.synchronize()
                torch.cuda.profiler.stop()
        print(f"{name}: one fused step, a {tuple(a.shape)}, b {tuple(b.shape)}, lengths from {source}")


if __name__ == "__main__":
    main()
