"""bench/timing.py: alternating runs, timed without a garbage collection pause inside them."""
import gc

import pytest

from dynbatch_ext.bench.timing import compare, compare_runs


def test_runs_alternate_after_the_warmup_and_every_repeat_is_timed():
    calls = []
    seconds = compare_runs({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                           repeats=3, warmup=1)  # fmt: skip
    assert calls == ["a", "b"] * 4
    assert {name: len(values) for name, values in seconds.items()} == {"a": 3, "b": 3}
    assert all(value >= 0 for values in seconds.values() for value in values)
    assert set(compare({"a": lambda: None}, repeats=2)) == {"a"}


def test_the_collector_is_paused_in_timed_runs_only_and_restored_after_a_failure():
    seen = []

    def run():
        seen.append(gc.isenabled())

    assert gc.isenabled()
    compare_runs({"run": run}, repeats=2, warmup=1)
    assert seen == [True, False, False]  # the warm-up run, then the timed ones
    assert gc.isenabled()

    def failing():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        compare_runs({"failing": failing}, repeats=1, warmup=0)
    assert gc.isenabled()

    gc.disable()  # a caller that had it off keeps it off
    try:
        compare_runs({"run": run}, repeats=1, warmup=0)
        assert not gc.isenabled()
    finally:
        gc.enable()
