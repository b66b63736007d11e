"""dynbatch_ext.nn.ESIM: fused and reference paths agree; packing hides padding; bad inputs."""
from __future__ import annotations

import pytest
import torch

from dynbatch_ext.nn import ESIM

VOCAB = 50


def ragged_batch(lengths_p, lengths_h, seed=0):
    generator = torch.Generator().manual_seed(seed)
    len_p, len_h = torch.tensor(lengths_p), torch.tensor(lengths_h)

    def tokens(lengths):
        ids = torch.randint(1, VOCAB, (len(lengths), max(1, int(lengths.max()))), generator=generator)
        return ids.masked_fill(torch.arange(ids.shape[1]) >= lengths[:, None], 0)

    return tokens(len_p), len_p, tokens(len_h), len_h


# Ragged rows, length 1, and empty texts on either side.
BATCH = ragged_batch([7, 1, 4, 0, 9, 3], [2, 5, 0, 3, 1, 6])


def model_pair(**kwargs):
    torch.manual_seed(0)
    fused = ESIM(VOCAB, embedding_dim=8, hidden_size=6, dropout=0.0, **kwargs).double()
    plain = ESIM(VOCAB, embedding_dim=8, hidden_size=6, dropout=0.0, fused=False, **kwargs).double()
    plain.load_state_dict(fused.state_dict())
    return fused, plain


@pytest.mark.parametrize("mode", ["packed", "flipped"])
def test_fused_and_reference_give_the_same_logits_and_gradients(mode):
    fused, plain = model_pair(lstm=mode)
    logits_fused, logits_plain = fused(*BATCH), plain(*BATCH)
    torch.testing.assert_close(logits_fused, logits_plain, rtol=1e-10, atol=1e-12)
    upstream = torch.randn_like(logits_fused)
    logits_fused.backward(upstream)
    logits_plain.backward(upstream)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-12, msg=name)


def test_fused_flag_switches_every_layer():
    model = ESIM(VOCAB, embedding_dim=4, hidden_size=4)
    assert model.fused
    model.fused = False
    assert not (model.align.fused or model.pool.fused or model.project.fused)


@pytest.mark.parametrize("mode", ["packed", "flipped"])
def test_logits_do_not_depend_on_extra_padding(mode):
    fused, _ = model_pair(lstm=mode)
    premise, len_p, hypothesis, len_h = BATCH
    wider = (torch.nn.functional.pad(premise, (0, 5)), len_p,
             torch.nn.functional.pad(hypothesis, (0, 3)), len_h)  # fmt: skip
    torch.testing.assert_close(fused(*wider), fused(*BATCH), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["packed", "flipped"])
def test_a_row_does_not_depend_on_its_batch(mode):
    fused, _ = model_pair(lstm=mode)
    premise, len_p, hypothesis, len_h = BATCH
    alone = fused(premise[:1, :7], len_p[:1], hypothesis[:1, :2], len_h[:1])
    torch.testing.assert_close(alone, fused(*BATCH)[:1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["packed", "flipped"])
def test_padding_free_lstm_modes_agree(mode):
    auto, _ = model_pair()
    other, _ = model_pair(lstm=mode)
    torch.testing.assert_close(other(*BATCH), auto(*BATCH), rtol=1e-10, atol=1e-12)


def test_padded_lstm_mode_runs_and_differs_where_padding_is_read():
    fused, _ = model_pair()
    padded, _ = model_pair(lstm="padded")
    out_packed, out_padded = fused(*BATCH), padded(*BATCH)
    assert torch.isfinite(out_padded).all()
    assert not torch.allclose(out_packed, out_padded)  # the backward LSTM reads the padding


def test_float32_matches_float64():
    fused, _ = model_pair()
    single = ESIM(VOCAB, embedding_dim=8, hidden_size=6, dropout=0.0)
    single.load_state_dict({k: v.float() for k, v in fused.state_dict().items()})
    torch.testing.assert_close(single(*BATCH).double(), fused(*BATCH), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p, lp, h, lh: (p.float(), lp, h, lh), "premise must be an int64"),
        (lambda p, lp, h, lh: (p, lp.int(), h, lh), "premise_lengths must be int64"),
        (lambda p, lp, h, lh: (p, lp, h, lh[:-1]), r"hypothesis_lengths must be int64 of shape"),
        (lambda p, lp, h, lh: (p, lp + 20, h, lh), r"premise_lengths must lie in \[0, 9\]"),
        (lambda p, lp, h, lh: (p, lp - 8, h, lh), r"premise_lengths must lie in"),
        (lambda p, lp, h, lh: (p[:2], lp[:2], h, lh), "batches differ"),
        (lambda p, lp, h, lh: (p, lp, h + VOCAB, lh), r"hypothesis's token ids must lie in \[0, 49\]"),
        (lambda p, lp, h, lh: (p - VOCAB, lp, h, lh), r"premise's token ids must lie in \[0, 49\]"),
    ],
)
def test_bad_inputs_raise_value_error(change, message):
    model = ESIM(VOCAB, embedding_dim=4, hidden_size=4)
    with pytest.raises(ValueError, match=message):
        model(*change(*BATCH))


def test_unknown_lstm_mode_is_a_value_error():
    with pytest.raises(ValueError, match="lstm must be one of"):
        ESIM(VOCAB, lstm="sideways")


def test_sentences_padded_to_length_zero():
    # Every premise empty and padded to no positions at all: (B, 0) token ids.
    model = ESIM(VOCAB, embedding_dim=8, hidden_size=6, dropout=0.0).eval()
    premise, _, hypothesis, len_h = BATCH
    empty, no_lengths = premise[:, :0], torch.zeros(len(premise), dtype=torch.int64)
    logits = model(empty, no_lengths, hypothesis, len_h)
    assert logits.shape == (len(premise), 3) and torch.isfinite(logits).all()
    torch.testing.assert_close(logits, model(premise[:, :1] * 0, no_lengths, hypothesis, len_h))
