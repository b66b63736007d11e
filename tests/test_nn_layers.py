"""The nn layers: fused and reference paths agree; the folded enhancement equals concat + linear."""
from __future__ import annotations

import torch
from op_cases import pair_batch

from dynbatch_ext import nn as dnn
from dynbatch_ext import reference


def test_enhanced_projection_equals_concatenate_then_linear():
    torch.manual_seed(0)
    layer = dnn.EnhancedProjection(in_features=9, out_features=5).double()
    x = torch.randn(3, 4, 9, dtype=torch.float64, requires_grad=True)
    x_tilde = torch.randn(3, 4, 9, dtype=torch.float64, requires_grad=True)
    folded = layer(x, x_tilde)
    plain = reference.enhance_and_project(x, x_tilde, layer.linear.weight, layer.linear.bias)
    torch.testing.assert_close(folded, plain, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(plain)
    grads_folded = torch.autograd.grad(folded, (x, x_tilde, layer.linear.weight, layer.linear.bias), upstream)
    grads_plain = torch.autograd.grad(plain, (x, x_tilde, layer.linear.weight, layer.linear.bias), upstream)
    for got, want in zip(grads_folded, grads_plain):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    layer.fused = False
    torch.testing.assert_close(layer(x, x_tilde), plain)


def test_enhanced_projection_without_bias():
    layer = dnn.EnhancedProjection(4, 3, bias=False)
    x, x_tilde = torch.randn(2, 4), torch.randn(2, 4)
    torch.testing.assert_close(layer(x, x_tilde), reference.enhance_and_project(x, x_tilde, layer.linear.weight, None))


def test_modules_fused_and_reference_agree():
    a, b, len_a, len_b = pair_batch(requires_grad=True)
    for fused in (True, False):
        align, pool = dnn.SoftAlignment(fused=fused), dnn.MaskedPooling(fused=fused)
        a_tilde, b_tilde = align(a, b, len_a, len_b)
        out = torch.cat([pool(a_tilde, len_a), pool(b_tilde, len_b)], dim=1)
        if fused:
            expected = out
        else:
            torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
