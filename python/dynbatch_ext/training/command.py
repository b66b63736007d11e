"""`python -m dynbatch_ext train-esim`: the command line of dynbatch_ext.training.train."""
from __future__ import annotations

import argparse
import os

from ..batching.costs import COST_PRESETS
from ..batching.steps import COMPOSITIONS
from .config import DEFAULT_STEP_TARGET, TrainConfig
from .memory_limit import parse_bytes


def _optional(kind, *keywords: str):
    """Parses 'none' (any case) as None, the given keywords as themselves, else as `kind`."""
    def parse(text: str):
        if text.lower() == "none":
            return None
        return text.lower() if text.lower() in keywords else kind(text)

    parse.__name__ = kind.__name__
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    data = parser.add_argument_group("data")
    data.add_argument("--train", dest="train_file", default=None,
                      help="SNLI-format TSV (premise<TAB>hypothesis<TAB>label); default: the "
                           "built-in synthetic task, no file needed")
    data.add_argument("--valid", dest="valid_file", default=None,
                      help="held-out TSV evaluated every epoch (default: --valid-fraction of --train)")
    data.add_argument("--valid-fraction", type=float, default=d.valid_fraction)
    data.add_argument("--synthetic-size", type=int, default=d.synthetic_size,
                      help=f"pairs of the synthetic task (default {d.synthetic_size})")
    batching = parser.add_argument_group("batching")
    batching.add_argument("--batching", choices=("budget", "fixed"), default=d.batching,
                          help="budgeted length-sorted batches (default) or fixed random ones")
    limit = batching.add_mutually_exclusive_group()
    limit.add_argument("--budget", type=float, default=d.budget,
                       help=f"micro-batch budget in --cost units (default {d.budget:g})")
    limit.add_argument("--memory-limit", type=parse_bytes, default=None,
                       help="instead of --budget: memory the training may use (e.g. 2GiB); the "
                            "cost model and budget are calibrated to it on the model first")
    batching.add_argument("--cost", choices=tuple(COST_PRESETS), default=d.cost,
                          help="what the budget counts (default: padded tokens)")
    batching.add_argument("--batch-size", type=int, default=d.batch_size,
                          help="batch size of --batching fixed")
    batching.add_argument("--step-target", type=_optional(float, "auto"), default="auto",
                          help="samples (or tokens) per optimizer step over all ranks; 'none': "
                               "one step per micro-batch; 'auto' (default): "
                               f"{DEFAULT_STEP_TARGET:g} for budgeted batches, none for --batching "
                               "fixed")  # fmt: skip
    batching.add_argument("--step-unit", choices=("samples", "tokens"), default=d.step_unit)
    batching.add_argument("--max-batch-size", type=_optional(int), default=d.max_batch_size,
                          help="samples per micro-batch at most (default: the step target)")
    batching.add_argument("--max-micro-batches", type=_optional(int), default=d.max_micro_batches,
                          help="micro-batches per step at most (--composition sorted only)")
    batching.add_argument("--composition", choices=COMPOSITIONS, default=d.composition,
                          help="which samples meet in a step: random (the steps of fixed random "
                               "batches, padding removed inside each), pooled (pools of "
                               "--pool-steps steps sorted together, each step keeping the pool's "
                               f"mix of lengths) or sorted (least padding); default {d.composition}")
    batching.add_argument("--pool-steps", type=int, default=d.pool_steps,
                          help=f"steps per pool of --composition pooled (default {d.pool_steps})")
    model = parser.add_argument_group("model and optimizer")
    model.add_argument("--embedding-dim", type=int, default=d.embedding_dim)
    model.add_argument("--hidden-size", type=int, default=d.hidden_size)
    model.add_argument("--dropout", type=float, default=d.dropout)
    model.add_argument("--reference-ops", dest="fused", action="store_false",
                       help="pure PyTorch references instead of the fused ops")
    model.add_argument("--autocast", choices=("bfloat16", "float16"), default=None,
                       help="run forward passes under torch.autocast in this dtype (bfloat16: on "
                            "CPUs with AVX-512-BF16/AMX and on GPUs); default: float32")
    model.add_argument("--lstm", choices=("auto", "packed", "flipped", "padded"), default=d.lstm,
                       help="how the BiLSTMs meet padding: packed or flipped keep it out (auto: "
                            "packed on CUDA, flipped on the CPU); padded runs over it (baseline)")
    model.add_argument("--lr", type=float, default=d.lr)
    model.add_argument("--clip", type=float, default=d.clip, help="gradient norm clip")
    run = parser.add_argument_group("run")
    run.add_argument("--epochs", type=int, default=d.epochs)
    run.add_argument("--seed", type=int, default=d.seed)
    run.add_argument("--device", choices=("cpu", "cuda"), default=d.device)
    run.add_argument("--out", dest="out_dir", default=d.out_dir,
                     help=f"run folder: metrics.jsonl, training.png, checkpoint.pt (default {d.out_dir})")
    run.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                     help="steps between checkpoints (one also ends every epoch)")
    run.add_argument("--max-steps", type=_optional(int), default=None,
                     help="stop after this many optimizer steps in all (resume later with --resume)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out")
    run.add_argument("--no-progress", dest="progress", action="store_false")
    run.add_argument("--no-plot", dest="plot", action="store_false",
                     help="no training.png (which needs matplotlib: pip install 'dynbatch_ext[plot]')")
    run.add_argument("--log-sample-ids", action="store_true",
                     help="write each rank's sample ids per epoch (samples-rank*.jsonl)")


def run(args: argparse.Namespace) -> int:
    from .loop import train

    fields = TrainConfig.__dataclass_fields__
    result = train(TrainConfig(**{k: v for k, v in vars(args).items() if k in fields}))
    if int(os.environ.get("RANK", "0")) == 0:
        what = "finished" if result.finished else "stopped at --max-steps"
        accuracy = "" if result.valid_accuracy is None else f", validation accuracy {result.valid_accuracy:.4f}"
        print(f"train-esim {what} after {result.steps} steps: {result.samples_per_second:.0f} "
              f"samples/s{accuracy}; run folder {result.out_dir}")  # fmt: skip
    return 0
