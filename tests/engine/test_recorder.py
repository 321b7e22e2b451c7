"""The recorder: bounded buffer and ring, drains, threads, re-entry."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from callmetrics import (
    Analytics,
    LoggerContainer,
)
from callmetrics._engine.aggregate import FailedCall
from callmetrics._engine.recorder import (
    BUFFER_LIMIT,
    BULK_LIMIT,
    GROUPS_PER_DRAIN,
    OVERFLOW_NAME,
    Recorder,
)
from callmetrics._engine.wrap import BACKLOG


def test_events_ring_keeps_newest(loggers: LoggerContainer) -> None:
    """At most max_events events are kept, the newest, oldest first."""
    analytics = Analytics(loggers=loggers, max_events=5)

    @analytics.track("unit")
    def step(i: int) -> int:
        return i

    for i in range(23):
        step(i)
    events = analytics.events
    assert len(events) == 5
    starts = [e.start for e in events]
    assert starts == sorted(starts)
    assert analytics.call_counts == {"test_events_ring_keeps_newest.step": 23}


def test_events_ring_keeps_newest_across_functions() -> None:
    """The retained events are the newest max_events calls over all functions together."""
    analytics = Analytics(max_events=10)

    @analytics.track("unit")
    def ping() -> None:
        pass

    @analytics.track("unit")
    def pong() -> None:
        pass

    for _ in range(10):
        ping()
        pong()
    names = [e.function.rsplit(".", 1)[-1] for e in analytics.events]
    assert names == ["ping", "pong"] * 5


def test_events_ring_newest_kept_after_buffer_drain() -> None:
    """After thousands of calls (several bulk drains) the very last call is retained."""
    analytics = Analytics(max_events=3)

    @analytics.track("unit")
    def step(i: int) -> int:
        return i

    @analytics.track("unit")
    def last() -> None:
        pass

    for i in range(9000):
        step(i)
    last()
    events = analytics.events
    assert len(events) == 3
    assert events[-1].function.endswith("last")
    assert analytics.call_counts["test_events_ring_newest_kept_after_buffer_drain.step"] == 9000


def test_max_events_zero_keeps_everything() -> None:
    """max_events=0 means no cap."""
    analytics = Analytics(max_events=0)

    @analytics.track("unit")
    def step() -> None:
        pass

    for _ in range(12_000):
        step()
    assert len(analytics.events) == 12_000


def test_failures_drain_in_bulk_without_a_read(quiet: LoggerContainer) -> None:
    """Failing calls share the bounded buffer with successes, so memory stays bounded."""
    analytics = Analytics(loggers=quiet, max_events=10)

    @analytics.track("unit")
    def explode() -> None:
        raise ValueError

    for _ in range(3 * 4096):
        with contextlib.suppress(ValueError):
            explode()
    # White-box: without any read-back call, the buffer never held more than one chunk.
    assert len(analytics.buffer) <= 3 * BUFFER_LIMIT
    assert analytics.call_counts == {"test_failures_drain_in_bulk_without_a_read.explode": 3 * 4096}


def test_memory_stays_bounded(quiet: LoggerContainer) -> None:
    """100,000 more calls (some failing) with max_events=1000 grow the heap by under 2 MB."""
    analytics = Analytics(loggers=quiet, max_events=1000)

    @analytics.track("unit")
    def ok(i: int) -> int:
        return i

    @analytics.track("unit")
    def bad(i: int) -> None:
        raise ValueError(i)

    def run(calls: int) -> None:
        for i in range(calls):
            ok(i)
            if i % 10 == 0:
                with contextlib.suppress(ValueError):
                    bad(i)

    run(20_000)  # fill the ring, the sketch's buckets and the buffers first
    analytics.get_stats()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(100_000)
        analytics.get_stats()
        grown, peak = (size - before for size in tracemalloc.get_traced_memory())
    finally:
        tracemalloc.stop()
    # Keeping every call would take about 7 MB here (two floats and a list slot each).
    assert grown < 2_000_000
    assert peak < 3_000_000
    assert analytics.call_counts == {"test_memory_stays_bounded.ok": 120_000,
                                     "test_memory_stays_bounded.bad": 12_000}


def test_counts_are_exact_beyond_the_cap(quiet: LoggerContainer) -> None:
    """call_counts and success_counts count every call, not just the retained ones."""
    analytics = Analytics(loggers=quiet, max_events=7)

    @analytics.track("unit")
    def maybe(i: int) -> int:
        if i % 3 == 0:
            raise ValueError(i)
        return i

    for i in range(10_000):
        with contextlib.suppress(ValueError):
            maybe(i)
    key = "test_counts_are_exact_beyond_the_cap.maybe"
    assert analytics.call_counts == {key: 10_000}
    assert analytics.success_counts == {key: 10_000 - 3334}
    assert len(analytics.events) == 7
    stats = analytics.get_stats()
    assert stats["total_calls"] == 10_000
    assert stats["event_count"] == 7


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Make threads switch as often as possible, restoring the interval afterwards."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("tiny_switch_interval")
@pytest.mark.parametrize("level", [logging.CRITICAL, logging.INFO], ids=["quiet", "info"])
def test_counts_are_exact_under_threads(quiet: LoggerContainer, level: int) -> None:
    """8 threads calling tracked functions at once give exact counts and successes."""
    quiet.analytics.setLevel(level)  # INFO takes the wrappers' logging path on every call
    analytics = Analytics(loggers=quiet, max_events=100)
    calls = 20_000

    @analytics.track("unit")
    def work(i: int) -> int:
        if i % 10 == 0:
            raise ValueError(i)
        return i

    @analytics.track("unit")
    def other() -> None:
        pass

    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        for i in range(calls):
            with contextlib.suppress(ValueError):
                work(i)
            other()
            if i % 1000 == 0:
                analytics.get_stats()  # reads race with the writers too

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    prefix = "test_counts_are_exact_under_threads."
    assert analytics.call_counts == {prefix + "work": 8 * calls, prefix + "other": 8 * calls}
    assert analytics.success_counts == {prefix + "work": 8 * calls * 9 // 10,
                                        prefix + "other": 8 * calls}
    stats = analytics.get_stats()
    assert stats["total_calls"] == 16 * calls
    assert sum(stats["duration_counts"].values()) == 16 * calls
    assert len(analytics.events) == 100


def test_concurrent_tasks_are_counted(quiet: LoggerContainer) -> None:
    """Many asyncio tasks awaiting the same tracked coroutine are all counted."""
    analytics = Analytics(loggers=quiet)

    @analytics.track("io")
    async def fetch(i: int) -> int:
        await asyncio.sleep(0)
        if i % 4 == 0:
            raise ConnectionError
        return i

    async def main() -> None:
        await asyncio.gather(*(fetch(i) for i in range(200)), return_exceptions=True)

    asyncio.run(main())
    key = "test_concurrent_tasks_are_counted.fetch"
    assert analytics.call_counts == {key: 200}
    assert analytics.success_counts == {key: 150}


def test_memory_is_bounded_with_many_functions_and_no_reads(quiet: LoggerContainer) -> None:
    """1,000 functions round-robin, no read at all: the heap holds max_events + one chunk."""
    analytics = Analytics(loggers=quiet, max_events=1_000)
    fns = []
    for i in range(1_000):
        def fn() -> int:
            return 0
        fns.append(analytics.track("unit", name=f"f{i}")(fn))

    def run(rounds: int) -> None:
        for _ in range(rounds):
            for fn in fns:
                fn()

    run(5)  # every function has its aggregates; the ring is full
    # The sketches' buckets are the sketch's own (bounded per function, tested there):
    # count everything else the calls leave behind.
    not_sketch = [tracemalloc.Filter(inclusive=False, filename_pattern="*_sketch.py")]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(not_sketch)
        run(200)  # 200,000 calls, never read
        after = tracemalloc.take_snapshot().filter_traces(not_sketch)
        assert len(analytics.buffer) <= 3 * BUFFER_LIMIT
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    # Keeping every call would take 200,000 x ~72 bytes = 14 MB.
    assert grown < 2_000_000
    assert sum(analytics.call_counts.values()) == 205_000
    assert len(analytics.events) == 1_000


def test_ring_keeps_exactly_the_newest_calls_across_functions(quiet: LoggerContainer) -> None:
    """Whatever the chunking, the ring retains exactly the last max_events calls made."""
    analytics = Analytics(loggers=quiet, max_events=777)
    fns = [analytics.track("unit", name=f"f{i}")(lambda x: x) for i in range(7)]
    order = []
    for i in range(5_000):
        fns[i % 7](i)
        order.append(f"f{i % 7}")
    events = analytics.events
    assert len(events) == 777
    assert [e["Function"] for e in events] == order[-777:]
    stats = analytics.get_stats("f3")
    assert stats["event_count"] == order[-777:].count("f3")
    assert analytics.get_stats()["event_count"] == 777


def test_a_drain_takes_at_most_one_chunk(quiet: LoggerContainer) -> None:
    """A call that finds the buffer over-full drains one chunk, not everything."""
    analytics = Analytics(loggers=quiet)
    tracked = analytics.track("unit", name="f")(lambda: None)
    # Fill the buffer past its limit while a read holds the recorder (as another
    # thread's drain would): calls do not wait and do not drain.
    with analytics._recorder.lock:
        analytics._recorder._busy = True
        try:
            for _ in range(3 * BUFFER_LIMIT):
                tracked()
        finally:
            analytics._recorder._busy = False
    assert len(analytics.buffer) == 3 * 3 * BUFFER_LIMIT
    tracked()
    assert len(analytics.buffer) == 3 * (2 * BUFFER_LIMIT + 1)
    assert analytics.call_counts == {"f": 3 * BUFFER_LIMIT + 1}
    assert len(analytics.buffer) == 0


def test_a_drain_folds_at_most_a_bounded_number_of_functions(quiet: LoggerContainer) -> None:
    """Calls spread over many functions drain a few functions at a time, the first drain too.

    Regression: the first drain took a whole chunk however many functions it held
    (1,024 calls of 1,000 new functions: 13 to 23 ms in one call).
    """
    analytics = Analytics(loggers=quiet)
    fns = [analytics.track("unit", name=f"f{i}")(lambda: None) for i in range(100)]
    recorder = analytics._recorder
    with recorder.lock:
        recorder._busy = True  # as another thread's drain would: calls only buffer
        try:
            for i in range(BUFFER_LIMIT):
                fns[i % 100]()
        finally:
            recorder._busy = False
    fns[0]()  # finds the buffer full: drains one chunk
    folded = {stats.name: stats.calls for stats in recorder.stats.values() if stats.calls}
    assert folded == {f"f{i}": 1 for i in range(GROUPS_PER_DRAIN)}
    assert len(analytics.buffer) == 3 * (BUFFER_LIMIT + 1 - GROUPS_PER_DRAIN)
    assert sum(analytics.call_counts.values()) == BUFFER_LIMIT + 1  # a read drains it all


def test_bulk_drains_take_large_chunks_of_any_number_of_functions(
        quiet: LoggerContainer) -> None:
    """A whole program's run (``bulk=True``) drains a whole chunk of every function at once.

    Calls spread over many functions then fold grouped by function, not call by call:
    on docutils the drains cost about ten times less.  Counts stay exact.
    """
    analytics = Analytics(loggers=quiet, bulk=True)
    fns = [analytics.track("unit", name=f"f{i}")(lambda: None) for i in range(100)]
    recorder = analytics._recorder
    if isinstance(analytics.buffer, list):
        pytest.skip("the pure-Python path keeps its bounded drains (its buffer holds floats)")
    limit = recorder.chunk
    assert limit == BULK_LIMIT
    for i in range(limit - 1):
        fns[i % 100]()
    assert len(analytics.buffer) == 3 * (limit - 1)  # no drain before the limit
    assert all(stats.calls == 0 for stats in recorder.stats.values())
    fns[0]()  # fills the buffer: drains all of it, the hundred functions together
    assert len(analytics.buffer) == 0
    folded = {stats.name: stats.calls for stats in recorder.stats.values()}
    assert sum(folded.values()) == limit
    expected = {f"f{i}": len(range(i, limit - 1, 100)) + (i == 0) for i in range(100)}
    assert folded == expected
    for i in range(250):
        fns[i % 100]()
    assert sum(analytics.call_counts.values()) == limit + 250


def test_a_loop_of_failures_folds_in_bulk_and_many_functions_call_by_call(
        quiet: LoggerContainer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: failures' keys are distinct objects, yet one function's failures are one group.

    Folding each of 1,024 failures of one function on its own cost a loop of failing
    calls about 50% more per call.
    """
    analytics = Analytics(loggers=quiet)
    one_by_one: list[int] = []
    original = Recorder._fold_each

    def spy(self: Recorder, keys: list[Any], *rest: Any) -> list[Any]:
        one_by_one.append(len(keys))
        return original(self, keys, *rest)

    monkeypatch.setattr(Recorder, "_fold_each", spy)

    @analytics.track("unit")
    def explode() -> None:
        raise ValueError

    for _ in range(3 * BUFFER_LIMIT):
        with contextlib.suppress(ValueError):
            explode()
    assert list(analytics.call_counts.values()) == [3 * BUFFER_LIMIT]
    assert list(analytics.success_counts.values()) == [0]
    assert one_by_one == []
    fns = [analytics.track("unit", name=f"f{i}")(lambda: None) for i in range(200)]
    for i in range(2 * BUFFER_LIMIT):
        fns[i % 200]()
    assert analytics.call_counts["f0"] == len(range(0, 2 * BUFFER_LIMIT, 200))
    assert one_by_one  # calls of many functions, each folded as it comes


def test_drain_calls_folds_calls_buffered_elsewhere(analytics: Analytics) -> None:
    """The C accelerator's entry point: keys, starts and durations folded like a drain."""
    stats = analytics._recorder.stats_for("external", "unit", "ext", explicit=True)
    failed = FailedCall(stats, "ValueError", "boom", "x.py:1 in f")
    analytics._recorder.drain_calls([stats, stats, failed], [1.0, 2.0, 3.0], [0.5, 0.25, 2.0])
    got = analytics.get_stats("external")
    assert (got["total_calls"], got["total_success"]) == (3, 2)
    assert got["total_time"] == pytest.approx(2.75)
    assert got["slowest"]["Error"] == "ValueError"
    assert got["slowest"]["Message"] == "boom"
    assert [e["Duration (s)"] for e in analytics.events] == [0.5, 0.25, 2.0]
    with pytest.raises(ValueError, match="same length"):
        analytics._recorder.drain_calls([stats], [1.0, 2.0], [0.1])


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer (POSIX)")
def test_reads_and_calls_inside_a_signal_handler_are_safe() -> None:
    """A 0.5 ms timer whose handler calls a tracked function and reads never breaks a read.

    Regression (issue 12, item 1): the handler's read drained while the main thread
    was iterating the ring inside get_stats(): "deque mutated during iteration".
    """
    analytics = Analytics(max_events=500)

    @analytics.track("unit", name="main")
    def main_work(i: int) -> int:
        return i

    @analytics.track("unit", name="handler")
    def handler_work() -> None:
        pass

    handled = 0

    def on_timer(signum: int, frame: FrameType | None) -> None:
        nonlocal handled
        handler_work()
        handled += 1
        # A read nested in the main thread's read sees the aggregates as they stand
        # (possibly before its first drain): it must answer, not be complete.
        assert set(analytics.call_counts) <= {"main", "handler"}
        analytics.get_stats()

    previous = signal.signal(signal.SIGALRM, on_timer)
    signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
    made = 0
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            for i in range(3000):
                main_work(i)
            made += 3000
            analytics.get_stats()
            assert len(analytics.events) <= 500
            analytics.snapshot()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)
    assert handled > 0
    assert analytics.call_counts == {"main": made, "handler": handled}
    assert analytics.get_stats()["event_count"] == 500


def test_a_read_nested_in_a_drain_neither_drains_nor_waits(
    quiet: LoggerContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read from inside a drain (as a __del__ or signal handler may do) answers at once."""
    analytics = Analytics(loggers=quiet)
    tracked = analytics.track("unit", name="f")(lambda: None)
    inner: list[dict[str, int]] = []
    original = Recorder._fold

    def fold_and_read(self: Recorder, *chunk: Any) -> None:
        inner.append(analytics.call_counts)  # nested: sees the aggregates as they stand
        original(self, *chunk)

    monkeypatch.setattr(Recorder, "_fold", fold_and_read)
    for _ in range(BUFFER_LIMIT + 5):
        tracked()
    assert analytics.call_counts == {"f": BUFFER_LIMIT + 5}
    assert inner[0] == {}  # the first drain's nested read: nothing folded yet
    assert len(inner) == 2  # that drain, then the read's own


def test_names_past_max_functions_fold_into_one_entry(caplog: pytest.LogCaptureFixture) -> None:
    """Past max_functions, new names share '<other functions>'; one warning; exact totals."""
    analytics = Analytics({"max_functions": 3})
    fns = [analytics.track("unit", name=f"f{i}")(lambda: None) for i in range(10)]
    with caplog.at_level(logging.WARNING, logger="callmetrics"):
        more = [analytics.track("unit", name=f"g{i}")(lambda: None) for i in range(3)]
    for fn in fns + more:
        fn()
        fn()
    counts = analytics.call_counts
    assert counts == {"f0": 2, "f1": 2, "f2": 2, OVERFLOW_NAME: 20}
    assert sum(counts.values()) == 26
    assert analytics.get_stats()["total_calls"] == 26
    overflow = [r for r in caplog.records if "max_functions" in r.getMessage()]
    assert len(overflow) <= 1  # already warned while decorating the f's
    with pytest.raises(ValueError, match="max_functions"):
        Analytics({"max_functions": -1})
    with pytest.raises(TypeError, match="max_functions"):
        Analytics({"max_functions": 2.5})


def test_max_functions_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    """The overflow warning is logged once, naming the limit and the overflow entry."""
    analytics = Analytics({"max_functions": 1})
    with caplog.at_level(logging.WARNING, logger="callmetrics"):
        for i in range(5):
            analytics.track("unit", name=f"n{i}")(lambda: None)
    lines = [r.getMessage() for r in caplog.records if "max_functions" in r.getMessage()]
    assert len(lines) == 1
    assert "max_functions=1" in lines[0]
    assert OVERFLOW_NAME in lines[0]


def test_the_buffer_stays_bounded_while_eight_threads_call() -> None:
    """Threads that find a drain under way neither pile up calls nor all call back.

    Regression: under the GIL the draining thread waits its turn while seven others
    keep appending; the buffer reached 1.1 million calls (about 80 MB) and nearly
    every call failed the drain's try-lock.  Past BACKLOG chunks a call now waits
    for that drain.  (A watcher samples the length: it can miss the peak, never
    exceed it.)
    """
    analytics = Analytics(max_events=1_000)
    work = analytics.track("unit", name="work")(lambda i: i)
    buffer = analytics._recorder.buffer
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, len(buffer) // 3)
            time.sleep(0.0002)

    def call() -> None:
        for i in range(60_000):
            work(i)

    watcher = threading.Thread(target=watch)
    watcher.start()
    callers = [threading.Thread(target=call) for _ in range(8)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    done.set()
    watcher.join()
    assert analytics.call_counts == {"work": 480_000}
    assert len(analytics.events) == 1_000
    assert peak <= (BACKLOG + 2) * BUFFER_LIMIT


def test_a_read_ends_while_tracked_code_runs_inside_its_drain() -> None:
    """Tracked code run by a drain itself (here told of each fold) does not make reads loop."""
    analytics = Analytics()
    ping = analytics.track("work", name="ping")(lambda: None)
    analytics.watch_folds(lambda _calls: ping())  # each fold records one more call
    for _ in range(10):
        ping()
    counts = analytics.call_counts  # drains what is there, then what came meanwhile: ends
    assert 11 <= counts["ping"] <= 13
    analytics.watch_folds(None)
