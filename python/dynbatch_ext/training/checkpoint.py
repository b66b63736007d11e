"""Checkpoints that resume a run to the same weights: model, optimizer, sampler and RNG state.

Written atomically (a run killed mid-write leaves the previous checkpoint whole), read with
`torch.load(weights_only=True)` (a file dropped into a run folder cannot run code), and checked
before anything is restored: every field present with its type, and a checksum of the whole
content, so that a truncated, damaged or hand-edited file is one clear error, not a traceback or
a silently different run.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.distributed as dist

FORMAT_VERSION = 2
# Every field of a checkpoint and its type.
FIELDS = {"config": dict, "vocab": list, "data_sha256": str, "model": dict, "optimizer": dict,
          "sampler": dict, "rng": list, "step": int, "train_seconds": float,
          "samples_seen": float, "calibration": (dict, type(None))}  # fmt: skip
WHAT_TO_DO = "restore a good copy, or start the run again without --resume"


def rng_states() -> list[torch.Tensor]:
    """Every rank's torch RNG state (dropout draws from it), gathered on all ranks."""
    mine = torch.get_rng_state()
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    return gathered


def content_sha256(value) -> str:
    """A digest of nested dicts, lists, tensors and plain values: their structure, types, shapes
    and every byte of every tensor."""
    digest = hashlib.sha256()

    def feed(item) -> None:
        if isinstance(item, dict):
            digest.update(b"{")
            for key in sorted(item, key=repr):
                feed(key)
                feed(item[key])
            digest.update(b"}")
        elif isinstance(item, (list, tuple)):
            digest.update(b"[")
            for element in item:
                feed(element)
            digest.update(b"]")
        elif isinstance(item, torch.Tensor):
            flat = item.detach().cpu().contiguous().reshape(-1)
            digest.update(f"tensor {item.dtype} {tuple(item.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
        else:
            digest.update(f"{type(item).__name__} {item!r};".encode())

    feed(value)
    return digest.hexdigest()


def save(path: Path, payload: dict) -> None:
    """Writes atomically, with the checksum of its content."""
    content = {"format_version": FORMAT_VERSION, **payload}
    content["content_sha256"] = content_sha256(content)
    partial = path.with_suffix(".partial")
    torch.save(content, partial)
    os.replace(partial, path)


def load(path: Path) -> dict:
    """The checkpoint at `path`, checked; any problem is a ValueError naming the file."""
    if not path.is_file():
        raise ValueError(f"--resume: there is no checkpoint at {path}; start the run without --resume")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises whatever the damage makes it raise
        raise ValueError(f"{path}: not a readable checkpoint ({_first_line(error)}); it is damaged "
                         f"or not a train-esim checkpoint: {WHAT_TO_DO}") from None  # fmt: skip
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        version = payload.get("format_version") if isinstance(payload, dict) else None
        raise ValueError(f"{path}: checkpoint format {version!r} is not {FORMAT_VERSION}, the one "
                         f"this version of dynbatch_ext writes: {WHAT_TO_DO}")  # fmt: skip
    for name, kind in FIELDS.items():
        if not isinstance(payload.get(name), kind):
            raise ValueError(f"{path}: the checkpoint's {name!r} is missing or not a "
                             f"{getattr(kind, '__name__', kind)}: {WHAT_TO_DO}")  # fmt: skip
    saved_digest = payload.pop("content_sha256", None)
    if saved_digest != content_sha256(payload):
        raise ValueError(f"{path}: the checkpoint's content does not match the checksum saved "
                         f"with it (damaged on disk, or edited): {WHAT_TO_DO}")  # fmt: skip
    return payload


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def restore_rng(states: list[torch.Tensor], rank: int) -> None:
    if len(states) <= rank:
        raise ValueError(f"the checkpoint holds RNG states of {len(states)} rank(s), not of rank "
                         f"{rank}: resume with the world size it was saved with")  # fmt: skip
    torch.set_rng_state(states[rank])
