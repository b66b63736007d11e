"""Budgeted length bucketing, the batching half of dynbatch_ext (the Python face of csrc/core).

    costs        CostModel and its presets: what a padded batch costs
    options      PlanOptions: every option of a plan, checked once
    plan         plan_batches: batches within a budget, cut where they pad least
    stats        padding_stats: what any batching costs
    steps        plan_steps, StepOptions: optimizer steps of a constant size, composed "pooled",
                 "random" or "sorted"; epoch_order
    loss_weights micro_batch_weights: exact loss weights for a step's micro-batches
    resumable    the epoch, resume and step bookkeeping every batch sampler here shares
    sampler      BucketBatchSampler: the plan as a DataLoader batch sampler
    stream       bucket_stream, stream_batches, StreamBucketer: batches of a stream, in a
                 bounded buffer
    stream_dataset  BucketingIterableDataset: a stream's batches over ranks and workers
    rank_steps   until_every_rank_ends: DDP over streams whose ranks run out at different times
    calibration  calibrate: the cost model and budget fitted to a model's measured memory
    memory       peak tensor memory of a call (what calibrate measures)
    checks       the argument checks every public function shares
"""
from .calibration import Calibration, calibrate
from .costs import COST_PRESETS, CostModel
from .loss_weights import micro_batch_weights
from .options import PlanOptions
from .plan import plan_batches
from .sampler import BucketBatchSampler
from .stats import PaddingStats, padding_stats
from .steps import StepPlan, plan_steps
from .stream import StreamBucketer, bucket_stream, stream_batches
from .stream_dataset import BucketingIterableDataset

__all__ = [
    "BucketBatchSampler", "BucketingIterableDataset", "Calibration", "CostModel", "COST_PRESETS",
    "PaddingStats", "PlanOptions", "StepPlan", "StreamBucketer", "bucket_stream", "calibrate",
    "micro_batch_weights", "padding_stats", "plan_batches", "plan_steps", "stream_batches",
]  # fmt: skip
