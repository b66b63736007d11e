"""soft_align: the fused op against its float64 reference, its gradients, and its registration."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from op_cases import (DEVICES, EDGE_LENGTHS, assert_no_worse_than_reference, exact_rtol, pair_batch,
                      random_lengths, to_device)
from torch.autograd import gradcheck

from dynbatch_ext import ops, reference

OP = torch.ops.dynbatch_ext.soft_align.default


def check_against_reference(a, b, len_a, len_b, rtol):
    """Outputs and both gradients of the fused op equal the float64 reference's (computed on
    the inputs' device)."""
    a64, b64 = (t.detach().double().requires_grad_() for t in (a, b))
    a_, b_ = (t.detach().clone().requires_grad_() for t in (a, b))
    expected = reference.soft_align(a64, b64, len_a, len_b)
    actual = ops.soft_align(a_, b_, len_a, len_b)
    weights = [torch.randn_like(e) for e in expected]  # a random upstream gradient
    sum(((e * w).sum() for e, w in zip(expected, weights))).backward()
    sum(((o * w.to(o.dtype)).sum() for o, w in zip(actual, weights))).backward()
    for got, want in [*zip(actual, expected), (a_.grad, a64.grad), (b_.grad, b64.grad)]:
        assert torch.isfinite(got).all()
        scale = want.detach().abs().max().clamp(min=1e-30)
        torch.testing.assert_close(got.double(), want, rtol=rtol, atol=rtol * float(scale))


def test_gradcheck_float64_edge_cases():
    a, b, len_a, len_b = pair_batch(dim=4, requires_grad=True)
    assert gradcheck(lambda x, y: ops.soft_align(x, y, len_a, len_b), (a, b))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, None), (torch.float32, 1e-5)])
@pytest.mark.parametrize("seed", range(4))
def test_matches_reference_on_random_ragged_batches(device, dtype, rtol, seed):
    lengths = random_lengths(9, 6, 5, seed)
    a, b, len_a, len_b = pair_batch(lengths, dim=13 + seed, dtype=dtype, seed=seed)
    check_against_reference(*to_device(device, a, b, len_a, len_b), rtol or exact_rtol(device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch, max_len, dim", [(3, 70, 600), (40, 33, 17), (2, 150, 64)])
def test_matches_reference_past_one_tile(device, batch, max_len, dim):
    # Lengths past a 32-wide tile and ESIM's d = 600: every tile edge of the kernels is crossed.
    # On CUDA, (3, 70, 600) keeps each pair's matrices in opted-in shared memory (past 48 KiB in
    # the backward) and (2, 150, 64) is too long for shared memory: the global workspace path.
    lengths = random_lengths(batch, max_len, max_len - 5, seed=batch)
    a, b, len_a, len_b = pair_batch(lengths, dim=dim, dtype=torch.float32, seed=1)
    check_against_reference(*to_device(device, a, b, len_a, len_b), 1e-5)


# Scores of about +-100 in float64; float32 at the usual scale, as its softmax of large scores
# is only as exact as float32 rounding of them.
@pytest.mark.parametrize("dtype, rtol, scale", [(torch.float64, None, 3.0), (torch.float32, 1e-5, 1.0)])
def test_long_blocks_through_the_matrix_product_beside_short_ones(dtype, rtol, scale):
    # On the CPU, pairs of at least 2**15 multiply-adds (la * lb * d) go through torch's matrix
    # product, smaller ones through the kernels' primitives: one batch with both (32 * 32 * 32
    # is exactly the threshold), and a non-contiguous input.
    lengths = [(90, 70), (3, 5), (0, 80), (32, 32), (1, 90), (80, 1), (31, 32)]
    a, b, len_a, len_b = pair_batch(lengths, dim=32, dtype=dtype, scale=scale)
    check_against_reference(a, b, len_a, len_b, rtol or exact_rtol("cpu"))
    a_t = a.transpose(1, 2).contiguous().transpose(1, 2)
    check_against_reference(a_t, b, len_a, len_b, rtol or exact_rtol("cpu"))
    assert gradcheck(lambda x, y: ops.soft_align(x, y, len_a[:4], len_b[:4]),
                     (a[:4].double().requires_grad_(), b[:4].double().requires_grad_()), fast_mode=True)  # fmt: skip


# float32 sums over 1,000 lines round to about 1e-4 of the largest gradient; a stale value would
# be off by its whole size.
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_calls_of_growing_and_shrinking_blocks_one_after_another(dtype):
    # Each CPU thread keeps its scratch from call to call (and gives back buffers past 4 MiB):
    # a small block after a large one, and a large one after a small one, must see no stale
    # values. 600 x 600 floats are kept (1.4 MiB), 1100 x 1000 given back (4.2 MiB); bfloat16
    # also keeps its rows converted to float.
    shapes = ([(600, 600)], [(3, 5), (7, 2)], [(1100, 1000)], [(40, 30)], [(600, 600), (1, 1)],
              [(1100, 1000)], [(5, 4)])  # fmt: skip
    for lengths in shapes:
        a, b, len_a, len_b = pair_batch(lengths, dim=8, dtype=torch.float32, seed=len(lengths))
        if dtype == torch.float32:
            with torch.random.fork_rng():  # the upstream gradient, the same whatever ran before
                torch.manual_seed(len(lengths))
                check_against_reference(a, b, len_a, len_b, 1e-4)
            continue
        got = ops.soft_align(a.to(dtype), b.to(dtype), len_a, len_b)
        want = reference.soft_align(a.to(dtype).double(), b.to(dtype).double(), len_a, len_b)
        for g, w in zip(got, want):
            torch.testing.assert_close(g.double(), w, rtol=2e-2, atol=2e-2)
        with torch.random.fork_rng():  # and the gradients, as test_ops_low_precision judges them
            torch.manual_seed(len(lengths))
            assert_no_worse_than_reference(ops.soft_align, reference.soft_align,
                                           [a.to(dtype), b.to(dtype), len_a, len_b], "cpu")  # fmt: skip


@pytest.fixture
def four_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("lengths", [[(300, 200)], [(260, 1), (0, 5), (130, 290)]])
def test_fewer_pairs_than_threads_share_each_pairs_lines(four_threads, lengths):
    # On the CPU, a batch of fewer pairs than threads runs its pairs one after another, each
    # pair's softmax and gradient lines split between the threads (here into several ranges):
    # right against float64, and the same bits as on one thread (the same arithmetic per line).
    a, b, len_a, len_b = pair_batch(lengths, dim=8, dtype=torch.float64)
    check_against_reference(a, b, len_a, len_b, exact_rtol("cpu"))
    a32, b32 = (t.float().requires_grad_() for t in (a, b))

    def outputs_and_gradients():
        a32.grad = b32.grad = None
        a_t, b_t = ops.soft_align(a32, b32, len_a, len_b)
        (a_t.sum() + (b_t * b_t).sum()).backward()
        return a_t.detach(), b_t.detach(), a32.grad, b32.grad

    shared = outputs_and_gradients()
    torch.set_num_threads(1)
    for got, want in zip(shared, outputs_and_gradients()):
        assert torch.equal(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_padding_values_are_never_read(device):
    a, b, len_a, len_b = to_device(device, *pair_batch())
    out = ops.soft_align(a, b, len_a, len_b)
    a2, b2 = a.clone(), b.clone()
    for n, (la, lb) in enumerate(EDGE_LENGTHS):
        a2[n, la:] = float("nan")
        b2[n, lb:] = float("inf")
    for x, y in zip(out, ops.soft_align(a2, b2, len_a, len_b)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_padded_rows_and_empty_partners_are_zero(device):
    a, b, len_a, len_b = to_device(device, *pair_batch())
    a_tilde, b_tilde = ops.soft_align(a, b, len_a, len_b)
    for n, (la, lb) in enumerate(EDGE_LENGTHS):
        assert (a_tilde[n, la:] == 0).all() and (b_tilde[n, lb:] == 0).all()
        if lb == 0:
            assert (a_tilde[n] == 0).all()
        if la == 0:
            assert (b_tilde[n] == 0).all()


@pytest.mark.parametrize("device", DEVICES)
def test_all_rows_padded(device):
    a, b, len_a, len_b = to_device(device, *pair_batch([(0, 0), (0, 2), (3, 0)]))
    a.requires_grad_()
    b.requires_grad_()
    a_tilde, b_tilde = ops.soft_align(a, b, len_a, len_b)
    assert (a_tilde == 0).all() and (b_tilde == 0).all()
    (a_tilde.sum() + b_tilde.sum()).backward()
    assert (a.grad == 0).all() and (b.grad == 0).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, None), (torch.float32, 1e-5)])
def test_very_negative_and_very_large_scores(device, dtype, rtol):
    # Scores in the thousands: exp under- and overflows unless the max is subtracted; a
    # multiply-by-mask softmax would give NaN or attend to padding here.
    a, b, len_a, len_b = pair_batch(dtype=dtype, scale=30.0)
    a[0] = -a[0].abs()
    b[0] = b[0].abs()  # every score of pair 0 very negative
    check_against_reference(*to_device(device, a, b, len_a, len_b), rtol or exact_rtol(device))


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, None), (torch.float32, 1e-5)])
def test_scores_spread_across_exps_subnormal_range(dtype, rtol):
    # Scores spread past where exp's result is subnormal (-87 to -104 in float32, -708 to -745
    # in float64) along rows and columns alike: the CPU kernels take such probabilities (below
    # min / epsilon) and such score gradients as 0, which must change no output or gradient
    # beyond rounding, in the matrix-product path (128 x 128 x 2) and the primitives' (20 x 20 x 2).
    spread = 110.0 if dtype == torch.float32 else 760.0
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([128, 20])
    a = torch.zeros(2, 128, 2, dtype=torch.float64)
    b = torch.zeros(2, 128, 2, dtype=torch.float64)
    for k, length in enumerate(lengths.tolist()):
        # Scores a_i . b_j = (spread / 2) x_i y_j with x, y in [-1, 1]: the rows and columns of
        # the extreme x and y spread by `spread`.
        x = torch.linspace(-1.0, 1.0, length, dtype=torch.float64)
        a[k, :length, 0] = (spread / 2) ** 0.5 * x
        b[k, :length, 0] = (spread / 2) ** 0.5 * x[torch.randperm(length, generator=generator)]
    check_against_reference(a.to(dtype), b.to(dtype), lengths, lengths, rtol or exact_rtol("cpu"))


@pytest.mark.parametrize("count", [1000, 15, 1])  # vector chunks and a tail; a tail alone; one
@pytest.mark.parametrize("top", [0.0, 40.0])
def test_float32_probabilities_within_a_few_ulp_over_exps_whole_range(count, top):
    # Against identity rows, soft_align returns the softmax itself: with a = the scores (1 x n)
    # and b = I (n x n), a_tilde[0] is the row softmax; with the roles swapped, b_tilde[0] is the
    # column softmax. Scores run down from `top` by 90, past where float32's exp underflows, so
    # the CPU kernel's own exp is checked at every magnitude, against float64 on the same float32
    # scores. Rounding score - max in float32 moves e^x by up to |x| ulp, and summing n terms
    # moves the sum by about sqrt(n) ulp (7 measured at n = 1000); beyond that, 4 ulp.
    scores = (top - torch.linspace(0.0, 90.0, count, dtype=torch.float64)).float()
    scores = scores[torch.randperm(count, generator=torch.Generator().manual_seed(count))]
    eye, row, length = torch.eye(count)[None], scores[None, None], torch.tensor([count])
    by_row = ops.soft_align(row, eye, torch.tensor([1]), length)[0][0, 0]
    by_column = ops.soft_align(eye, row, length, torch.tensor([1]))[1][0, 0]
    scores = scores.double()
    want = torch.softmax(scores, 0)
    eps = torch.finfo(torch.float32).eps
    want = torch.where(want < torch.finfo(torch.float32).tiny / eps, 0.0, want)  # as the kernel
    allowed = want * eps * (4 + count**0.5 + (scores - scores.max()).abs())
    for got in (by_row, by_column):
        assert ((got.double() - want).abs() <= allowed).all(), (got.double() - want).abs().max()


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_inputs(device):
    a, b, len_a, len_b = to_device(device, *pair_batch(dim=6))
    a_t = a.transpose(1, 2).contiguous().transpose(1, 2)  # same values, other strides
    b_s = torch.stack([b, -b], dim=3)[..., 0]  # the values of b, every other element
    assert not a_t.is_contiguous() and not b_s.is_contiguous()
    for x, y in zip(ops.soft_align(a_t, b_s, len_a, len_b), ops.soft_align(a, b, len_a, len_b)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    check_against_reference(a_t, b_s, len_a, len_b, exact_rtol(device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch, max_a, max_b, dim", [(3, 4, 5, 0), (0, 4, 5, 6), (2, 0, 0, 3)])
def test_zero_sized_shapes(device, batch, max_a, max_b, dim):
    a, b, len_a, len_b = to_device(
        device,
        torch.randn(batch, max_a, dim, dtype=torch.float64, requires_grad=True),
        torch.randn(batch, max_b, dim, dtype=torch.float64, requires_grad=True),
        torch.full((batch,), min(max_a, 2), dtype=torch.int64),
        torch.full((batch,), min(max_b, 3), dtype=torch.int64),
    )
    fused = ops.soft_align(a, b, len_a, len_b)
    pooled = ops.masked_pool(fused[0], len_a)
    (fused[0].sum() + fused[1].sum() + pooled.sum()).backward()
    expected = reference.soft_align(a, b, len_a, len_b)
    for got, want in zip((*fused, pooled), (*expected, reference.masked_pool(expected[0], len_a))):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want)
    assert a.grad.shape == a.shape and b.grad.shape == b.shape


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph_forward_and_backward(device):
    a, b, len_a, len_b = to_device(device, *pair_batch(dtype=torch.float32, requires_grad=True))

    def pooled(a, b, len_a, len_b):
        a_tilde, b_tilde = ops.soft_align(a, b, len_a, len_b)
        return ops.masked_pool(a_tilde, len_a).sum() + ops.masked_pool(b_tilde, len_b).sum()

    compiled = torch.compile(pooled, fullgraph=True)
    compiled(a, b, len_a, len_b).backward()
    grads = a.grad.clone(), b.grad.clone()
    a.grad = b.grad = None
    pooled(a, b, len_a, len_b).backward()
    torch.testing.assert_close(grads[0], a.grad)
    torch.testing.assert_close(grads[1], b.grad)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda a, b, la, lb: (a, b, la + 10, lb), ValueError, "len_a holds 15, longer than the padded a dimension"),
        (lambda a, b, la, lb: (a, b, la, lb - 5), ValueError, "len_b holds -5: lengths must be non-negative"),
        (lambda a, b, la, lb: (a[:3], b, la[:3], lb), ValueError, "a and b have different batch sizes"),
        (lambda a, b, la, lb: (a, b[..., :3], la, lb), ValueError, "a and b have different feature sizes"),
        (lambda a, b, la, lb: (a, b, la[:2], lb), ValueError, "len_a has 2 entries but the batch has 8"),
        (lambda a, b, la, lb: (a[0], b, la, lb), ValueError, r"a must have shape \(B, La, d\)"),
        (lambda a, b, la, lb: (a, b, la.int(), lb), TypeError, "len_a must be int64"),
        (lambda a, b, la, lb: (a.long(), b.long(), la, lb), TypeError, "a must be a floating-point tensor"),
        (lambda a, b, la, lb: (a.to(torch.float8_e5m2), b.to(torch.float8_e5m2), la, lb), TypeError,
         "soft_align on CPU supports Float, Double, BFloat16, Half; got Float8_e5m2"),
        (lambda a, b, la, lb: (a.float(), b, la, lb), TypeError, "a and b must have the same dtype"),
        (lambda a, b, la, lb: (a, b.to("meta"), la, lb), ValueError, "different devices"),
    ],
)  # fmt: skip
def test_bad_inputs(change, error, message):
    with pytest.raises(error, match=message):
        ops.soft_align(*change(*pair_batch()))


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda a, b, la, lb: (a.double(), b.double(), la, lb), TypeError,
         "soft_align on CUDA supports Float, Half, BFloat16; got Double"),
        (lambda a, b, la, lb: (a, b, la + 10, lb), ValueError, "len_a holds 15, longer than the padded a"),
        (lambda a, b, la, lb: (a, b, la, lb - 5), ValueError, "len_b holds -5: lengths must be non-negative"),
        (lambda a, b, la, lb: (a, b, la.cpu(), lb), (ValueError, RuntimeError), "device"),
        (lambda a, b, la, lb: (a, b.cpu(), la, lb), (ValueError, RuntimeError), "device"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("device", DEVICES[1:])
def test_bad_cuda_inputs(device, change, error, message):
    with pytest.raises(error, match=message):
        ops.soft_align(*change(*to_device(device, *pair_batch())))


@pytest.mark.parametrize("device", DEVICES[1:])
def test_cuda_backward_makes_no_device_sync(device):
    # Reading lengths back would wait for all queued work; the forward checks them (one transfer
    # per op), the backward gets the same saved tensors and must not.
    a, b, len_a, len_b = to_device(device, *pair_batch(dtype=torch.float32, requires_grad=True))
    a_tilde, b_tilde = ops.soft_align(a, b, len_a, len_b)
    loss = ops.masked_pool(a_tilde, len_a).sum() + ops.masked_pool(b_tilde, len_b).sum()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert a.grad is not None and b.grad is not None


DIRECT_BACKWARD = """
import torch, dynbatch_ext
a = torch.randn(2, 3, 4, device="cuda")
len_a = torch.tensor([3, 4], device="cuda")  # 4 > 3: past the padding
len_b = torch.tensor([1, 2], device="cuda")
torch.ops.dynbatch_ext.soft_align_backward(a, a, a, a, len_a, len_b)
torch.cuda.synchronize()
"""


@pytest.mark.parametrize("device", DEVICES[1:])
def test_cuda_backward_called_with_bad_lengths_stops(device):
    # The backward skips the host check; its kernel stops instead of reading out of bounds. A
    # stopped kernel ends the CUDA context, hence a process of its own.
    run = subprocess.run([sys.executable, "-c", DIRECT_BACKWARD], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode != 0
    assert "dynbatch_ext: len_a[1] = 4 is outside [0, 3]" in run.stdout + run.stderr


def test_inputs_on_the_meta_and_cpu_devices_at_once_are_a_value_error():
    a, b, len_a, len_b = pair_batch()
    with pytest.raises(ValueError, match="different devices"):
        ops.soft_align(a.to("meta"), b.to("meta"), len_a, len_b)
    with pytest.raises(ValueError, match="different devices"):
        ops.masked_pool(a.to("meta"), len_a)


def test_the_reference_ignores_nan_in_padding_as_the_fused_op_does():
    a, b, len_a, len_b = pair_batch()
    for row, (la, lb) in enumerate(EDGE_LENGTHS):
        a[row, la:], b[row, lb:] = float("nan"), float("inf")
    for fused, plain in zip(ops.soft_align(a, b, len_a, len_b), reference.soft_align(a, b, len_a, len_b)):
        assert torch.isfinite(plain).all()
        torch.testing.assert_close(fused, plain, rtol=1e-12, atol=1e-12)
