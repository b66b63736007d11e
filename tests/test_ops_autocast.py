"""The fused ops under torch.autocast run in the autocast dtype, as torch's matmul-like ops do,
and ESIM trains under CPU bfloat16 autocast."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from op_cases import DEVICES, OP_CASES, pair_batch, to_device

from dynbatch_ext import ops
from dynbatch_ext.nn import ESIM
from dynbatch_ext.training.precision import autocast_problem

AUTOCAST_DTYPES = {"cpu": torch.bfloat16, "cuda": torch.float16}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_ops_run_in_the_autocast_dtype(device, dtype):
    a, b, len_a, len_b = to_device(device, *pair_batch(dtype=torch.float32, requires_grad=True))
    with torch.autocast(device, dtype=dtype):
        a_tilde, b_tilde = ops.soft_align(a, b, len_a, len_b)
        pooled = ops.masked_pool(a_tilde, len_a)
    assert a_tilde.dtype == b_tilde.dtype == pooled.dtype == dtype
    expected = ops.soft_align(a.to(dtype), b.to(dtype), len_a, len_b)
    torch.testing.assert_close(a_tilde, expected[0], rtol=0, atol=0)
    pooled.float().sum().backward()  # gradients reach the float32 leaves in float32
    assert a.grad.dtype == torch.float32 and torch.isfinite(a.grad).all()


@pytest.mark.parametrize("device", DEVICES)
def test_mixed_input_dtypes_are_cast_like_autocast_casts_them(device):
    a, b, len_a, len_b = to_device(device, *pair_batch(dtype=torch.float32))
    dtype = AUTOCAST_DTYPES[device]
    with torch.autocast(device, dtype=dtype):
        a_tilde, _ = ops.soft_align(a, b.to(dtype), len_a, len_b)  # float32 with a low one
    assert a_tilde.dtype == dtype
    with torch.autocast(device, dtype=dtype), pytest.raises(TypeError, match="same dtype"):
        ops.soft_align(a.double(), b, len_a, len_b)  # float64 is left alone, as autocast does


@pytest.mark.parametrize("case", OP_CASES)
def test_float64_is_left_alone(case):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = case.op(*case.sample())
    assert all(o.dtype == torch.float64 for o in (outputs if isinstance(outputs, tuple) else (outputs,)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", OP_CASES)
def test_each_op_runs_in_the_autocast_dtype_and_matches_the_op_on_cast_inputs(case, device):
    dtype = AUTOCAST_DTYPES[device]
    args = to_device(device, *case.sample(dtype=torch.float32))
    with torch.autocast(device, dtype=dtype):
        outputs = case.op(*args)
    expected = case.op(*(t.to(dtype) if t.is_floating_point() else t for t in args))
    for got, want in zip(*(o if isinstance(o, tuple) else (o,) for o in (outputs, expected))):
        assert got.dtype == dtype
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_esim_trains_under_cpu_bfloat16_autocast():
    problem = autocast_problem("bfloat16", torch.device("cpu"))
    if problem is not None:  # tests/test_training.py checks the refusal itself
        pytest.skip(problem)
    torch.manual_seed(0)
    model = ESIM(60, embedding_dim=16, hidden_size=16, dropout=0.0, fused=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    premise, hypothesis = torch.randint(2, 60, (12, 9)), torch.randint(2, 60, (12, 6))
    len_p, len_h = torch.randint(1, 10, (12,)), torch.randint(0, 7, (12,))
    labels = torch.randint(0, 3, (12,))
    losses = []
    for _ in range(25):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(premise, len_p, hypothesis, len_h)
            loss = F.cross_entropy(logits, labels)
        assert logits.dtype == torch.bfloat16
        optimizer.zero_grad()
        loss.backward()
        assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
                   for p in model.parameters() if p.grad is not None)  # fmt: skip
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]  # it learns the batch
