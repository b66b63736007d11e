"""The fused ESIM ops, `torch.ops.dynbatch_ext.*`, and their pure PyTorch references. One module
per op, holding its wrapper, fake kernels and autograd:

    soft_align       ESIM's masked soft alignment (and its backward op)
    masked_pool      ESIM's masked mean and max pooling (and its backward op)
    lstm             one LSTM layer as one op, for exported programs (declared in Python)
    reference        the same semantics in pure PyTorch, for checking and comparison
    registration     how an op gets its Autograd kernel, shared by the op modules
    torch_internals  the private torch APIs registration needs, in one place (pinned by a test)

The kernels and schemas of soft_align and masked_pool live in C++ (csrc/kernels, csrc/ops) and
register when `_C` is imported.
"""
from __future__ import annotations

from . import reference
from .lstm import lstm_layer  # noqa: F401  (registers dynbatch_ext::lstm)
from .masked_pool import masked_pool
from .soft_align import soft_align

# Every op of the dynbatch_ext namespace (tests/test_ops_registration.py checks the list).
NAMESPACE_OPS = ("soft_align", "soft_align_backward", "masked_pool", "masked_pool_backward", "lstm")

__all__ = ["masked_pool", "reference", "soft_align"]
