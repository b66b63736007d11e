"""Pure PyTorch references of the fused ops, with exactly their semantics.

Tests and benchmarks compare the C++/CUDA kernels against these. Masking is exact: padded scores
are excluded from the max and the sum (filled with -inf, never multiplied by a mask, which breaks
when every valid score is very negative), and rows with nothing to attend to are zero without a
NaN on the way.
"""
from __future__ import annotations

import torch
from torch import Tensor


def length_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, max_len) bool, True at valid positions."""
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def _masked_softmax(scores: Tensor, valid: Tensor, dim: int) -> Tensor:
    """Softmax over `dim` of the valid scores; all-invalid slices give zeros, not NaN."""
    any_valid = valid.any(dim=dim, keepdim=True)
    # Slices with no valid entry are filled with 0 before the softmax (so no -inf - -inf) and
    # zeroed after; the others have their padded entries at -inf, which exp sends to exactly 0.
    filled = scores.masked_fill(~valid, float("-inf")).masked_fill(~any_valid, 0.0)
    return torch.softmax(filled, dim=dim).masked_fill(~any_valid, 0.0)


def soft_align(a: Tensor, b: Tensor, len_a: Tensor, len_b: Tensor) -> tuple[Tensor, Tensor]:
    """Reference of dynbatch_ext.ops.soft_align: a (B, La, d), b (B, Lb, d), lengths (B,)."""
    valid_a = length_mask(len_a, a.shape[1])  # (B, La)
    valid_b = length_mask(len_b, b.shape[1])  # (B, Lb)
    scores = a @ b.transpose(1, 2)  # (B, La, Lb)
    valid = valid_a[:, :, None] & valid_b[:, None, :]
    to_b = _masked_softmax(scores, valid, dim=2)  # each a_i over the b_j
    to_a = _masked_softmax(scores, valid, dim=1)  # each b_j over the a_i
    return to_b @ b, to_a.transpose(1, 2) @ a


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


def enhance_and_project(x: Tensor, x_tilde: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """ESIM's enhancement the plain way: `[x; x~; x - x~; x * x~]` then a linear map."""
    enhanced = torch.cat([x, x_tilde, x - x_tilde, x * x_tilde], dim=-1)
    return torch.nn.functional.linear(enhanced, weight, bias)
