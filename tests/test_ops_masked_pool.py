"""masked_pool: the fused op against its float64 reference, its gradients, its registration."""
from __future__ import annotations

import pytest
import torch
from op_cases import DEVICES, exact_rtol, pair_batch, to_device
from torch.autograd import gradcheck

from dynbatch_ext import ops, reference

OP = torch.ops.dynbatch_ext.masked_pool.default


def sequences(lengths=(3, 1, 0, 5, 2), dim=6, dtype=torch.float64, seed=0, requires_grad=False):
    a, _, len_a, _ = pair_batch([(n, 1) for n in lengths], dim=dim, dtype=dtype, seed=seed)
    return a.requires_grad_(requires_grad), len_a


def test_gradcheck_float64():
    x, len_x = sequences(requires_grad=True)
    assert gradcheck(lambda t: ops.masked_pool(t, len_x), (x,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, None), (torch.float32, 1e-5)])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_matches_reference(device, dtype, rtol, scale):
    x, len_x = sequences(lengths=(4, 1, 0, 7, 7, 2), dim=333, dtype=dtype)
    x, len_x = to_device(device, x * scale, len_x)
    x.requires_grad_()
    rtol = rtol or exact_rtol(device)
    x64 = x.detach().double().requires_grad_()
    got, want = ops.masked_pool(x, len_x), reference.masked_pool(x64, len_x)
    upstream = torch.randn_like(want)
    got.backward(upstream.to(x.dtype))
    want.backward(upstream)
    for a, b in ((got, want), (x.grad, x64.grad)):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a.double(), b, rtol=rtol, atol=rtol * float(b.detach().abs().max()))


@pytest.mark.parametrize("device", DEVICES)
def test_zero_length_rows_are_zero_and_get_no_gradient(device):
    x, len_x = to_device(device, *sequences(lengths=(0, 0), requires_grad=True))
    out = ops.masked_pool(x, len_x)
    assert (out == 0).all()
    out.sum().backward()
    assert (x.grad == 0).all()


@pytest.mark.parametrize("device", DEVICES)
def test_max_gradient_goes_to_the_first_argmax(device):
    x = torch.tensor([[[1.0, 5.0], [3.0, 5.0], [3.0, 2.0], [9.0, 9.0]]], device=device, requires_grad=True)
    out = ops.masked_pool(x, torch.tensor([3], device=device))  # the 9s are padding
    torch.testing.assert_close(out.cpu(), torch.tensor([[7 / 3, 4.0, 3.0, 5.0]]))
    out[0, 2:].sum().backward()  # the max half only
    torch.testing.assert_close(x.grad[0].cpu(), torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))


@pytest.mark.parametrize("device", DEVICES)
def test_nan_counts_as_the_largest_value(device):
    x = torch.tensor([[[1.0], [float("nan")], [7.0], [float("nan")]]], device=device, requires_grad=True)
    out = ops.masked_pool(x, torch.tensor([4], device=device))
    assert torch.isnan(out[0, 1])  # max, as torch.max
    out[0, 1].backward()
    torch.testing.assert_close(x.grad[0, :, 0].cpu(), torch.tensor([0.0, 1.0, 0.0, 0.0]))  # the first NaN


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_input(device):
    x, len_x = to_device(device, *sequences(dim=8))
    strided = torch.stack([x, -x], dim=3)[..., 0]  # the values of x, every other element
    assert not strided.is_contiguous()
    torch.testing.assert_close(ops.masked_pool(strided, len_x), reference.masked_pool(x, len_x))


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda x, n: (x, n + 9), ValueError, "len_x holds 14, longer than the padded x dimension"),
        (lambda x, n: (x, n - 9), ValueError, "len_x holds -9"),
        (lambda x, n: (x[0], n), ValueError, r"x must have shape \(B, L, d\)"),
        (lambda x, n: (x, n[:2]), ValueError, "len_x has 2 entries but the batch has 5"),
        (lambda x, n: (x.int(), n), TypeError, "x must be a floating-point tensor"),
        (lambda x, n: (x.to(torch.float8_e4m3fn), n), TypeError,
         "masked_pool on CPU supports Float, Double, BFloat16, Half; got Float8_e4m3fn"),
        (lambda x, n: (x, n.float()), TypeError, "len_x must be int64"),
    ],
)  # fmt: skip
def test_bad_inputs(change, error, message):
    with pytest.raises(error, match=message):
        ops.masked_pool(*change(*sequences()))
