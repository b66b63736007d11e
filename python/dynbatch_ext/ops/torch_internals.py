"""The private torch APIs the ops' Autograd kernels stand on, and nothing else.

torch's public `register_autograd` has no forward mode (it silently returns zero tangents) and
fails under torch.func, so `registration.py` registers Autograd kernels of its own, which need
these. They are the code most likely to break on a torch upgrade, so they live here, each behind
a name that says what it is used for, and `tests/test_torch_internals.py` pins that behaviour:
an upgrade that changes one fails there first, by name.
"""
from __future__ import annotations

from typing import Callable

import torch


def below_autograd(op, keyset, args):
    """Runs `op` (an OpOverload) on `args` with the dispatch keys after Autograd: the kernel
    beneath it (CPU, CUDA, fake), recording no graph."""
    with torch._C._AutoDispatchBelowAutograd():
        return op.redispatch(keyset & torch._C._after_autograd_keyset, *args)


def transforms_active() -> bool:
    """Whether a torch.func transform (grad, jvp, vmap, ...) is active around this call."""
    return torch._C._are_functorch_transforms_active()


def any_requires_grad(*args) -> bool:
    """Whether any tensor among `args` requires grad (non-tensors ignored)."""
    return torch._C._any_requires_grad(*args)


def register_autograd_kernel(library: torch.library.Library, name: str, kernel: Callable) -> None:
    """Registers `kernel(keyset, *args)` as op `name`'s Autograd kernel: the dispatcher hands it
    the keyset it was called with, for `below_autograd`."""
    library.impl(name, kernel, "Autograd", with_keyset=True)
