"""The recorder: bounded buffer and ring, drains, threads, re-entry."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from callmetrics import (
    Analytics,
    LoggerContainer,
)
from callmetrics._recorder import BUFFER_LIMIT

SEED_KEYS = ["Function", "Event Type", "Start Time", "End Time", "Duration (s)", "Success",
             "Error", "Message", "Location"]
DAY = 86_400.0
# asyncio may run a timer up to its clock resolution early; durations of tracked calls
# that await asyncio.sleep(t) are checked against t less this margin.
ASYNCIO_EARLY = 1e-3


@pytest.fixture
def quiet() -> Iterator[LoggerContainer]:
    """Private loggers that drop everything below CRITICAL (for bulk calls that fail)."""
    made = [logging.getLogger(f"test.quiet.{role}") for role in ("console", "error", "analytics")]
    for logger in made:
        logger.setLevel(logging.CRITICAL)
    yield LoggerContainer(*made)
    for logger in made:
        logger.setLevel(logging.NOTSET)



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
