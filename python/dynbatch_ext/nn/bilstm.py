"""Running a one-layer bidirectional nn.LSTM over right-padded, variable-length rows.

Three ways, chosen by name:
- "packed":  PackedSequence. Padding never enters; cuDNN runs it natively, but on the CPU the
             fused oneDNN kernel does not take packed input and PyTorch steps through time in
             small matrix products (about 1.4x slower than padded at B=32, d=300 here).
- "flipped": the padded tensor through each direction separately, the backward direction on
             rows reversed within their own length. Trailing padding can then only follow the
             valid steps in both directions, so valid outputs equal "packed"'s, and both calls
             take the fused kernel. Positions past a row's length hold values no one may read.
- "padded":  the padded tensor as it is (the common baseline): the backward direction starts in
             the padding, so valid outputs depend on how much padding the batch has.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..ops.lstm import lstm_layer

MODES = ("auto", "packed", "flipped", "padded")


def resolve_mode(mode: str, device: torch.device) -> str:
    """"auto": packed on CUDA (cuDNN's packed kernels), flipped elsewhere (oneDNN's fused one);
    flipped in an exported program, since packing depends on the lengths' values."""
    if mode == "auto":
        return "packed" if device.type == "cuda" and not torch.compiler.is_exporting() else "flipped"
    if mode == "packed" and torch.compiler.is_exporting():
        raise ValueError("lstm='packed' cannot be exported: packing depends on the lengths' "
                         "values. lstm='flipped' computes the same and exports")  # fmt: skip
    return mode


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """x (B, L, d): row b's first lengths[b] steps reversed, the rest left in place."""
    steps = torch.arange(x.shape[1], device=x.device)
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    return x.gather(1, index[:, :, None].expand_as(x))


def _weights(lstm: nn.LSTM, suffixes) -> list[Tensor]:
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return [getattr(lstm, f"{name}_l0{suffix}") for suffix in suffixes for name in names]


def _one_direction(lstm: nn.LSTM, x: Tensor, suffix: str) -> Tensor:
    if torch.compiler.is_exporting():
        return lstm_layer(x, _weights(lstm, [suffix]), False)
    zeros = x.new_zeros(1, x.shape[0], lstm.hidden_size)
    # torch.lstm is what nn.LSTM calls: one layer, no dropout, unidirectional, batch first.
    return torch.lstm(x, (zeros, zeros), _weights(lstm, [suffix]), True, 1, 0.0, lstm.training,
                      False, True)[0]  # fmt: skip


def _both_directions(lstm: nn.LSTM, x: Tensor) -> Tensor:
    if torch.compiler.is_exporting():
        return lstm_layer(x, _weights(lstm, ["", "_reverse"]), True)
    return lstm(x)[0]  # nn.LSTM's own call keeps cuDNN's flattened weights


def run_bilstm(lstm: nn.LSTM, x: Tensor, lengths: Tensor, mode: str) -> Tensor:
    """x (B, L, d_in), lengths (B,) int64 -> (B, L, 2h) with `mode` as in the module doc."""
    if not (lstm.bidirectional and lstm.num_layers == 1 and lstm.batch_first and lstm.bias):
        raise ValueError("run_bilstm needs a one-layer, bidirectional, batch-first nn.LSTM with biases")
    mode = resolve_mode(mode, x.device)
    if mode == "padded":
        return _both_directions(lstm, x)
    if mode == "flipped":
        forward = _one_direction(lstm, x, "")
        backward = _one_direction(lstm, reverse_within_length(x, lengths), "_reverse")
        return torch.cat([forward, reverse_within_length(backward, lengths)], dim=-1)
    if mode == "packed":
        # pack_padded_sequence refuses length 0: such a row runs one padded step, whose output
        # no later layer reads (the ops mask by the true lengths).
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                      enforce_sorted=False)  # fmt: skip
        return pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.shape[1])[0]
    raise ValueError(f"LSTM mode must be one of {MODES}, got {mode!r}")
