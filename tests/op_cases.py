"""Shared inputs for the op tests: ragged batches with the edge cases the ops must get right."""
from __future__ import annotations

import torch

# (len_a, len_b) per pair: ordinary, length 1 either side, empty either side, both empty, full.
EDGE_LENGTHS = [(3, 4), (1, 5), (4, 1), (0, 3), (2, 0), (0, 0), (5, 6), (1, 1)]


def pair_batch(lengths=EDGE_LENGTHS, dim=7, dtype=torch.float64, scale=1.0, seed=0,
               pad_a=1, pad_b=2, requires_grad=False):
    """a (B, La, d), b (B, Lb, d) with random values everywhere (padding included, so that a
    kernel reading padding would show), and int64 lengths."""
    generator = torch.Generator().manual_seed(seed)
    len_a = torch.tensor([la for la, _ in lengths], dtype=torch.int64)
    len_b = torch.tensor([lb for _, lb in lengths], dtype=torch.int64)
    max_a, max_b = int(len_a.max()) + pad_a, int(len_b.max()) + pad_b
    a = torch.randn(len(lengths), max_a, dim, generator=generator, dtype=dtype) * scale
    b = torch.randn(len(lengths), max_b, dim, generator=generator, dtype=dtype) * scale
    return a.requires_grad_(requires_grad), b.requires_grad_(requires_grad), len_a, len_b


def random_lengths(batch, max_a, max_b, seed):
    generator = torch.Generator().manual_seed(seed)
    return [
        (int(torch.randint(0, max_a + 1, (), generator=generator)),
         int(torch.randint(0, max_b + 1, (), generator=generator)))
        for _ in range(batch)
    ]  # fmt: skip
