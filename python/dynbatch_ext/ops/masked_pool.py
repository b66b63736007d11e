"""masked_pool, ESIM's pooling: `dynbatch_ext::masked_pool` and its backward op, with their
wrapper, fake kernels and autograd (the kernels: csrc/kernels/masked_pool*, csrc/ops/*/masked_pool.cpp)."""
from __future__ import annotations

import torch
from torch import Tensor

from . import reference
from .registration import check_same_device, register_backward, register_forward
from .torch_internals import below_autograd

_ops = torch.ops.dynbatch_ext


def masked_pool(x: Tensor, len_x: Tensor) -> Tensor:
    """(B, L, d), (B,) -> (B, 2d): mean and max over the valid positions, zeros for length 0.

    The max's gradient goes to the first arg-max.
    """
    return _ops.masked_pool(x, len_x)


@torch.library.register_fake("dynbatch_ext::masked_pool")
def _masked_pool_fake(x, len_x):
    check_same_device(x, len_x)
    torch._check(x.dim() == 3, lambda: "x must be (B, L, d)")
    return x.new_empty((x.shape[0], 2 * x.shape[2]))


@torch.library.register_fake("dynbatch_ext::masked_pool_backward")
def _masked_pool_backward_fake(grad_out, x, len_x):
    check_same_device(grad_out, x, len_x)
    return x.new_empty(x.shape)


class _MaskedPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, keyset, x, len_x):
        ctx.save_for_backward(x, len_x)
        return below_autograd(_ops.masked_pool.default, keyset, (x, len_x))

    @staticmethod
    def backward(ctx, grad_out):
        x, len_x = ctx.saved_tensors
        return None, _ops.masked_pool_backward(grad_out, x, len_x), None


register_forward("masked_pool", _MaskedPool, reference.masked_pool)
register_backward("masked_pool_backward", reference.masked_pool_backward)
