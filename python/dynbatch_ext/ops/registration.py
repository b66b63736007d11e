"""What makes the C++ ops first-class torch ops: the fake (meta) kernels that torch.compile,
torch.export and torch.library.opcheck trace with, and autograd in reverse mode, to any order,
and in forward mode. Autocast is registered in C++ (csrc/ops/autocast.cpp).
"""
from __future__ import annotations

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

from .. import _C  # noqa: F401  (registers the schemas and kernels)
from . import reference
from .torch_internals import (any_requires_grad, below_autograd, register_autograd_kernel,
                              transforms_active)

_ops = torch.ops.dynbatch_ext


def _check_same_device(*tensors: Tensor) -> None:
    devices = {t.device for t in tensors}
    torch._check_value(len(devices) == 1, lambda: f"inputs are on different devices: {devices}")


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


# Autograd. The C++ ops have no autograd of their own; each gets an Autograd kernel here:
# - reverse mode through an autograd.Function whose backward is the fused backward op;
# - a backward op that is itself differentiated (create_graph=True: gradient penalties,
#   Hessian-vector products, gradgradcheck) runs as reference.py's formula of it, in torch ops
#   that autograd differentiates to any order (same values to rounding, not fused);
# - forward mode (torch.autograd.forward_ad): the outputs are the fused op's, their tangents
#   those of the reference, which torch differentiates in forward mode;
# - under torch.func transforms (grad, jvp, vmap, hessian, ...): the reference, which they
#   differentiate (an autograd.Function cannot be applied from inside the dispatcher there).
# torch.library.register_autograd covers the first only: its forward mode silently returns zero
# tangents, and torch.func.grad fails.

_library = torch.library.Library("dynbatch_ext", "IMPL")


def _has_tangents(args) -> bool:
    """Whether any argument is a forward-mode dual tensor."""
    return any(isinstance(t, Tensor) and fwAD.unpack_dual(t).tangent is not None for t in args)


def _primals(args) -> list:
    return [fwAD.unpack_dual(t).primal if isinstance(t, Tensor) else t for t in args]


def _with_tangents(outputs, tangents_from):
    """`outputs` (a tensor or tuple) made dual with the tangents of the same-shaped
    `tangents_from`."""
    if isinstance(outputs, Tensor):
        return _with_tangents((outputs,), (tangents_from,))[0]
    duals = []
    for out, source in zip(outputs, tangents_from):
        tangent = fwAD.unpack_dual(source).tangent
        duals.append(out if tangent is None else fwAD.make_dual(out, tangent))
    return tuple(duals)


def _register_forward(name: str, reverse: type[torch.autograd.Function], formula) -> None:
    """The Autograd kernel of forward op `name`: reverse mode through `reverse`, forward mode
    through `formula` (its reference)."""
    op = getattr(_ops, name).default

    def kernel(keyset, *args):
        if transforms_active():  # torch.func: it differentiates formula
            return formula(*args)
        if _has_tangents(args):
            return _with_tangents(kernel(keyset, *_primals(args)), formula(*args))
        if torch.is_grad_enabled() and any_requires_grad(*args):
            return reverse.apply(keyset, *args)
        return below_autograd(op, keyset, args)

    register_autograd_kernel(_library, name, kernel)


def _register_backward(name: str, formula) -> None:
    """The Autograd kernel of backward op `name`: the fused kernel, or `formula` (reference.py's
    differentiable formula of it) whenever the result is itself to be differentiated."""
    op = getattr(_ops, name).default

    def kernel(keyset, *args):
        differentiated = torch.is_grad_enabled() and any_requires_grad(*args)
        if differentiated or transforms_active() or _has_tangents(args):
            return formula(*args)
        return below_autograd(op, keyset, args)

    register_autograd_kernel(_library, name, kernel)


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


class _MaskedPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, keyset, x, len_x):
        ctx.save_for_backward(x, len_x)
        return below_autograd(_ops.masked_pool.default, keyset, (x, len_x))

    @staticmethod
    def backward(ctx, grad_out):
        x, len_x = ctx.saved_tensors
        return None, _ops.masked_pool_backward(grad_out, x, len_x), None


_register_forward("soft_align", _SoftAlign, reference.soft_align)
_register_forward("masked_pool", _MaskedPool, reference.masked_pool)
_register_backward("soft_align_backward", reference.soft_align_backward)
_register_backward("masked_pool_backward", reference.masked_pool_backward)
