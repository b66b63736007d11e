"""Wall-clock comparison of several ways to do the same work, measured in the same run."""
from __future__ import annotations

import contextlib
import gc
import statistics
import time
from typing import Callable


def compare(candidates: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict:
    """Median seconds per candidate (see `compare_runs`)."""
    return {name: statistics.median(values) for name, values in compare_runs(candidates, repeats, warmup).items()}


def compare_runs(candidates: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict:
    """Seconds of every repeat per candidate. Runs alternate (a, b, a, b, ...) so that drift in
    the machine's speed hits every candidate alike; warm-up runs fault in memory and caches first."""
    for _ in range(warmup):
        for run in candidates.values():
            run()
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    with _collector_paused():
        for _ in range(repeats):
            for name, run in candidates.items():
                start = time.perf_counter()
                result = run()
                seconds[name].append(time.perf_counter() - start)
                del result
    return seconds


@contextlib.contextmanager
def _collector_paused():
    """No garbage collection pause inside a timed run, as timeit does it: one full collection
    first, none until the block ends. Tensors are freed by reference counting all the same, and
    one collection per run would walk the whole heap each time (a third of a second once
    torch.compile and transformers have filled it)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
