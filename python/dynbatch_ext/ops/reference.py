"""Pure PyTorch references of the fused ops and of their backward ops, with exactly their
semantics.

Tests and benchmarks compare the C++/CUDA kernels against these, and autograd differentiates the
backward formulas when a backward op is itself differentiated (ops/registration.py). Masking is
exact: padded positions take no part (padded rows are zeroed before they meet a valid one, so
that NaN or inf in the padding changes nothing, as in the kernels, which never read them), padded
scores are excluded from the max and the sum (filled with -inf, never multiplied by a mask, which
breaks when every valid score is very negative), and rows with nothing to attend to are zero
without a NaN on the way.
"""
from __future__ import annotations

import torch
from torch import Tensor


def length_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, max_len) bool, True at valid positions."""
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def _valid_rows(x: Tensor, lengths: Tensor) -> Tensor:
    """x (B, L, d) with the rows past each length set to 0."""
    return torch.where(length_mask(lengths, x.shape[1])[:, :, None], x, 0.0)


def _masked_softmax(scores: Tensor, valid: Tensor, dim: int) -> Tensor:
    """Softmax over `dim` of the valid scores; all-invalid slices give zeros, not NaN."""
    any_valid = valid.any(dim=dim, keepdim=True)
    # Slices with no valid entry are filled with 0 before the softmax (so no -inf - -inf) and
    # zeroed after; the others have their padded entries at -inf, which exp sends to exactly 0.
    filled = scores.masked_fill(~valid, float("-inf")).masked_fill(~any_valid, 0.0)
    return torch.softmax(filled, dim=dim).masked_fill(~any_valid, 0.0)


def _probabilities(a: Tensor, b: Tensor, len_a: Tensor, len_b: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column softmaxes (B, La, Lb) of the scores a b^T over the valid block; a and b
    already have their padded rows zeroed."""
    valid = length_mask(len_a, a.shape[1])[:, :, None] & length_mask(len_b, b.shape[1])[:, None, :]
    scores = a @ b.transpose(1, 2)
    return _masked_softmax(scores, valid, dim=2), _masked_softmax(scores, valid, dim=1)


def soft_align(a: Tensor, b: Tensor, len_a: Tensor, len_b: Tensor) -> tuple[Tensor, Tensor]:
    """Reference of dynbatch_ext.ops.soft_align: a (B, La, d), b (B, Lb, d), lengths (B,)."""
    a, b = _valid_rows(a, len_a), _valid_rows(b, len_b)
    to_b, to_a = _probabilities(a, b, len_a, len_b)  # each a_i over the b_j; each b_j over the a_i
    return to_b @ b, to_a.transpose(1, 2) @ a


def soft_align_backward(grad_a_tilde: Tensor, grad_b_tilde: Tensor, a: Tensor, b: Tensor,
                        len_a: Tensor, len_b: Tensor) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Reference of the soft_align_backward op: the gradients of a and b. With P and Q the row
    and column softmaxes of S = A B^T, a~ = P B and b~ = Q^T A:
    dS = P o (dP - rowsum(dP o P)) + Q o (dQ - colsum(dQ o Q)), dP = gA~ B^T, dQ = A gB~^T;
    grad_a = dS B + Q gB~, grad_b = dS^T A + P^T gA~."""
    a, b = _valid_rows(a, len_a), _valid_rows(b, len_b)
    g_a, g_b = _valid_rows(grad_a_tilde, len_a), _valid_rows(grad_b_tilde, len_b)
    p, q = _probabilities(a, b, len_a, len_b)
    d_p, d_q = g_a @ b.transpose(1, 2), a @ g_b.transpose(1, 2)
    d_s = p * (d_p - (d_p * p).sum(dim=2, keepdim=True))
    d_s = d_s + q * (d_q - (d_q * q).sum(dim=1, keepdim=True))
    return d_s @ b + q @ g_b, d_s.transpose(1, 2) @ a + p.transpose(1, 2) @ g_a


def masked_pool(x: Tensor, len_x: Tensor) -> Tensor:
    """Reference of dynbatch_ext.ops.masked_pool: x (B, L, d), len_x (B,) -> (B, 2d)."""
    if x.shape[1] == 0:  # no positions at all: max() has nothing to reduce
        return x.new_zeros(x.shape[0], 2 * x.shape[2])
    valid = length_mask(len_x, x.shape[1])[:, :, None]  # (B, L, 1)
    total = torch.where(valid, x, 0.0).sum(dim=1)
    mean = total / len_x.clamp(min=1)[:, None].to(x.dtype)
    # torch.max returns (and sends the gradient to) the first arg-max.
    largest = torch.where(valid, x, float("-inf")).max(dim=1).values
    largest = torch.where((len_x > 0)[:, None], largest, 0.0)
    return torch.cat([mean, largest], dim=1)


def masked_pool_backward(grad_out: Tensor, x: Tensor, len_x: Tensor) -> Tensor:
    """Reference of the masked_pool_backward op: grad_out (B, 2d) -> the gradient of x: the
    mean's gradient spread over the valid positions, the max's at the first arg-max."""
    dim = x.shape[2]
    g_mean, g_max = grad_out[:, :dim], grad_out[:, dim:]
    valid = length_mask(len_x, x.shape[1])[:, :, None]
    spread = torch.where(valid, (g_mean / len_x.clamp(min=1)[:, None].to(x.dtype))[:, None], 0.0)
    if x.shape[1] == 0:
        return spread
    where = torch.where(valid, x, float("-inf")).max(dim=1).indices  # (B, d)
    at_max = torch.zeros_like(x).scatter(1, where[:, None], g_max[:, None])
    return spread + torch.where((len_x > 0)[:, None, None], at_max, 0.0)


def enhance_and_project(x: Tensor, x_tilde: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """ESIM's enhancement the plain way: `[x; x~; x - x~; x * x~]` then a linear map."""
    enhanced = torch.cat([x, x_tilde, x - x_tilde, x * x_tilde], dim=-1)
    return torch.nn.functional.linear(enhanced, weight, bias)
