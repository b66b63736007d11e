"""calibrate: the fitted memory model predicts shapes it never saw, and bad input says what to do."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from dynbatch_ext import corpora, plan_batches
from dynbatch_ext.bench.sections.calibration import esim_probe, transformer_probe
from dynbatch_ext.batching.calibration import calibrate, fit, probe_shapes
from dynbatch_ext.batching.memory import peak_bytes

CPU = torch.device("cpu")


def transformer_step():
    return transformer_probe(width=32)


def esim_step():
    return esim_probe(width=32)


def measured_step_peak(step, make, batch, shape):
    inputs = make(batch, shape)  # made outside: the probes measure the step, not the batch
    return peak_bytes(lambda: step(inputs), CPU)


@pytest.mark.parametrize(
    "build, lengths, held_out",
    [
        (transformer_step, corpora.synthetic_lengths(2000, seed=0, high=256),
         [(5, 100), (3, 200), (12, 40), (1, 256), (20, 64)]),
        (esim_step, corpora.synthetic_pair_lengths(3000, seed=0),
         [(5, (30, 10)), (3, (60, 20)), (12, (10, 5)), (40, (14, 8)), (1, (80, 40))]),
    ],
    ids=["transformer", "esim"],
)  # fmt: skip
def test_predictions_hold_on_shapes_not_used_for_the_fit(build, lengths, held_out):
    model, step, make = build()
    result = calibrate(step, make, lengths, memory_limit=2**30, model=model, progress=False)
    probed = {(p["batch"], tuple(p["lengths"])) for p in result.probes}
    for batch, shape in held_out:
        key = (batch, shape if isinstance(shape, tuple) else (shape,))
        assert key not in probed
        measured = measured_step_peak(step, make, batch, shape)
        assert result.predict_step(batch, shape) == pytest.approx(measured, rel=0.10), (batch, shape)
    assert result.fixed_bytes >= sum(p.numel() * 4 for p in model.parameters())
    if build is transformer_step:
        assert result.cost.quadratic > 0  # the attention matrices


def test_the_budget_keeps_every_planned_batch_under_the_limit():
    model, step, make = transformer_step()
    lengths = corpora.synthetic_lengths(2000, seed=1, high=256)
    limit = 64 * 2**20
    result = calibrate(step, make, lengths, memory_limit=limit, model=model, progress=False)
    batches = plan_batches(lengths, result.budget, cost=result.cost)
    worst = max(result.predict(len(b), int(lengths[b].max())) for b in batches)
    assert worst <= limit * (1 - result.margin) + 1
    assert worst >= 0.5 * limit  # and the batches use the memory


def test_fit_recovers_known_coefficients_and_stays_non_negative():
    truth = np.array([100.0, 7.0, 0.5])
    shapes = [(b, (L,)) for L in (5, 20, 80) for b in (2, 8)]
    probes = [(b, s, 1000 + b * (truth @ [1, s[0], s[0] ** 2])) for b, s in shapes]
    coefficients, overhead = fit(probes)
    np.testing.assert_allclose(coefficients, truth, rtol=1e-8)
    assert overhead == pytest.approx(1000)
    flat = [(b, s, 64.0 * b) for b, s in shapes]  # memory that does not grow with L at all
    coefficients, _ = fit(flat)
    assert (coefficients >= 0).all() and coefficients[0] == pytest.approx(64)


def test_probe_shapes_cover_the_length_range_for_both_batch_sizes():
    shapes = probe_shapes(np.arange(1, 101))
    assert {b for b, _ in shapes} == {2, 8}
    assert max(s[0] for _, s in shapes) == 100 and min(s[0] for _, s in shapes) <= 25
    pairs = probe_shapes(np.stack([np.arange(1, 101), np.arange(1, 101) // 2 + 1], axis=1))
    assert all(len(s) == 2 for _, s in pairs)


def test_a_limit_below_the_fixed_memory_says_so():
    model, step, make = transformer_step()
    with pytest.raises(ValueError, match="leaves nothing for batches.*raise the limit"):
        calibrate(step, make, np.arange(1, 64), memory_limit=2**16, model=model, progress=False)


def test_a_step_that_raises_names_the_probe():
    calls = []

    def step(batch):
        calls.append(batch.shape)
        if len(calls) > 1:
            raise KeyError("labels")

    with pytest.raises(RuntimeError, match=r"step_fn failed on the probe of 2 samples .*KeyError"):
        calibrate(step, lambda b, L: torch.zeros(b, L), np.arange(1, 64), memory_limit=2**30,
                  progress=False)  # fmt: skip


def test_a_probe_that_runs_out_of_memory_says_what_to_change():
    def step(batch):
        if batch.shape[0] == 8:
            raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(ValueError, match="ran out of memory; pass smaller probe_batch_sizes"):
        calibrate(step, lambda b, L: torch.zeros(b, L), np.arange(1, 64), memory_limit=2**30,
                  progress=False)  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(memory_limit=0), "memory_limit must be a positive"),
     (dict(memory_limit=2**30, margin=1.0), "margin must lie in")],
)  # fmt: skip
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        calibrate(lambda b: None, lambda b, L: torch.zeros(b, L), np.arange(1, 64), progress=False, **kwargs)


def test_lengths_with_too_few_values_cannot_be_fitted():
    with pytest.raises(ValueError, match="too few distinct values"):
        calibrate(lambda b: None, lambda b, L: torch.zeros(b, L), np.full(100, 7),
                  memory_limit=2**30, progress=False)  # fmt: skip


def test_a_library_call_prints_no_profiler_start_stop_lines(tmp_path):
    # calibrate measures CPU memory with torch's profiler, which would print a "USDT: ...
    # profiler_start" and a "profiler_stop" line per measurement to a user's script's stderr.
    script = (
        "import numpy as np, torch\n"
        "import dynbatch_ext\n"
        "model = torch.nn.Linear(8, 8)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "def step(batch):\n"
        "    optimizer.zero_grad(); model(batch).pow(2).sum().backward(); optimizer.step()\n"
        "make = lambda b, length: torch.randn(b, length, 8)\n"
        "result = dynbatch_ext.calibrate(step, make, np.arange(2, 40), memory_limit=2**30,\n"
        "                                model=model, progress=False)\n"
        "print('budget', result.budget > 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "budget True"
    assert "profiler_start" not in done.stdout + done.stderr, done.stderr[:500]


def test_a_make_batch_that_ignores_the_shape_is_refused():
    model = torch.nn.Linear(16, 16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(batch):
        optimizer.zero_grad()
        model(batch).pow(2).sum().backward()
        optimizer.step()

    fixed = lambda b, length: torch.randn(4, 16)  # noqa: E731  (one size, whatever is asked)
    with pytest.raises(ValueError, match=r"gave a batch of tensor shapes \[\(4, 16\)\], none of which"):
        calibrate(step, fixed, np.arange(1, 64), memory_limit=2**30, model=model, progress=False)
    # Half the length asked for: the fit would price a token at half its cost.
    half = lambda b, length: torch.zeros(b, max(1, length // 2))  # noqa: E731
    with pytest.raises(ValueError, match=r"make_batch\(2, 14\) gave a batch of tensor shapes \[\(2, 7\)\]"):
        calibrate(lambda batch: None, half, np.arange(1, 64), memory_limit=2**30, progress=False)
    with pytest.raises(ValueError, match="does not grow with the batch"):  # a step that allocates nothing
        calibrate(lambda b: None, lambda b, L: torch.zeros(b, L), np.arange(1, 64), memory_limit=2**30,
                  progress=False)  # fmt: skip


@pytest.mark.parametrize("kwargs, message", [
    (dict(fixed_bytes=float("nan")), "fixed_bytes must be a finite number of bytes >= 0"),
    (dict(fixed_bytes=-5.0), "fixed_bytes must be a finite number of bytes >= 0"),
    (dict(probe_batch_sizes=[]), "needs two different batch sizes"),
    (dict(probe_batch_sizes=[4, 4]), "needs two different batch sizes"),
    (dict(probe_batch_sizes=[-2, 4]), "probe_batch_sizes entry must be at least 1"),
    (dict(probe_batch_sizes=[2.7, 8]), "probe_batch_sizes entry must be an integer"),
    (dict(margin=float("nan")), "margin must lie in"),
])  # fmt: skip
def test_bad_calibration_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        calibrate(lambda b: None, lambda b, L: torch.zeros(b, L), np.arange(1, 64), memory_limit=2**30,
                  progress=False, **kwargs)  # fmt: skip


class RecurrentAttentionClassifier(torch.nn.Module):
    """A model calibrate was not tuned on: a GRU, then self-attention over its states."""

    def __init__(self, vocab=200, width=24):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, width)
        self.gru = torch.nn.GRU(width, width, batch_first=True)
        self.attention = torch.nn.MultiheadAttention(width, 2, batch_first=True)
        self.head = torch.nn.Linear(width, 2)

    def forward(self, tokens):
        states, _ = self.gru(self.embedding(tokens))
        mixed, _ = self.attention(states, states, states, need_weights=False)
        return self.head(mixed.mean(dim=1))


def test_a_calibrated_epoch_keeps_its_margin_on_a_model_it_was_not_tuned_on():
    # The budget allows batches far larger than the probes; calibrate must check them, so that
    # the batches an epoch really makes stay under the limit with the margin to spare.
    torch.manual_seed(0)
    model = RecurrentAttentionClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(tokens):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(tokens), torch.zeros(len(tokens), dtype=torch.long)).backward()
        optimizer.step()

    make = lambda b, length: torch.randint(0, 200, (b, length))  # noqa: E731
    lengths = corpora.synthetic_lengths(1500, seed=4, low=4, high=160)  # long-tailed, like reviews
    limit = 24 * 2**20
    result = calibrate(step, make, lengths, memory_limit=limit, model=model, progress=False)
    assert result.verification and result.verification_error <= 0.05
    batches = plan_batches(lengths, result.budget, cost=result.cost, batch_overhead=1.0)
    extremes = {"largest": max(batches, key=len), "longest": max(batches, key=lambda b: lengths[b].max())}
    for batch in extremes.values():
        peak = result.fixed_bytes + measured_step_peak(step, make, len(batch), int(lengths[batch].max()))
        assert peak <= limit * (1 - result.margin / 2), (len(batch), int(lengths[batch].max()), peak / limit)


def drifting_step(per_sample: int, drift: float):
    """A step whose memory per sample grows by `drift` (a fraction) with every call after the
    probes, as a leak or a fragmenting allocator would make it: what no fit of earlier
    measurements foresees."""
    calls = []

    def step(batch):
        calls.append(1)
        scale = 1.0 + drift * max(0, len(calls) - 11)  # the warm-up and 10 probes are steady
        torch.empty(int(len(batch) * per_sample * scale) // 4)  # allocated, freed, never read

    return step


LENGTHS = np.tile(np.arange(1, 64), 2000)  # 2,000 samples of every length: large budget batches


def test_a_budget_whose_batches_measure_over_the_limit_is_refused():
    make = lambda b, length: torch.zeros(b, length)  # noqa: E731
    with pytest.raises(ValueError, match="measured .* over the limit .* pass a larger margin"):
        calibrate(drifting_step(4096, drift=1.0), make, LENGTHS, memory_limit=16 * 2**20, fixed_bytes=0,
                  progress=False)  # fmt: skip


def test_a_fit_that_eats_half_the_margin_warns():
    make = lambda b, length: torch.zeros(b, length)  # noqa: E731
    with pytest.warns(UserWarning, match="underestimates the peak by .* more than half of the margin"):
        result = calibrate(drifting_step(4096, drift=0.04), make, LENGTHS, memory_limit=16 * 2**20,
                           fixed_bytes=0, margin=0.2, progress=False)  # fmt: skip
    assert len({c["round"] for c in result.verification}) == 3  # it refitted twice


def _tiny_training(diverges: bool = False):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(50, 16), torch.nn.Flatten(0, 1), torch.nn.Linear(16, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch):
        optimizer.zero_grad()
        loss = model(batch).pow(2).mean() * (float("nan") if diverges else 1.0)
        loss.backward()
        optimizer.step()
        return loss

    return model, optimizer, step, lambda b, length: torch.randint(0, 50, (b, length))


def test_calibrate_leaves_the_model_optimizer_and_rng_as_it_found_them():
    model, optimizer, step, make = _tiny_training()
    step(make(3, 5))  # the user's run has trained a step already
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    adam = {k: v.clone() for k, v in optimizer.state_dict()["state"][0].items()}
    torch.manual_seed(42)
    np.random.seed(7)
    expected_draws = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(42)
    np.random.seed(7)
    calibrate(step, make, np.arange(1, 200), memory_limit=2**30, model=model, optimizer=optimizer,
              progress=False)  # fmt: skip
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[name]), name
    for name, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(value, adam[name]), name  # Adam's step count included
    assert torch.equal(torch.rand(3), expected_draws[0]) and np.array_equal(np.random.rand(3), expected_draws[1])


def test_a_nan_loss_is_refused_and_the_weights_are_put_back():
    model, optimizer, step, make = _tiny_training(diverges=True)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="step_fn on the warm-up step: its loss is nan"):
        calibrate(step, make, np.arange(1, 200), memory_limit=2**30, model=model, optimizer=optimizer,
                  progress=False)  # fmt: skip
    for name, value in model.state_dict().items():
        assert torch.equal(value, weights[name]), name


def test_the_summary_says_where_the_fit_holds_and_is_printed_once(capsys):
    model, optimizer, step, make = _tiny_training()
    result = calibrate(step, make, np.arange(1, 200), memory_limit=2**30, model=model,
                       optimizer=optimizer, progress=False)  # fmt: skip
    assert capsys.readouterr().out == ""  # report=False by default: the caller prints it
    summary = result.summary()
    assert summary.startswith("budget ") and "pass budget=..., cost=..." in summary
    assert "measured at the budget's largest, median and longest batches, the fit is within" in summary
    assert "the small ones, far below the limit" in summary
