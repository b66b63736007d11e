"""Argument checks shared by the Python API: bad input raises ValueError naming the problem."""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from .. import _C

_INT64_MAX = np.iinfo(np.int64).max


def as_lengths(lengths, name: str = "lengths") -> np.ndarray:
    """Returns `lengths` as a C-contiguous int64 array of shape (N,) or (N, 2).

    Accepts anything numpy can read (lists, numpy arrays, CPU torch tensors). Values are checked
    in C++ (negative, too long); here we check what numpy can tell: dtype, shape, emptiness.
    """
    if isinstance(lengths, torch.Tensor):
        if lengths.is_meta:
            raise ValueError(f"{name} is a tensor on the meta device, which holds no values")
        if lengths.is_floating_point() or lengths.is_complex():
            raise ValueError(f"{name} must be integers, got a {lengths.dtype} tensor; lengths "
                             "are token or character counts")  # fmt: skip
        lengths = lengths.detach().cpu().numpy()
    try:
        array = np.asarray(lengths)
    except (TypeError, ValueError) as error:  # ragged nested lists and the like
        raise ValueError(f"{name} must be an array of integers: {error}") from None
    if array.ndim >= 1 and array.shape[0] == 0:
        raise ValueError(f"{name} is empty: there is nothing to batch")
    if array.dtype.kind == "f":
        problem = " (it contains NaN)" if np.isnan(array).any() else ""
        raise ValueError(
            f"{name} must be integers, got a {array.dtype} array{problem}; "
            f"lengths are token or character counts"
        )
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {array.dtype}")
    if array.ndim not in (1, 2) or (array.ndim == 2 and array.shape[1] != 2):
        raise ValueError(
            f"{name} must have shape (N,) for single texts or (N, 2) for pairs, "
            f"got shape {array.shape}"
        )
    if array.dtype.kind == "u" and array.size and array.max() > _INT64_MAX:
        raise ValueError(f"{name} holds values too large for int64")
    return np.ascontiguousarray(array, dtype=np.int64)


def check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """An integer in [minimum, maximum]; without a maximum, at most int64's largest, as every
    integer that reaches the C++ core is an int64."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"{name} must be in [{minimum}, {maximum}], got {value}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if value > _INT64_MAX:
        raise ValueError(f"{name} must be at most {_INT64_MAX} (int64), got {value}")
    return value


def check_positive_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:
        digits = str(value)
        raise ValueError(f"{name} must be a positive finite number, got {digits[:12]}... "
                         f"({len(digits)} digits, too large for a float)") from None  # fmt: skip
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def check_pad_multiple(value) -> int:
    """pad_multiple: lengths are padded up to a multiple of it, at most the longest length the
    core takes (so that padded lengths cannot overflow)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > _C.MAX_LENGTH:
        raise ValueError(f"pad_multiple must be at most {_C.MAX_LENGTH} (the longest length "
                         f"supported), got {value}")  # fmt: skip
    return check_int("pad_multiple", value, 1)


def replicas_and_rank(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """(num_replicas, rank), filling what the caller left out from torch.distributed when it is
    initialised (else 1 and 0), checked."""
    initialised = torch.distributed.is_available() and torch.distributed.is_initialized()
    if num_replicas is None:
        num_replicas = torch.distributed.get_world_size() if initialised else 1
    if rank is None:
        rank = torch.distributed.get_rank() if initialised else 0
    num_replicas = check_int("num_replicas", num_replicas, 1)
    return num_replicas, check_int("rank", rank, 0, num_replicas - 1)


def settings_differences(saved: dict, mine: dict) -> list[str]:
    """Each setting of `mine` that a saved state holds otherwise, as "name: saved with X, this
    one has Y"."""
    saved = saved if isinstance(saved, dict) else {}
    return [f"{key}: saved with {saved.get(key)!r}, this one has {value!r}"
            for key, value in mine.items() if saved.get(key) != value]  # fmt: skip
