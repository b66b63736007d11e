"""Shared inputs for the op tests: ragged batches with the edge cases the ops must get right,
and OP_CASES, the table of ops that the cross-cutting tests (opcheck, autograd to any order and in
forward mode, autocast, float16/bfloat16, torch.export, the CUDA emulator's coverage) run over: a
new op gets them by adding its row."""
from __future__ import annotations

import dataclasses
from typing import Callable

import pytest
import torch

import dynbatch_ext
from dynbatch_ext import reference

HAS_CUDA = torch.cuda.is_available() and dynbatch_ext.with_cuda()
# Every op test runs on each device; on CUDA the float64 cases run in float32 (CUDA kernels take
# float32/16 and bfloat16) against the same float64 reference.
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(
        not HAS_CUDA, reason="needs a CUDA device and a CUDA build of dynbatch_ext")),
]  # fmt: skip


def exact_dtype(device) -> torch.dtype:
    """The most precise dtype the device's kernels take."""
    return torch.float64 if device == "cpu" else torch.float32


def exact_rtol(device) -> float:
    return 1e-12 if device == "cpu" else 1e-5


def to_device(device, *tensors):
    """Moves (and converts float64 to the device's exact dtype), keeping requires_grad."""
    out = []
    for t in tensors:
        moved = t.detach().to(device, exact_dtype(device) if t.dtype == torch.float64 else t.dtype)
        out.append(moved.requires_grad_(t.requires_grad))
    return out

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


def outputs_and_grads(fn, inputs, upstream):
    """fn's outputs and the gradients of sum(output * upstream) w.r.t. the float inputs."""
    leaves = [t.detach().clone().requires_grad_() if t.is_floating_point() else t for t in inputs]
    outs = fn(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o.float() * u).sum() for o, u in zip(outs, upstream))
    grads = torch.autograd.grad(loss, [t for t in leaves if t.is_floating_point()])
    return [t.double() for t in (*outs, *grads)]


def assert_no_worse_than_reference(fused, plain, inputs, device):
    """float16/bfloat16 judged the flash-attention way: against the float64 reference, `fused`'s
    outputs and gradients err by at most twice what `plain` (the PyTorch reference) does when run
    in the same precision."""
    low = [t.to(device) for t in inputs]
    exact = [t.double() if t.is_floating_point() else t for t in low]
    probe = plain(*exact)
    probe = probe if isinstance(probe, tuple) else (probe,)
    upstream = [torch.randn(p.shape, device=device) for p in probe]
    want = outputs_and_grads(plain, exact, upstream)
    got = outputs_and_grads(fused, low, upstream)
    same_precision = outputs_and_grads(plain, low, upstream)
    for g, s, w in zip(got, same_precision, want):
        kernel_error = (g - w).abs().max().item()
        reference_error = (s - w).abs().max().item()
        assert kernel_error <= 2 * reference_error + 1e-6, (kernel_error, reference_error)


def random_lengths(batch, max_a, max_b, seed):
    generator = torch.Generator().manual_seed(seed)
    return [
        (int(torch.randint(0, max_a + 1, (), generator=generator)),
         int(torch.randint(0, max_b + 1, (), generator=generator)))
        for _ in range(batch)
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class OpCase:
    """A fused op (`torch.ops.dynbatch_ext.<name>`), its pure PyTorch reference (same arguments),
    and `sample(lengths, dim, dtype, requires_grad)`: the op's arguments for ragged `lengths`
    ((len_a, len_b) pairs, of which a one-sided op takes the first)."""

    name: str
    reference: Callable
    sample: Callable[..., tuple]

    @property
    def op(self):
        return getattr(torch.ops.dynbatch_ext, self.name).default

    def of_floats(self, args: tuple, fn: Callable | None = None):
        """(f, floats): `fn` (default: the op) as a function of the floating arguments of `args`
        alone, the others (lengths) fixed; for gradcheck and torch.func."""
        fn = self.op if fn is None else fn
        positions = [k for k, t in enumerate(args) if t.is_floating_point()]

        def f(*floats):
            full = list(args)
            for k, t in zip(positions, floats):
                full[k] = t
            return fn(*full)

        return f, tuple(args[k] for k in positions)

    def samples(self) -> list[tuple]:
        """Edge cases for opcheck: float64, float32 with gradients, length 1, all empty."""
        return [self.sample(), self.sample(dtype=torch.float32, requires_grad=True),
                self.sample([(1, 1)], dim=1), self.sample([(0, 0), (0, 0)], requires_grad=True)]  # fmt: skip


def _pair_sample(lengths=EDGE_LENGTHS, dim=7, dtype=torch.float64, requires_grad=False):
    return pair_batch(lengths, dim=dim, dtype=dtype, requires_grad=requires_grad)


def _sequence_sample(lengths=EDGE_LENGTHS, dim=7, dtype=torch.float64, requires_grad=False):
    x, _, len_x, _ = pair_batch(lengths, dim=dim, dtype=dtype, requires_grad=requires_grad)
    return x, len_x


OP_CASES = [
    pytest.param(OpCase("soft_align", reference.soft_align, _pair_sample), id="soft_align"),
    pytest.param(OpCase("masked_pool", reference.masked_pool, _sequence_sample), id="masked_pool"),
]
