"""dynbatch_ext: budgeted length bucketing, constant effective batches and fused ESIM ops.

Import order matters: torch first (it loads libtorch, which the compiled module links), then the
compiled module (whose static initialisers register the torch ops), then the Python layers.
"""
import torch  # noqa: F401  (must precede _C)

from . import _C
from . import ops, reference  # noqa: F401  (ops registers autograd and fake kernels)
from . import nn  # noqa: F401
from .batching import PRESETS, CostModel, PaddingStats, padding_stats, plan_batches
from .calibration import Calibration, calibrate
from .sampler import BucketBatchSampler
from .steps import StepPlan, micro_batch_weights, plan_steps

__version__: str = _C.__version__


def with_cuda() -> bool:
    """Whether this build of dynbatch_ext holds the CUDA kernels (torch had CUDA at build time)."""
    return bool(_C.with_cuda())


__all__ = [
    "BucketBatchSampler",
    "Calibration",
    "CostModel",
    "PRESETS",
    "PaddingStats",
    "StepPlan",
    "__version__",
    "calibrate",
    "micro_batch_weights",
    "padding_stats",
    "plan_batches",
    "plan_steps",
    "with_cuda",
]
