"""`dynbatch_ext::lstm`: one LSTM layer as one op, declared in Python (torch.library.custom_op)
for exported programs: torch's own decomposition of aten.lstm unrolls the time steps and so
fixes the length. nn/bilstm.py calls it when exporting."""
from __future__ import annotations

import torch
from torch import Tensor


@torch.library.custom_op("dynbatch_ext::lstm", mutates_args=())
def lstm_layer(x: Tensor, weights: list[Tensor], bidirectional: bool) -> Tensor:
    """One LSTM layer over x (B, L, d_in), batch first, from zero states, without dropout: what
    nn.LSTM computes, with its flat weights (per direction: weight_ih, weight_hh, bias_ih,
    bias_hh)."""
    hidden = weights[1].shape[1]
    zeros = x.new_zeros(2 if bidirectional else 1, x.shape[0], hidden)
    return torch.lstm(x, (zeros, zeros), weights, True, 1, 0.0, False, bidirectional, True)[0]


@lstm_layer.register_fake
def _(x, weights, bidirectional):
    directions = 2 if bidirectional else 1
    return x.new_empty(x.shape[0], x.shape[1], directions * weights[1].shape[1])
