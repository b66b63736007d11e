"""Layers of ESIM: soft alignment, masked pooling and the folded enhancement projection."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import ops
from ..ops import reference


class SoftAlignment(nn.Module):
    """ESIM local inference: `(a, b, len_a, len_b) -> (a_tilde, b_tilde)`, see ops.soft_align."""

    def __init__(self, fused: bool = True):
        super().__init__()
        self.fused = fused

    def forward(self, a: Tensor, b: Tensor, len_a: Tensor, len_b: Tensor) -> tuple[Tensor, Tensor]:
        impl = ops.soft_align if self.fused else reference.soft_align
        return impl(a, b, len_a, len_b)


class MaskedPooling(nn.Module):
    """`(x (B, L, d), len_x (B,)) -> (B, 2d)`: masked mean and max, see ops.masked_pool."""

    def __init__(self, fused: bool = True):
        super().__init__()
        self.fused = fused

    def forward(self, x: Tensor, len_x: Tensor) -> Tensor:
        return (ops.masked_pool if self.fused else reference.masked_pool)(x, len_x)


class EnhancedProjection(nn.Module):
    """`W [x; x~; x - x~; x * x~] + bias` without building the 4x-wide tensor.

    With `W = [W1 W2 W3 W4]` split along its input, the product equals
    `(W1 + W3) x + (W2 - W3) x~ + W4 (x * x~)`: three d-wide products instead of one 4d-wide
    input, and no (B, L, 4d) tensor in memory. The parameters are those of
    `nn.Linear(4 * in_features, out_features)`, so weights move freely between the two forms.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, fused: bool = True):
        super().__init__()
        self.in_features = in_features
        self.fused = fused
        self.linear = nn.Linear(4 * in_features, out_features, bias=bias)

    def forward(self, x: Tensor, x_tilde: Tensor) -> Tensor:
        if not self.fused:
            return reference.enhance_and_project(x, x_tilde, self.linear.weight, self.linear.bias)
        w1, w2, w3, w4 = self.linear.weight.split(self.in_features, dim=1)
        out = torch.nn.functional.linear(x, w1 + w3, self.linear.bias)
        out = out + torch.nn.functional.linear(x_tilde, w2 - w3)
        return out + torch.nn.functional.linear(x * x_tilde, w4)
