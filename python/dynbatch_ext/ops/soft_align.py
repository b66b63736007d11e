"""soft_align, ESIM's local inference: `dynbatch_ext::soft_align` and its backward op, with their
wrapper, fake kernels and autograd (the kernels: csrc/kernels/soft_align*, csrc/ops/*/soft_align.cpp)."""
from __future__ import annotations

import torch
from torch import Tensor

from . import reference
from .registration import check_same_device, register_backward, register_forward
from .torch_internals import below_autograd

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


@torch.library.register_fake("dynbatch_ext::soft_align")
def _soft_align_fake(a, b, len_a, len_b):
    check_same_device(a, b, len_a, len_b)
    torch._check(a.dim() == 3 and b.dim() == 3, lambda: "a and b must be (B, L, d)")
    torch._check(a.shape[0] == b.shape[0] and a.shape[2] == b.shape[2],
                 lambda: "a and b must share batch and feature sizes")  # fmt: skip
    return a.new_empty(a.shape), b.new_empty(b.shape)  # contiguous, as the kernels return


@torch.library.register_fake("dynbatch_ext::soft_align_backward")
def _soft_align_backward_fake(grad_a_tilde, grad_b_tilde, a, b, len_a, len_b):
    check_same_device(grad_a_tilde, grad_b_tilde, a, b, len_a, len_b)
    return a.new_empty(a.shape), b.new_empty(b.shape)


class _SoftAlign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, keyset, a, b, len_a, len_b):
        ctx.save_for_backward(a, b, len_a, len_b)
        return below_autograd(_ops.soft_align.default, keyset, (a, b, len_a, len_b))

    @staticmethod
    def backward(ctx, grad_a_tilde, grad_b_tilde):
        a, b, len_a, len_b = ctx.saved_tensors
        grad_a, grad_b = _ops.soft_align_backward(grad_a_tilde, grad_b_tilde, a, b, len_a, len_b)
        return None, grad_a, grad_b, None, None


register_forward("soft_align", _SoftAlign, reference.soft_align)
register_backward("soft_align_backward", reference.soft_align_backward)
