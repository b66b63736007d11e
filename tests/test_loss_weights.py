"""micro_batch_weights: accumulated gradient == one-batch gradient, alone and across ranks."""
from __future__ import annotations

import contextlib
import datetime

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from dynbatch_ext import micro_batch_weights
from dynbatch_ext.batching.loss_weights import accumulate_step

SIZES = [1, 3, 17, 64, 2]  # very different micro-batch sizes, as budgeted batches are


def make_problem(seed=0, total=sum(SIZES)):
    generator = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    ).double()
    for p in model.parameters():
        torch.nn.init.normal_(p, generator=generator)
    x = torch.randn(total, 6, dtype=torch.float64, generator=generator)
    y = torch.randint(0, 3, (total,), generator=generator)
    return model, x, y


def flat_grad(model):
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def one_batch_gradient(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return flat_grad(model)


def accumulated_gradient(model, x, y, sizes, weigh):
    model.zero_grad()
    parts = list(zip(x.split(sizes), y.split(sizes)))
    for (xb, yb), w in zip(parts, weigh(sizes)):
        (F.cross_entropy(model(xb), yb) * w).backward()
    return flat_grad(model)


def relative_error(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_weighted_accumulation_equals_one_batch_in_float64():
    model, x, y = make_problem()
    exact = one_batch_gradient(model, x, y)
    got = accumulated_gradient(model, x, y, SIZES, micro_batch_weights)
    assert relative_error(got, exact) < 1e-10


def test_accumulate_step_gives_the_one_batch_gradient_and_loss_syncing_once():
    # The loop train-esim, BudgetTrainer and BudgetedSteps share.
    model, x, y = make_problem()
    exact = one_batch_gradient(model, x, y)
    exact_loss = F.cross_entropy(model(x), y).item()
    model.zero_grad()
    parts = list(zip(x.split(SIZES), y.split(SIZES)))
    events = []

    @contextlib.contextmanager
    def no_sync():
        events.append("no_sync")
        yield

    def backward(loss):
        events.append("backward")
        loss.backward()

    mean = accumulate_step(parts, SIZES, lambda part: F.cross_entropy(model(part[0]), part[1]),
                           backward, no_sync)  # fmt: skip
    assert relative_error(flat_grad(model), exact) < 1e-10
    assert mean.item() == pytest.approx(exact_loss, rel=1e-12) and not mean.requires_grad
    assert events == ["no_sync", "backward"] * (len(SIZES) - 1) + ["backward"]  # synced on the last


def test_a_step_of_no_samples_trains_nothing_and_reports_a_loss_of_zero_not_nan(monkeypatch):
    # A rank's zero-weight step (its stream has ended while another rank's has not): under DDP the
    # step total is summed over the ranks, so this rank's weights come out 0 (stood in for here).
    from dynbatch_ext.batching import loss_weights

    monkeypatch.setattr(loss_weights, "micro_batch_weights", lambda counts: [0.0] * len(counts))
    model, x, y = make_problem()
    model.zero_grad()
    mean = accumulate_step([(x[:1], y[:1])], [0], lambda part: F.cross_entropy(model(part[0]), part[1]),
                           torch.Tensor.backward, contextlib.nullcontext)  # fmt: skip
    assert mean.item() == 0.0
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


def test_dividing_by_the_number_of_micro_batches_fails_the_same_test():
    model, x, y = make_problem()
    exact = one_batch_gradient(model, x, y)
    naive = accumulated_gradient(model, x, y, SIZES, lambda sizes: [1 / len(sizes)] * len(sizes))
    assert relative_error(naive, exact) > 1e-2


def test_token_weights_match_a_mean_over_all_tokens():
    # A loss averaged over tokens: micro-batches hold sequences of different lengths.
    generator = torch.Generator().manual_seed(1)
    lengths = [[3, 9], [1], [20, 2, 7], [5]]
    scores = [torch.randn(sum(l), 4, dtype=torch.float64, generator=generator) for l in lengths]
    targets = [torch.randint(0, 4, (sum(l),), generator=generator) for l in lengths]
    weights_param = torch.ones(4, dtype=torch.float64, requires_grad=True)
    whole = F.cross_entropy(torch.cat(scores) * weights_param, torch.cat(targets))
    (exact,) = torch.autograd.grad(whole, weights_param)
    tokens = [sum(l) for l in lengths]
    accumulated = torch.zeros(4, dtype=torch.float64)
    for s, t, w in zip(scores, targets, micro_batch_weights(tokens)):
        accumulated += torch.autograd.grad(F.cross_entropy(s * weights_param, t) * w, weights_param)[0]
    assert relative_error(accumulated, exact) < 1e-10


@pytest.mark.parametrize(
    "counts, message",
    [([], "non-empty"), ([[1, 2]], "1-D"), ([3, -1], ">= 0"), ([1, float("nan")], "finite"),
     ([0, 0], "sum to 0")],
)  # fmt: skip
def test_bad_counts_raise_value_error(counts, message):
    with pytest.raises(ValueError, match=message):
        micro_batch_weights(counts)


RANK_SIZES = [[5, 1, 30], [2, 40, 9]]  # each rank's micro-batches in one step


def _ddp_worker(rank, store_path, result_path):
    # A timeout, so that a rank whose peer died fails the test instead of waiting 30 minutes.
    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=60))  # fmt: skip
    try:
        model, x, y = make_problem(total=sum(map(sum, RANK_SIZES)))
        start = sum(RANK_SIZES[0]) if rank else 0
        mine = slice(start, start + sum(RANK_SIZES[rank]))
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        parts = list(zip(x[mine].split(RANK_SIZES[rank]), y[mine].split(RANK_SIZES[rank])))
        weights = micro_batch_weights(RANK_SIZES[rank])
        for k, ((xb, yb), w) in enumerate(zip(parts, weights)):
            last = k == len(parts) - 1
            with ddp.no_sync() if not last else torch.enable_grad():
                (F.cross_entropy(ddp(xb), yb) * w).backward()
        if rank == 0:
            torch.save(flat_grad(model), result_path)
        # Both ranks leave together: gloo sometimes aborts a rank ("terminate called without an
        # active exception") that tears the group down while its peer is still at work (rank 0
        # saving); train-esim ends the same way (DEVELOPERS.md).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_weights_across_ranks_give_the_one_batch_gradient_under_ddp(tmp_path):
    result = tmp_path / "grad.pt"
    mp.spawn(_ddp_worker, args=(str(tmp_path / "store"), str(result)), nprocs=2, join=True)
    model, x, y = make_problem(total=sum(map(sum, RANK_SIZES)))
    exact = one_batch_gradient(model, x, y)
    assert relative_error(torch.load(result), exact) < 1e-10


def test_counts_whose_sum_overflows_are_refused_not_zeroed():
    with pytest.raises(ValueError, match="sum to more than a float64 holds"):
        micro_batch_weights([1e308, 1e308])
    assert micro_batch_weights([1e307, 3e307]) == pytest.approx([0.25, 0.75])
