"""How a C++ op becomes a first-class torch op, for every op's module to call: its Autograd
kernel in reverse mode, to any order, and in forward mode (`register_forward`,
`register_backward`), and the device check of its fake kernel (`check_same_device`). Each op's
fake (meta) kernel, which torch.compile, torch.export and torch.library.opcheck trace with, is
in its own module; autocast is registered in C++ (csrc/ops/<op>.cpp).
"""
from __future__ import annotations

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

from .. import _C  # noqa: F401  (registers the schemas and kernels)
from .torch_internals import (any_requires_grad, below_autograd, register_autograd_kernel,
                              transforms_active)

_ops = torch.ops.dynbatch_ext


def check_same_device(*tensors: Tensor) -> None:
    """The fake kernels' check: the kernels take every input on one device."""
    devices = {t.device for t in tensors}
    torch._check_value(len(devices) == 1, lambda: f"inputs are on different devices: {devices}")


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


def register_forward(name: str, reverse: type[torch.autograd.Function], formula) -> None:
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


def register_backward(name: str, formula) -> None:
    """The Autograd kernel of backward op `name`: the fused kernel, or `formula` (reference.py's
    differentiable formula of it) whenever the result is itself to be differentiated."""
    op = getattr(_ops, name).default

    def kernel(keyset, *args):
        differentiated = torch.is_grad_enabled() and any_requires_grad(*args)
        if differentiated or transforms_active() or _has_tangents(args):
            return formula(*args)
        return below_autograd(op, keyset, args)

    register_autograd_kernel(_library, name, kernel)
