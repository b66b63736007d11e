"""The fused ops under every kind of differentiation: second (and higher) derivatives, forward
mode, and torch.func's transforms, each checked in float64 against finite differences or the
pure PyTorch reference; never a silent zero."""
from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from op_cases import EDGE_LENGTHS, OP_CASES, pair_batch, random_lengths
from torch.autograd import gradcheck, gradgradcheck
from torch.utils._python_dispatch import TorchDispatchMode

from dynbatch_ext import ops, reference

SOFT_ALIGN_BACKWARD = torch.ops.dynbatch_ext.soft_align_backward
MASKED_POOL_BACKWARD = torch.ops.dynbatch_ext.masked_pool_backward


def pooled_pair(align, pool):
    """A scalar that needs both ops and is not linear in either (so second derivatives show)."""
    def loss(a, b, len_a, len_b):
        a_tilde, b_tilde = align(a, b, len_a, len_b)
        return (pool(a_tilde, len_a).pow(2).sum() + pool(b_tilde, len_b).pow(2).sum()
                + (a_tilde * b_tilde.sum(1, keepdim=True)).sum())  # fmt: skip

    return loss


FUSED, REFERENCE = pooled_pair(ops.soft_align, ops.masked_pool), pooled_pair(reference.soft_align, reference.masked_pool)


@pytest.mark.parametrize("case", OP_CASES)
def test_gradgradcheck(case):
    assert gradgradcheck(*case.of_floats(case.sample(dim=3, requires_grad=True)))


@pytest.mark.parametrize("case", OP_CASES)
def test_forward_mode_gradcheck(case):
    assert gradcheck(*case.of_floats(case.sample(dim=3, requires_grad=True)), check_forward_ad=True)


@pytest.mark.parametrize("case", OP_CASES)
def test_forward_ad_tangents_of_each_op_match_the_reference(case):
    args = case.sample(random_lengths(7, 6, 5, seed=2), dim=4)
    f, floats = case.of_floats(args)
    tangents = tuple(torch.randn_like(t) for t in floats)
    with fwAD.dual_level():
        outputs = f(*(fwAD.make_dual(t, dt) for t, dt in zip(floats, tangents)))
        got = [fwAD.unpack_dual(o) for o in (outputs if isinstance(outputs, tuple) else (outputs,))]
    _, want = torch.func.jvp(case.of_floats(args, case.reference)[0], floats, tangents)
    plain = f(*floats)
    for (primal, tangent), expected, own in zip(got, want if isinstance(want, tuple) else (want,),
                                                plain if isinstance(plain, tuple) else (plain,)):
        assert tangent is not None and tangent.abs().max() > 0
        torch.testing.assert_close(tangent, expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(primal, own, rtol=0, atol=0)  # the fused op's own outputs


def test_second_derivative_is_not_zero_and_matches_the_reference():
    # A Hessian-vector product through autograd's double backward: the quantity a gradient
    # penalty or a meta-learning step differentiates.
    a, b, len_a, len_b = pair_batch(random_lengths(6, 5, 4, seed=1), dim=5)
    direction = torch.randn_like(a)
    products = []
    for loss in (FUSED, REFERENCE):
        x = a.clone().requires_grad_()
        (grad,) = torch.autograd.grad(loss(x, b, len_a, len_b), x, create_graph=True)
        (product,) = torch.autograd.grad(grad, x, direction)
        products.append(product)
    assert products[0].abs().max() > 1e-3
    torch.testing.assert_close(products[0], products[1], rtol=1e-10, atol=1e-10)


def test_third_derivative_matches_the_reference():
    a, b, len_a, len_b = pair_batch([(3, 2), (2, 3)], dim=2)
    results = []
    for align in (ops.soft_align, reference.soft_align):
        x = a.clone().requires_grad_()
        out = align(x, b, len_a, len_b)[0].pow(3).sum()
        (g,) = torch.autograd.grad(out, x, create_graph=True)
        (gg,) = torch.autograd.grad(g.sum(), x, create_graph=True)
        (ggg,) = torch.autograd.grad(gg.pow(2).sum(), x)
        results.append(ggg)
    torch.testing.assert_close(results[0], results[1], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("transform", ["grad", "jvp", "hessian", "jacrev", "vmap"])
def test_torch_func_transforms_match_the_reference(transform):
    a, b, len_a, len_b = pair_batch([(3, 2), (1, 3), (0, 2)], dim=3)

    def run(loss):
        f = lambda x: loss(x, b, len_a, len_b)  # noqa: E731
        if transform == "grad":
            return torch.func.grad(f)(a)
        if transform == "jvp":
            return torch.func.jvp(f, (a,), (torch.ones_like(a),))[1]
        if transform == "hessian":
            return torch.func.hessian(f)(a)
        if transform == "jacrev":
            return torch.func.jacrev(lambda x: (ops if loss is FUSED else reference).soft_align(
                x, b, len_a, len_b)[0])(a)  # fmt: skip
        return torch.vmap(lambda x: (ops if loss is FUSED else reference).masked_pool(
            x[None], len_a[:1]))(a)  # fmt: skip

    torch.testing.assert_close(run(FUSED), run(REFERENCE), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("lengths", [EDGE_LENGTHS, random_lengths(9, 30, 17, seed=4)])
def test_backward_op_formulas_equal_the_fused_backward_ops(lengths):
    # reference.soft_align_backward and masked_pool_backward are what higher-order autograd
    # differentiates: they must compute what the fused backward ops do, padding (NaN here)
    # never read.
    a, b, len_a, len_b = pair_batch(lengths, dim=6, seed=3)
    g_a, g_b = torch.randn_like(a), torch.randn_like(b)
    for t, n in ((a, len_a), (b, len_b), (g_a, len_a), (g_b, len_b)):
        for row, length in enumerate(n.tolist()):
            t[row, length:] = float("nan")
    fused = SOFT_ALIGN_BACKWARD(g_a, g_b, a, b, len_a, len_b)
    formula = reference.soft_align_backward(g_a, g_b, a, b, len_a, len_b)
    for got, want in zip(fused, formula):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    grad_out = torch.randn(a.shape[0], 2 * a.shape[2], dtype=a.dtype)
    torch.testing.assert_close(MASKED_POOL_BACKWARD(grad_out, a, len_a),
                               reference.masked_pool_backward(grad_out, a, len_a), rtol=1e-12, atol=1e-12)


class OpLog(TorchDispatchMode):
    """The ops that run below autograd, by name."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.name())
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("create_graph", [False, True])
def test_only_a_differentiated_backward_runs_as_the_formula(create_graph):
    a, b, len_a, len_b = pair_batch(dim=3, requires_grad=True)
    loss = FUSED(a, b, len_a, len_b)
    with OpLog() as log:
        torch.autograd.grad(loss, (a, b), create_graph=create_graph)
    fused = {"dynbatch_ext::soft_align_backward", "dynbatch_ext::masked_pool_backward"}
    # First order: the fused backward ops; differentiable (create_graph): the formulas' torch ops.
    assert fused.isdisjoint(log.names) == create_graph
    assert ("aten::_softmax" in log.names) == create_graph
