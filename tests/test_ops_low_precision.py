"""float16/bfloat16 kernels (CPU and CUDA, accumulating in float32), judged the flash-attention
way: against the float64 reference, their error is at most twice that of the PyTorch reference
run in the same precision."""
from __future__ import annotations

import pytest
import torch
from op_cases import DEVICES, OP_CASES, assert_no_worse_than_reference, random_lengths

from dynbatch_ext import ops


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
