"""The ops benchmark's paths compute the same step: loss and gradients against float64."""
from __future__ import annotations

import pytest
import torch
from op_cases import DEVICES, exact_dtype, pair_batch, random_lengths

from dynbatch_ext.bench.sections import ops as ops_section


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("path", ["fused", "eager reference", "SDPA pair"])
def test_every_path_gives_the_reference_loss_and_gradients(device, path):
    lengths = [(max(la, 1), max(lb, 1)) for la, lb in random_lengths(12, 9, 6, seed=4)]
    a, b, len_a, len_b = pair_batch(lengths, dim=16, scale=0.5, seed=1)
    steps = ops_section.losses()

    def loss_and_grads(step, dtype, where):
        x = a.to(where, dtype).requires_grad_()
        y = b.to(where, dtype).requires_grad_()
        loss = step(x, y, len_a.to(where), len_b.to(where))
        loss.backward()
        return [t.detach().double().cpu() for t in (loss, x.grad, y.grad)]

    want = loss_and_grads(steps["eager reference"], torch.float64, "cpu")
    got = loss_and_grads(steps[path], exact_dtype(device), device)
    tolerance = 1e-10 if exact_dtype(device) == torch.float64 else 1e-4
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=tolerance, atol=tolerance)
