"""Dropping functions too short to track cheaply (``callmetrics run`` without ``--exact``)."""

from __future__ import annotations

import importlib
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callmetrics import Analytics
from callmetrics._zerocode.instrument import (
    Instrumentation,
    Matcher,
    make_instrumentation,
    start,
    stop,
)
from callmetrics._zerocode.prune import Pruner

CODE = """
    import time

    def tiny():
        return 1

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    def slow():
        time.sleep(0.005)
"""


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[str]:
    name = f"prunepkg{id(tmp_path)}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "work.py").write_text(textwrap.dedent(CODE))
    (tmp_path / name / "user.py").write_text(f"from {name}.work import tiny\n")
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    yield name
    sys.path.remove(str(tmp_path))
    for key in [k for k in sys.modules if k.startswith(name)]:
        del sys.modules[key]


def test_short_functions_are_dropped_the_others_kept(modules: str) -> None:
    analytics = Analytics()
    inst = Instrumentation(analytics, Matcher([f"{modules}.*"]), "function")
    start(inst)
    try:
        work = importlib.import_module(f"{modules}.work")
        user = importlib.import_module(f"{modules}.user")
        for _ in range(1_000):
            work.tiny()
        work.fib(15)  # 1,973 calls
        for _ in range(3):
            work.slow()
        pruner = Pruner(analytics, inst, below=1e-3, after=1_000)
        assert pruner.check() == [f"{modules}.work.fib", f"{modules}.work.tiny"]
        assert pruner.check() == []  # nothing new
        before = analytics.call_counts
        wrappers = [work.fib, work.tiny, user.tiny]
        work.tiny()
        user.tiny()  # a reference taken by another instrumented module stops too
        work.fib(10)
        work.slow()
        after = analytics.call_counts
        kept = [work.fib, work.tiny, user.tiny]
        still_wrapped = work.slow
    finally:
        stop(inst)
    assert before[f"{modules}.work.tiny"] == after[f"{modules}.work.tiny"] == 1_000
    assert before[f"{modules}.work.fib"] == after[f"{modules}.work.fib"] == 1_973
    assert after[f"{modules}.work.slow"] == 4  # still tracked
    assert set(pruner.dropped) == {f"{modules}.work.fib", f"{modules}.work.tiny"}
    # Nothing was rebound: the names hold the same (now pass-through) wrappers.
    assert all(a is b for a, b in zip(kept, wrappers, strict=True))
    assert kept[1] is kept[2]
    assert still_wrapped.__wrapped__.__code__.co_filename.endswith("work.py")  # a wrapper


REGISTRY_CODE = """
    REGISTRY = {}
    CALLBACKS = []

    def fast(x):
        return x

    def register(func):
        REGISTRY[func] = func.__name__
        CALLBACKS.append(func)
        return func

    def gen(n):
        yield from range(n)
"""


def test_pruning_never_rebinds_every_reference_keeps_working(modules: str,
                                                             tmp_path: Path) -> None:
    """A pruned function's wrapper becomes a pass-through in place.

    Registries keyed by it, lists holding it and ``is`` keep working; its calls stop
    counting.
    """
    (tmp_path / modules / "reg.py").write_text(textwrap.dedent(REGISTRY_CODE))
    analytics = Analytics()
    inst = Instrumentation(analytics, Matcher([f"{modules}.*"]), "function")
    start(inst)
    try:
        reg = importlib.import_module(f"{modules}.reg")
        fast = reg.register(reg.fast)  # the wrapper, stored by the program itself
        holder = {"f": reg.fast}
        for i in range(1_000):
            reg.fast(i)
            list(reg.gen(1))
        assert inst.names() == {f"{modules}.reg.fast", f"{modules}.reg.register",
                                f"{modules}.reg.gen"}
        gen = reg.gen
        assert inst.drop({f"{modules}.reg.fast", f"{modules}.reg.gen"}) == 2
        assert inst.names() == {f"{modules}.reg.register"}
        assert reg.gen is gen  # a generator function's callable passes through too
        assert reg.fast is fast is holder["f"]
        assert reg.REGISTRY[reg.fast] == "fast"
        assert reg.CALLBACKS.index(reg.fast) == 0
        assert [reg.fast(i) for i in range(3)] == [0, 1, 2]
        assert list(reg.gen(2)) == [0, 1]
        reg.CALLBACKS.remove(reg.fast)
        counts = analytics.call_counts
    finally:
        stop(inst)
    assert counts[f"{modules}.reg.fast"] == 1_000  # the pass-through records nothing
    assert counts[f"{modules}.reg.gen"] == 1_000  # dropped as well
    assert reg.fast is not fast  # stop() put the original back in the module...
    assert fast(5) == 5  # ...and the wrapper held elsewhere still works
    assert analytics.call_counts[f"{modules}.reg.fast"] == 1_000


def test_functions_below_the_call_count_are_not_judged_yet(modules: str) -> None:
    analytics = Analytics()
    inst = Instrumentation(analytics, Matcher([f"{modules}.*"]), "function")
    start(inst)
    try:
        work = importlib.import_module(f"{modules}.work")
        for _ in range(999):
            work.tiny()
        pruner = Pruner(analytics, inst, below=1e-3, after=1_000)
        assert pruner.check() == []
        work.tiny()
        assert pruner.check() == [f"{modules}.work.tiny"]
    finally:
        stop(inst)


def test_medians_are_get_stats_p50_for_many_functions_at_once() -> None:
    """What the pruner reads each time it looks: one drain, every median it asks for."""
    analytics = Analytics()
    fast = analytics.track("unit", name="fast")(lambda: None)
    slow = analytics.track("unit", name="slow")(lambda: sum(range(2_000)))
    for _ in range(300):
        fast()
        slow()
    medians = analytics.medians(["fast", "slow", "never"])
    assert medians == {"fast": analytics.get_stats("fast")["p50"],
                       "slow": analytics.get_stats("slow")["p50"]}
    fast_median, slow_median = medians["fast"], medians["slow"]
    assert fast_median is not None
    assert slow_median is not None
    assert fast_median < slow_median


def test_a_hot_short_function_is_dropped_by_its_count_not_the_clock(modules: str) -> None:
    """The pruner looks again each ``every`` calls recorded, however soon: no timer here."""
    analytics = Analytics()
    inst = make_instrumentation(analytics, Matcher([f"{modules}.*"]), "function")
    start(inst)
    pruner = Pruner(analytics, inst, after=1_000, every=4_096, first_look=3_600.0)
    pruner.start()
    try:
        work = importlib.import_module(f"{modules}.work")
        deadline = time.monotonic() + 30
        while f"{modules}.work.tiny" not in pruner.dropped and time.monotonic() < deadline:
            for _ in range(1_000):
                work.tiny()
    finally:
        pruner.stop()
        stop(inst)
    assert f"{modules}.work.tiny" in pruner.dropped  # the clock's first look is an hour away
    calls_then, median = pruner.dropped[f"{modules}.work.tiny"]
    assert 1_000 <= calls_then < 1_000_000
    assert median < 5e-6
    # Once stopped, the pruner is told of no more calls.
    assert analytics._recorder.on_fold is None
