"""Training ESIM with budgeted batches and a constant effective batch (`train-esim`)."""
from .baseline import FixedBatchSampler
from .config import TrainConfig
from .loop import TrainResult, evaluate, train
from .precision import UnsupportedAutocast
from .synthetic import synthetic_pairs
from .text import EncodedPairs, PairBatch, Vocabulary, tokenize

__all__ = [
    "EncodedPairs", "FixedBatchSampler", "PairBatch", "TrainConfig", "TrainResult",
    "UnsupportedAutocast", "Vocabulary",
    "evaluate", "synthetic_pairs", "tokenize", "train",
]  # fmt: skip
