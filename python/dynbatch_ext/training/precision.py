"""The precision a run computes in: float32, or its forward passes under torch.autocast."""
from __future__ import annotations

import contextlib

import torch


class UnsupportedAutocast(ValueError):
    """The device cannot run this model's layers in the autocast dtype asked for."""


def autocast_context(autocast: str | None, device: torch.device):
    """torch.autocast in that dtype on `device`, or nothing (float32)."""
    if autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, autocast))


def autocast_problem(autocast: str | None, device: torch.device) -> str | None:
    """Why the device's LSTM cannot run in the autocast dtype, or None where it can (or where
    there is no autocast).

    On a CPU without AVX-512-BF16 or AMX, oneDNN cannot build a bfloat16 LSTM, and a run would
    fail at its first step with "could not create a primitive descriptor" and no hint of why: so
    one step of a tiny LSTM is tried here, under the same autocast.
    """
    if autocast is None:
        return None
    probe = torch.nn.LSTM(2, 2, batch_first=True, bidirectional=True).to(device)
    try:
        with autocast_context(autocast, device):
            probe(torch.zeros(1, 2, 2, device=device))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[0]
        return (f"autocast={autocast!r}: torch's LSTM cannot run in {autocast} on this "
                f"{device.type} ({reason}); on the CPU, {autocast} LSTMs need AVX-512-BF16 or AMX. "
                "Train in float32 (leave out autocast, or --autocast)")  # fmt: skip
    return None


def check_autocast(autocast: str | None, device: torch.device) -> None:
    """Refuses, before training, an autocast dtype that the device's LSTM cannot run in."""
    problem = autocast_problem(autocast, device)
    if problem is not None:
        raise UnsupportedAutocast(problem)
