"""The sections of `bench`, in the order they run. A section is one module here that ends with
`SECTION = Section(name, run, table)` (see `..context`), and one line below.

    batching     planning speed and batch quality against fixed batches
    streaming    batches of a stream against the in-memory plan
    ops          the fused ops against eager, compiled and SDPA PyTorch
    training     ESIM trained on budgeted steps against the common baseline
    transformer  the seed experiment: a small BERT on long-tailed reviews through the HF Trainer
    calibration  peak memory per step at calibrated budgets
"""
from __future__ import annotations

from . import batching, calibration, ops, streaming, training, transformer

SECTIONS = {section.name: section for section in (
    batching.SECTION,
    streaming.SECTION,
    ops.SECTION,
    training.SECTION,
    transformer.SECTION,
    calibration.SECTION,
)}  # fmt: skip
