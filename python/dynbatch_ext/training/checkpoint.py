"""Checkpoints that resume a run to the same weights: model, optimizer, sampler and RNG state."""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist

FORMAT_VERSION = 1


def rng_states() -> list[torch.Tensor]:
    """Every rank's torch RNG state (dropout draws from it), gathered on all ranks."""
    mine = torch.get_rng_state()
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    return gathered


def save(path: Path, payload: dict) -> None:
    """Writes atomically: a run killed mid-write leaves the previous checkpoint intact."""
    partial = path.with_suffix(".partial")
    torch.save({"format_version": FORMAT_VERSION, **payload}, partial)
    os.replace(partial, path)


def load(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"--resume: there is no checkpoint at {path}; start the run without --resume")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {payload.get('format_version')!r} is not "
                         f"{FORMAT_VERSION}, the one this version of dynbatch_ext writes")  # fmt: skip
    return payload


def restore_rng(states: list[torch.Tensor], rank: int) -> None:
    if len(states) <= rank:
        raise ValueError(f"the checkpoint holds RNG states of {len(states)} rank(s), not of rank "
                         f"{rank}: resume with the world size it was saved with")  # fmt: skip
    torch.set_rng_state(states[rank])
