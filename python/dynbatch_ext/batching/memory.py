"""Peak tensor memory of a function, on the CPU from the profiler's allocation records.

torch keeps no allocator statistics on the CPU, and process RSS mixes in everything else the
process holds. With profile_memory=True the profiler records every tensor allocation and free of
c10's CPU allocator, compiled (inductor) buffers included, as a "[memory]" instant event with
its signed size; replaying them in time order gives the live tensor bytes over the call. Op-level
summaries would not do: they net out what an op (or a whole compiled graph) frees before it ends.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile


def quiet_profiler_start_stop_lines() -> None:
    """torch's profiler (kineto) prints a "USDT: ... profiler_start" and a "profiler_stop" line
    to stderr for every profiling session, and calibrate and the benchmark open hundreds. Kineto
    reads KINETO_LOG_LEVEL when the profiler first starts in a process; 6 is above those lines'
    level (5). It also hides kineto's errors (4), which these CPU-only sessions do not rely on. A
    KINETO_LOG_LEVEL of the user's own wins, and so does a profiler the process started before."""
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")


def _allocation_changes(fn: Callable[[], object]) -> list[tuple[float, int, int]]:
    """(time, signed bytes, address) of every CPU tensor allocation and free during `fn`."""
    quiet_profiler_start_stop_lines()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            result = fn()
            del result
    handle, path = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    try:
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as trace:
            events = json.load(trace)["traceEvents"]
    finally:
        os.unlink(path)
    return sorted(
        (event["ts"], event["args"]["Bytes"], event["args"]["Addr"])
        for event in events
        if event.get("name") == "[memory]" and event.get("args", {}).get("Device Type") == 0
    )


def _replay(changes) -> tuple[int, int]:
    """(peak, final) live bytes over the changes, counting frees of blocks allocated in them."""
    # Only frees of blocks allocated during the call count: the profiler reports the size of an
    # older block only if it happened to be allocated under an earlier profiling session, which
    # would make the figure depend on what ran before.
    allocated: dict[int, int] = {}
    live = peak = 0
    for _, delta, address in changes:
        if delta > 0:
            allocated[address] = delta
        elif allocated.pop(address, None) is None:
            continue
        live += delta
        peak = max(peak, live)
    return peak, live


def peak_cpu_tensor_bytes(fn: Callable[[], object]) -> int:
    """Most tensor bytes the call of `fn` had live at once, beyond those live before it."""
    return _replay(_allocation_changes(fn))[0]


def live_bytes_after(fn: Callable[[], object]) -> int:
    """Tensor bytes the call of `fn` allocated and left allocated (e.g. optimizer state)."""
    return _replay(_allocation_changes(fn))[1]


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak tensor memory of `fn` on `device` (the CUDA allocator's counters, or the profiler)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - baseline
    return peak_cpu_tensor_bytes(fn)
