"""float16/bfloat16 kernels (CPU and CUDA, accumulating in float32), judged the flash-attention
way: against the float64 reference, their error is at most twice that of the PyTorch reference
run in the same precision."""
from __future__ import annotations

import pytest
import torch
from op_cases import DEVICES, OP_CASES, random_lengths

from dynbatch_ext import ops


def outputs_and_grads(fn, inputs, upstream):
    """fn's outputs and the gradients of sum(output * upstream) w.r.t. the float inputs."""
    leaves = [t.detach().clone().requires_grad_() if t.is_floating_point() else t for t in inputs]
    outs = fn(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o.float() * u).sum() for o, u in zip(outs, upstream))
    grads = torch.autograd.grad(loss, [t for t in leaves if t.is_floating_point()])
    return [t.double() for t in (*outs, *grads)]


def assert_no_worse_than_reference(fused, plain, inputs, device):
    low = [t.to(device) for t in inputs]
    exact = [t.double() if t.is_floating_point() else t for t in low]
    probe = plain(*exact)
    probe = probe if isinstance(probe, tuple) else (probe,)
    upstream = [torch.randn(p.shape, device=device) for p in probe]
    want = outputs_and_grads(plain, exact, upstream)
    got = outputs_and_grads(fused, low, upstream)
    same_precision = outputs_and_grads(plain, low, upstream)
    for g, s, w in zip(got, same_precision, want):
        kernel_error = (g - w).abs().max().item()
        reference_error = (s - w).abs().max().item()
        assert kernel_error <= 2 * reference_error + 1e-6, (kernel_error, reference_error)


@pytest.mark.parametrize("case", OP_CASES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("batch, dim", [(16, 64), (32, 600)])
def test_low_precision_no_worse_than_the_reference(case, device, dtype, batch, dim):
    # Lengths past a 32-wide tile on one side; scores of a few units at d = 600.
    args = case.sample(random_lengths(batch, 50, 20, seed=dim), dim=dim, dtype=torch.float32)
    low = [(t * 0.2).to(dtype) if t.is_floating_point() else t for t in args]
    assert_no_worse_than_reference(case.op, case.reference, low, device)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cpu_conversions_are_torchs(dtype):
    # Every 16-bit pattern through the pool of one position comes back as it went in (NaN as
    # NaN); and the mean of two values, exact in float32, is rounded as torch rounds it.
    every = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(dtype)
    pooled = ops.masked_pool(every.reshape(1, 1, -1), torch.tensor([1]))[0]
    for half in pooled.split(every.numel()):
        same = half.view(torch.int16) == every.view(torch.int16)
        assert (same | (torch.isnan(half) & torch.isnan(every))).all()
    pairs = every[~torch.isnan(every)]
    x = torch.stack([pairs, pairs.roll(1)])[None]  # (1, 2, n): the mean of neighbours
    want = ((x[0, 0].float() + x[0, 1].float()) / 2).to(dtype)
    got = ops.masked_pool(x, torch.tensor([2]))[0, : pairs.numel()]
    assert torch.equal(got.view(torch.int16), want.view(torch.int16))
