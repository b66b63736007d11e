"""ESIM (Chen et al. 2017, "Enhanced LSTM for Natural Language Inference") on the fused ops."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .bilstm import MODES, run_bilstm
from .layers import EnhancedProjection, MaskedPooling, SoftAlignment


def _check_inputs(premise: Tensor, premise_lengths: Tensor, hypothesis: Tensor,
                  hypothesis_lengths: Tensor, vocab_size: int) -> None:  # fmt: skip
    """Token ids (B, L) int64 in the vocabulary and lengths (B,) int64 in [0, L] for both
    sentences. The values are read back in one transfer (one device sync on CUDA), and checked
    with torch._check_value: a ValueError in eager mode, a runtime assert in an exported program
    (where they are data-dependent symbols, which an `if` cannot test)."""
    sentences = (("premise", premise, premise_lengths), ("hypothesis", hypothesis, hypothesis_lengths))
    for name, tokens, lengths in sentences:
        if tokens.ndim != 2 or tokens.dtype != torch.int64:
            raise ValueError(f"{name} must be an int64 (B, L) tensor of token ids, got "
                             f"{tokens.dtype} of shape {tuple(tokens.shape)}")  # fmt: skip
        if lengths.shape != tokens.shape[:1] or lengths.dtype != torch.int64:
            raise ValueError(f"{name}_lengths must be int64 of shape ({tokens.shape[0]},), got "
                             f"{lengths.dtype} of shape {tuple(lengths.shape)}")  # fmt: skip
    if premise.shape[0] != hypothesis.shape[0]:
        raise ValueError(f"premise and hypothesis batches differ: {premise.shape[0]} vs "
                         f"{hypothesis.shape[0]}")  # fmt: skip
    ranges = []  # (what, lowest allowed, highest allowed, values)
    for name, tokens, lengths in sentences:
        if lengths.numel():
            ranges.append((f"{name}_lengths", f"the padded length {tokens.shape[1]}", 0,
                           tokens.shape[1], lengths))  # fmt: skip
        if tokens.numel():
            ranges.append((f"{name}'s token ids", f"the vocabulary of {vocab_size}", 0,
                           vocab_size - 1, tokens))  # fmt: skip
    if not ranges:
        return
    extremes = torch.stack([e for *_, values in ranges for e in torch.aminmax(values)])
    for (what, limit, lowest, highest, _), (low, high) in zip(ranges, extremes.view(-1, 2).tolist()):
        def message(what=what, limit=limit, lowest=lowest, highest=highest, low=low, high=high):
            return f"{what} must lie in [{lowest}, {highest}] ({limit}), got [{low}, {high}]"

        torch._check_value(low >= lowest, message)
        torch._check_value(high <= highest, message)


class ESIM(nn.Module):
    """Enhanced sequential inference: `model(premise, premise_lengths, hypothesis,
    hypothesis_lengths) -> logits (B, num_classes)`.

    premise (B, Lp) and hypothesis (B, Lh) are right-padded int64 token ids; their lengths are
    int64 (B,) (0 is an empty text). The layers: embedding, a BiLSTM encoder, soft alignment in
    both directions, the enhancement `[x; x~; x - x~; x * x~]` projected to `hidden_size` (folded,
    never built 4x wide) with ReLU, a composition BiLSTM, masked mean+max pooling of both
    sentences and a tanh MLP.

    Args:
        fused: True runs alignment, pooling and projection on dynbatch_ext's custom ops; False on
            the pure PyTorch references. Same parameters, same results.
        lstm: how the BiLSTMs meet padding (see dynbatch_ext.nn.bilstm). "packed"
            (PackedSequence) and "flipped" (each direction on the padded tensor, the backward
            one on rows reversed within their length) keep padding out and agree to rounding;
            "auto" (default) takes packed on CUDA and flipped on the CPU, where it runs oneDNN's
            fused kernel. "padded" runs over the padding, as the common baseline does.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 300,
        hidden_size: int = 300,
        num_classes: int = 3,
        dropout: float = 0.5,
        padding_idx: int = 0,
        fused: bool = True,
        lstm: str = "auto",
    ):
        super().__init__()
        if lstm not in MODES:
            raise ValueError(f"lstm must be one of {MODES}, got {lstm!r}")
        self.lstm_mode = lstm
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.align = SoftAlignment(fused)
        self.project = EnhancedProjection(2 * hidden_size, hidden_size, fused=fused)
        self.composer = nn.LSTM(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.pool = MaskedPooling(fused)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(8 * hidden_size, hidden_size),
            nn.Tanh(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, num_classes),
        )

    @property
    def fused(self) -> bool:
        return self.align.fused

    @fused.setter
    def fused(self, value: bool) -> None:
        self.align.fused = self.pool.fused = self.project.fused = bool(value)

    def _pair(self, lstm: nn.LSTM, a: Tensor, len_a: Tensor, b: Tensor, len_b: Tensor):
        """Runs `lstm` over both sentences: (B, La, d), (B, Lb, d) -> (B, La, 2h), (B, Lb, 2h)."""
        return run_bilstm(lstm, a, len_a, self.lstm_mode), run_bilstm(lstm, b, len_b, self.lstm_mode)

    def forward(
        self, premise: Tensor, premise_lengths: Tensor, hypothesis: Tensor, hypothesis_lengths: Tensor
    ) -> Tensor:
        _check_inputs(premise, premise_lengths, hypothesis, hypothesis_lengths,
                      self.embedding.num_embeddings)  # fmt: skip
        # Sentences padded to length 0 (every one empty) get one padding position: an LSTM
        # cannot run over no steps, and the lengths keep the position out of every result.
        if premise.shape[1] == 0:
            premise = premise.new_full((premise.shape[0], 1), self.embedding.padding_idx or 0)
        if hypothesis.shape[1] == 0:
            hypothesis = hypothesis.new_full((hypothesis.shape[0], 1), self.embedding.padding_idx or 0)
        len_p, len_h = premise_lengths, hypothesis_lengths
        a, b = self._pair(  # (B, Lp, 2h), (B, Lh, 2h)
            self.encoder, self.dropout(self.embedding(premise)), len_p,
            self.dropout(self.embedding(hypothesis)), len_h,
        )  # fmt: skip
        a_tilde, b_tilde = self.align(a, b, len_p, len_h)
        m_a = torch.relu(self.project(a, a_tilde))  # (B, Lp, h)
        m_b = torch.relu(self.project(b, b_tilde))
        v_a, v_b = self._pair(self.composer, self.dropout(m_a), len_p, self.dropout(m_b), len_h)
        pooled = torch.cat([self.pool(v_a, len_p), self.pool(v_b, len_h)], dim=1)  # (B, 8h)
        return self.classifier(pooled)
