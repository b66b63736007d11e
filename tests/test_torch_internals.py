"""Pins what `ops/torch_internals.py` needs from torch's private APIs, on an op of the test's
own: when a torch upgrade changes one of them, this fails by name before the fused ops'
autograd does in a less obvious way."""
from __future__ import annotations

import torch

from dynbatch_ext.ops.torch_internals import (any_requires_grad, below_autograd,
                                              register_autograd_kernel, transforms_active)

_definitions = torch.library.Library("dynbatch_ext_internals_test", "DEF")
_definitions.define("twice(Tensor x) -> Tensor")
_definitions.impl("twice", lambda x: x * 2, "CPU")
_op = torch.ops.dynbatch_ext_internals_test.twice.default
_seen = []


def _autograd_kernel(keyset, x):
    _seen.append((keyset, transforms_active()))
    return below_autograd(_op, keyset, (x,))


register_autograd_kernel(_definitions, "twice", _autograd_kernel)


def test_the_autograd_kernel_gets_the_keyset_and_below_it_no_graph_is_recorded():
    _seen.clear()
    x = torch.arange(3.0, requires_grad=True)
    out = _op(x)
    assert torch.equal(out, torch.tensor([0.0, 2.0, 4.0]))
    assert out.grad_fn is None and not out.requires_grad  # the CPU kernel ran beneath Autograd
    keyset, active = _seen[-1]
    assert isinstance(keyset, torch._C.DispatchKeySet) and keyset.has(torch._C.DispatchKey.CPU)
    assert not active


def test_transforms_active_is_true_inside_torch_func_and_false_outside():
    assert not transforms_active()
    seen = []
    torch.func.grad(lambda x: (seen.append(transforms_active()), x.sin().sum())[1])(torch.ones(2))
    torch.func.vmap(lambda x: (seen.append(transforms_active()), x * 2)[1])(torch.ones(2, 3))
    assert seen == [True, True]
    assert not transforms_active()


def test_any_requires_grad_looks_at_tensors_only():
    plain, tracked = torch.ones(2), torch.ones(2, requires_grad=True)
    assert not any_requires_grad(plain, 3, None)
    assert any_requires_grad(plain, tracked, "x")
    assert not any_requires_grad()
