"""Thread CPU time per call (``cpu_time=True``): measured on the call's own thread, exact.

Checked against the real clock (a function doing known CPU work and sleeping; four
threads) and, for exactness and the two hot paths, against a deterministic stand-in
for the thread's CPU clock: every reading advances its thread's clock by exactly 1 µs,
so each measured call counts exactly 1 µs whatever the machine does meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from callmetrics import Analytics
from callmetrics._analytics import python_measure
from callmetrics._engine import accel as _accel
from callmetrics._engine import cputime
from callmetrics._engine import wrap as _wrap

PATHS = ["c", "python"] if _accel.IMPLEMENTATION == "c" else ["python"]


def tracker(analytics: Analytics, path: str) -> Callable[[Callable[..., Any]], Any]:
    """``analytics.track("unit")`` with the sync wrapper of ``path`` (C or pure Python)."""

    def decorate(func: Callable[..., Any]) -> Any:
        saved = _wrap._BUILDERS["sync"]
        if path == "python":
            _wrap._BUILDERS["sync"] = _wrap._wrap_sync
        try:
            return analytics.track("unit")(func)
        finally:
            _wrap._BUILDERS["sync"] = saved

    return decorate


def block(analytics: Analytics, path: str, name: str) -> Any:
    """``analytics.measure(name)``, answered in C or by the pure-Python method."""
    return analytics.measure(name) if path == "c" else python_measure(analytics, name)


def cpu_of(analytics: Analytics, suffix: str) -> float | None:
    found = [s for s in analytics.snapshot() if s.name.endswith(suffix)]
    assert len(found) == 1, [s.name for s in analytics.snapshot()]
    return found[0].cpu_time


def spin(seconds: float) -> float:
    """Use about ``seconds`` of this thread's CPU; return what the thread's clock says it took."""
    began = time.thread_time()
    x = 0
    while time.thread_time() - began < seconds:
        for i in range(1_000):
            x += i
    return time.thread_time() - began


# ------------------------------------------------------------ the real clock
@pytest.mark.parametrize("path", PATHS)
def test_cpu_work_and_sleep_measure_the_cpu_work_only(path: str) -> None:
    """CPU work, then a sleep: the thread's clock as seen inside, far below the duration."""
    analytics = Analytics(cpu_time=True)
    inside: list[float] = []

    @tracker(analytics, path)
    def work() -> None:
        began = time.thread_time()
        spin(0.02)
        time.sleep(0.1)
        inside.append(time.thread_time() - began)

    for _ in range(3):
        work()
    with block(analytics, path, "blk"):
        began = time.thread_time()
        spin(0.02)
        time.sleep(0.1)
        took = time.thread_time() - began
    cpu = cpu_of(analytics, "work")
    assert cpu is not None
    # The measured window holds the inside one, plus callmetrics' few microseconds a call.
    assert sum(inside) <= cpu <= sum(inside) + 3 * 0.002
    snap = next(s for s in analytics.snapshot() if s.name.endswith("work"))
    assert snap.total >= 0.3  # the sleeps
    assert cpu < snap.total / 3
    blk = cpu_of(analytics, "blk")
    assert blk is not None
    assert took <= blk <= took + 0.002
    assert analytics.get_stats()["cpu_time"] == pytest.approx(cpu + blk)


def test_four_threads_each_get_their_own_cpu_time() -> None:
    """Four threads: one sleeps while three spin; no CPU time goes across threads."""
    analytics = Analytics(cpu_time=True)
    inside: dict[str, float] = {}
    start = threading.Barrier(4)

    @analytics.track("unit")
    def sleeper() -> None:
        began = time.thread_time()
        time.sleep(0.3)
        inside["sleeper"] = time.thread_time() - began

    @analytics.track("unit")
    def spinner(name: str, seconds: float) -> None:
        inside[name] = spin(seconds)

    def run(name: str) -> None:
        start.wait(timeout=30)
        if name == "sleeper":
            sleeper()
        else:
            with analytics.measure(name):
                spinner(name, 0.05)

    threads = [threading.Thread(target=run, args=(name,))
               for name in ("sleeper", "a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    sleeping = cpu_of(analytics, "sleeper")
    assert sleeping is not None
    assert sleeping < 0.01  # the others' CPU work is not its own
    spun = cpu_of(analytics, "spinner")
    assert spun is not None
    expected = inside["a"] + inside["b"] + inside["c"]
    assert expected <= spun <= expected + 3 * 0.002
    for name in ("a", "b", "c"):  # each block: its own thread's spinner, nothing more
        own = cpu_of(analytics, name)
        assert own is not None
        assert inside[name] <= own <= inside[name] + 0.004


# ------------------------------------------------- a deterministic CPU clock
@pytest.fixture
def microsecond_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reading of a thread's CPU clock advances that thread's clock by exactly 1 µs."""
    local = threading.local()

    def fake() -> int:
        local.now = getattr(local, "now", 0) + 1_000
        return int(local.now)

    monkeypatch.setattr(cputime, "thread_time_ns", fake)


def _play(analytics: Analytics, path: str, threads: int, calls: int) -> None:
    @tracker(analytics, path)
    def leaf(i: int) -> int:
        return i + 1

    @tracker(analytics, path)
    def outer(i: int) -> int:
        return int(leaf(i))

    def run() -> None:
        for i in range(calls):
            outer(i)
            with block(analytics, path, "blk"):
                leaf(i)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)


@pytest.mark.usefixtures("microsecond_clock")
@pytest.mark.parametrize("path", PATHS)
def test_every_call_counts_exactly_once_under_threads(path: str) -> None:
    """4 threads, 3,000 rounds each: every call's CPU time is folded exactly once.

    A leaf call reads the clock twice: 1 µs.  A call around a leaf also holds the
    leaf's two readings: 3 µs (a caller's CPU time includes its callees', as its
    duration does).
    """
    analytics = Analytics(cpu_time=True, max_events=0)
    _play(analytics, path, 4, 3_000)
    calls = 4 * 3_000
    assert cpu_of(analytics, "outer") == pytest.approx(3 * calls * 1e-6, rel=1e-9)
    assert cpu_of(analytics, "leaf") == pytest.approx(2 * calls * 1e-6, rel=1e-9)
    assert cpu_of(analytics, "blk") == pytest.approx(3 * calls * 1e-6, rel=1e-9)
    assert analytics.get_stats()["cpu_time"] == pytest.approx(8 * calls * 1e-6, rel=1e-9)


@pytest.mark.skipif(len(PATHS) < 2, reason=f"the C accelerator is not in use ({_accel.REASON})")
@pytest.mark.usefixtures("microsecond_clock")
def test_c_and_python_hot_paths_record_the_same_cpu_times() -> None:
    """The same calls through the C wrappers and the pure-Python ones: the same CPU times."""
    found = {}
    for path in PATHS:
        analytics = Analytics(cpu_time=True, max_events=0)
        _play(analytics, path, 2, 500)
        # In whole nanoseconds: the seconds are summed fold by fold, and where the
        # folds fall (when a thread drains) changes the last bits of a float sum.
        found[path] = {s.name.rsplit(".", 1)[-1]: (s.calls, round((s.cpu_time or -1) * 1e9))
                       for s in analytics.snapshot()}
    assert found["c"] == found["python"]
    assert found["c"]["leaf"] == (2_000, 2_000_000)


@pytest.mark.usefixtures("microsecond_clock")
def test_merge_restore_and_reset_keep_it_exact() -> None:
    """merge_with adds, restore adds stored figures, reset starts again from zero."""
    first, second = Analytics(cpu_time=True), Analytics(cpu_time=True)
    for analytics, calls in ((first, 10), (second, 5)):
        work = analytics.track("unit", name="work")(lambda: None)
        for _ in range(calls):
            work()
    first.merge_with(second)
    assert cpu_of(first, "work") == pytest.approx(15e-6)
    assert second.get_stats()["cpu_time"] is None  # moved: nothing left there
    view = Analytics()
    view.restore(first.snapshot(), [])
    assert cpu_of(view, "work") == pytest.approx(15e-6)
    first.reset()
    assert first.get_stats()["cpu_time"] is None
    work = first.track("unit", name="again")(lambda: None)
    work()
    assert cpu_of(first, "again") == pytest.approx(1e-6)


def test_merging_measured_with_unmeasured_calls_is_unknown() -> None:
    """A function measured in one instance and not in the other: its CPU time is unknown."""
    measured, plain = Analytics(cpu_time=True), Analytics()
    for analytics in (measured, plain):
        analytics.track("unit", name="work")(lambda: None)()
    measured.merge_with(plain)
    assert cpu_of(measured, "work") is None


# --------------------------------------------------- not measured: unknown
def test_off_by_default_and_unknown_rather_than_zero() -> None:
    """Without the setting no function has a CPU time: None everywhere, never 0."""
    analytics = Analytics()
    analytics.track("unit", name="work")(lambda: None)()
    with analytics.measure("blk"):
        pass
    assert analytics.settings.cpu_time is False
    assert analytics.observers == []  # the wrappers' fast path is untouched
    assert all(s.cpu_time is None for s in analytics.snapshot())
    assert analytics.get_stats()["cpu_time"] is None
    assert analytics.to_dict()["totals"]["cpu_time"] is None


def test_coroutines_generators_and_async_blocks_are_not_measured() -> None:
    """What suspends is left out (other work runs on its thread meanwhile): None."""
    analytics = Analytics(cpu_time=True)

    @analytics.track("unit")
    async def fetch() -> None:
        await asyncio.sleep(0)

    @analytics.track("unit")
    def numbers() -> Iterator[int]:
        yield 1

    async def main() -> None:
        await fetch()
        async with analytics.measure("mixed"):
            await asyncio.sleep(0)

    with analytics.measure("mixed"):  # measured, until an `async with` makes it unknown
        pass
    asyncio.run(main())
    list(numbers())
    with analytics.measure("mixed"):
        pass
    assert cpu_of(analytics, "fetch") is None
    assert cpu_of(analytics, "numbers") is None
    assert cpu_of(analytics, "mixed") is None
    assert analytics.get_stats()["cpu_time"] is None


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_bad_setting_fails_early_naming_the_field(value: object) -> None:
    """cpu_time takes a bool: anything else is refused when the instance is made."""
    with pytest.raises(TypeError, match=r"AnalyticsConfig\.cpu_time must be a bool"):
        Analytics({"cpu_time": value})
