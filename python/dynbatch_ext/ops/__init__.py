"""The fused ESIM ops, `torch.ops.dynbatch_ext.*`, and their pure PyTorch references.

    registration     what makes the C++ ops first-class torch ops: fake kernels and autograd
    torch_internals  the private torch APIs registration needs, in one place (pinned by a test)
    reference        the same semantics in pure PyTorch, for checking and comparison

The kernels and schemas live in C++ (csrc/kernels, csrc/ops) and register when `_C` is imported.
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import reference, registration  # noqa: F401  (registration: fake kernels and autograd)

_ops = torch.ops.dynbatch_ext


def soft_align(a: Tensor, b: Tensor, len_a: Tensor, len_b: Tensor) -> tuple[Tensor, Tensor]:
    """ESIM local inference: masked soft alignment in both directions.

    Args:
        a: (B, La, d) premise states, right-padded.
        b: (B, Lb, d) hypothesis states, right-padded.
        len_a, len_b: (B,) int64 valid lengths.

    Returns:
        a_tilde (B, La, d): `sum_j softmax_j(a_i . b_j) b_j`; b_tilde (B, Lb, d):
        `sum_i softmax_i(a_i . b_j) a_i`. Padded scores take no part; padded rows, and every row
        of a pair whose other side is empty, are zero.
    """
    return _ops.soft_align(a, b, len_a, len_b)


def masked_pool(x: Tensor, len_x: Tensor) -> Tensor:
    """(B, L, d), (B,) -> (B, 2d): mean and max over the valid positions, zeros for length 0.

    The max's gradient goes to the first arg-max.
    """
    return _ops.masked_pool(x, len_x)


__all__ = ["masked_pool", "reference", "soft_align"]
