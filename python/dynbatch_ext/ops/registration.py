"""What makes the C++ ops first-class torch ops: the fake (meta) kernels that torch.compile and
torch.library.opcheck trace with, and autograd (each backward a registered op of its own).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .. import _C  # noqa: F401  (registers the schemas and kernels)

_ops = torch.ops.dynbatch_ext


def _check_same_device(*tensors: Tensor) -> None:
    devices = {t.device for t in tensors}
    torch._check(len(devices) == 1, lambda: f"inputs are on different devices: {devices}")


@torch.library.register_fake("dynbatch_ext::soft_align")
def _soft_align_fake(a, b, len_a, len_b):
    _check_same_device(a, b, len_a, len_b)
    torch._check(a.dim() == 3 and b.dim() == 3, lambda: "a and b must be (B, L, d)")
    torch._check(a.shape[0] == b.shape[0] and a.shape[2] == b.shape[2],
                 lambda: "a and b must share batch and feature sizes")  # fmt: skip
    return a.new_empty(a.shape), b.new_empty(b.shape)  # contiguous, as the kernels return


@torch.library.register_fake("dynbatch_ext::soft_align_backward")
def _soft_align_backward_fake(grad_a_tilde, grad_b_tilde, a, b, len_a, len_b):
    _check_same_device(grad_a_tilde, grad_b_tilde, a, b, len_a, len_b)
    return a.new_empty(a.shape), b.new_empty(b.shape)


@torch.library.register_fake("dynbatch_ext::masked_pool")
def _masked_pool_fake(x, len_x):
    _check_same_device(x, len_x)
    torch._check(x.dim() == 3, lambda: "x must be (B, L, d)")
    return x.new_empty((x.shape[0], 2 * x.shape[2]))


@torch.library.register_fake("dynbatch_ext::masked_pool_backward")
def _masked_pool_backward_fake(grad_out, x, len_x):
    _check_same_device(grad_out, x, len_x)
    return x.new_empty(x.shape)


def _save_inputs(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _soft_align_backward(ctx, grad_a_tilde, grad_b_tilde):
    a, b, len_a, len_b = ctx.saved_tensors
    grad_a, grad_b = _ops.soft_align_backward(grad_a_tilde, grad_b_tilde, a, b, len_a, len_b)
    return grad_a, grad_b, None, None


def _masked_pool_backward(ctx, grad_out):
    x, len_x = ctx.saved_tensors
    return _ops.masked_pool_backward(grad_out, x, len_x), None


torch.library.register_autograd(
    "dynbatch_ext::soft_align", _soft_align_backward, setup_context=_save_inputs
)
torch.library.register_autograd(
    "dynbatch_ext::masked_pool", _masked_pool_backward, setup_context=_save_inputs
)
