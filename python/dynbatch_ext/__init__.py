"""dynbatch_ext: budgeted length bucketing, constant effective batches and fused ESIM ops.

The library:
    batching   plan_batches, BucketBatchSampler, plan_steps, micro_batch_weights, calibrate,
               bucket_stream, BucketingIterableDataset, ...
    ops        the fused ESIM ops (soft_align, masked_pool) and their pure PyTorch references
    nn         modules on the ops: SoftAlignment, MaskedPooling, EnhancedProjection, ESIM
The applications (python -m dynbatch_ext): training (train-esim), bench, corpora (their data).

Import order matters: torch first (it loads libtorch, which the compiled module links), then the
compiled module (whose static initialisers register the torch ops), then the Python layers.
"""
import torch  # noqa: F401  (must precede _C)

from . import _C
from . import batching, nn, ops  # noqa: F401  (ops registers autograd and fake kernels)
from .batching import (
    COST_PRESETS, BucketBatchSampler, BucketingIterableDataset, Calibration, CostModel, PaddingStats,
    PlanOptions, StepPlan, StreamBucketer, bucket_stream, calibrate, micro_batch_weights,
    padding_stats, plan_batches, plan_steps, stream_batches,
)  # fmt: skip
from .ops import reference  # noqa: F401  (dynbatch_ext.reference, as the README imports it)

__version__: str = _C.__version__


def with_cuda() -> bool:
    """Whether this build of dynbatch_ext holds the CUDA kernels (torch had CUDA at build time)."""
    return bool(_C.with_cuda())


__all__ = [
    "BucketBatchSampler",
    "BucketingIterableDataset",
    "Calibration",
    "CostModel",
    "COST_PRESETS",
    "PaddingStats",
    "PlanOptions",
    "StepPlan",
    "StreamBucketer",
    "__version__",
    "bucket_stream",
    "calibrate",
    "micro_batch_weights",
    "padding_stats",
    "plan_batches",
    "plan_steps",
    "stream_batches",
    "with_cuda",
]
