"""The benchmark's step, soft_align then masked_pool of both sides, and the ways to compute its
alignment that the ops section times against the fused ops."""
from __future__ import annotations

import torch.nn.functional as F

from ..ops import reference

# The benchmark's states are randn * STATE_SCALE, entries of the order of an LSTM's outputs, so
# that the scores keep a spread of a few units. Unscaled states at d = 1024 spread the scores by
# hundreds: most probabilities then underflow into subnormal floats, which Intel CPUs compute
# about 16x slower. The fused CPU kernels take them as 0, the PyTorch reference does not
# (measured: one step at B=1, L=1024, d=1024, 5.0 s against the fused 0.18 s), and the
# benchmark would time the reference's subnormals rather than the ops.
STATE_SCALE = 0.1


def sdpa_align(a, b, len_a, len_b):
    """soft_align as two scaled_dot_product_attention calls (scale 1, key masks), one per
    direction, with the padded rows zeroed; on CUDA with the memory-efficient backend (the one
    that takes d = 600)."""
    if a.is_cuda:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
            return _sdpa_pair(a, b, len_a, len_b)
    return _sdpa_pair(a, b, len_a, len_b)


def _sdpa_pair(a, b, len_a, len_b):
    valid_a = reference.length_mask(len_a, a.shape[1])
    valid_b = reference.length_mask(len_b, b.shape[1])
    # (B, 1 head, L, d): the fused CUDA backends take 4-D inputs only (3-D finds no kernel).
    a4, b4 = a[:, None], b[:, None]
    a_tilde = F.scaled_dot_product_attention(a4, b4, b4, attn_mask=valid_b[:, None, None, :],
                                             scale=1.0)[:, 0]  # fmt: skip
    b_tilde = F.scaled_dot_product_attention(b4, a4, a4, attn_mask=valid_a[:, None, None, :],
                                             scale=1.0)[:, 0]  # fmt: skip
    return a_tilde * valid_a[..., None], b_tilde * valid_b[..., None]


def pair_loss(align, pool):
    """The benchmark's step loss: soft_align, then masked_pool of both sides, summed."""

    def loss(a, b, len_a, len_b):
        a_tilde, b_tilde = align(a, b, len_a, len_b)
        return pool(a_tilde, len_a).sum() + pool(b_tilde, len_b).sum()

    return loss
