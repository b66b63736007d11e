"""float16/bfloat16 CUDA kernels, judged the flash-attention way: against the float64
reference, their error is at most twice that of the PyTorch reference run in the same precision."""
from __future__ import annotations

import pytest
import torch
from op_cases import HAS_CUDA, pair_batch, random_lengths

from dynbatch_ext import ops, reference

pytestmark = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device and a CUDA build of dynbatch_ext")


def outputs_and_grads(fn, inputs, upstream):
    """fn's outputs and the gradients of sum(output * upstream) w.r.t. the float inputs."""
    leaves = [t.detach().clone().requires_grad_() if t.is_floating_point() else t for t in inputs]
    outs = fn(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o.float() * u).sum() for o, u in zip(outs, upstream))
    grads = torch.autograd.grad(loss, [t for t in leaves if t.is_floating_point()])
    return [t.double() for t in (*outs, *grads)]


def assert_no_worse_than_reference(fused, plain, inputs):
    low = [t.cuda() for t in inputs]
    exact = [t.double() if t.is_floating_point() else t for t in low]
    probe = plain(*exact)
    probe = probe if isinstance(probe, tuple) else (probe,)
    upstream = [torch.randn(p.shape, device="cuda") for p in probe]
    want = outputs_and_grads(plain, exact, upstream)
    got = outputs_and_grads(fused, low, upstream)
    same_precision = outputs_and_grads(plain, low, upstream)
    for g, s, w in zip(got, same_precision, want):
        kernel_error = (g - w).abs().max().item()
        reference_error = (s - w).abs().max().item()
        assert kernel_error <= 2 * reference_error + 1e-6, (kernel_error, reference_error)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("batch, dim", [(16, 64), (8, 600)])
def test_soft_align_low_precision(dtype, batch, dim):
    lengths = random_lengths(batch, 40, 20, seed=dim)
    a, b, len_a, len_b = pair_batch(lengths, dim=dim, dtype=torch.float32, scale=0.2, seed=2)
    assert_no_worse_than_reference(ops.soft_align, reference.soft_align,
                                   [a.to(dtype), b.to(dtype), len_a, len_b])  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_masked_pool_low_precision(dtype):
    lengths = random_lengths(32, 50, 1, seed=5)
    x, _, len_x, _ = pair_batch(lengths, dim=600, dtype=torch.float32, seed=3)
    assert_no_worse_than_reference(ops.masked_pool, reference.masked_pool, [x.to(dtype), len_x])
