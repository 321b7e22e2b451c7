"""Calls in progress (``track_concurrency=True``): exact while calls are inside, 0 after."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Generator

import pytest

from callmetrics import Analytics


def in_progress(analytics: Analytics, name: str) -> int:
    counts = analytics.calls_in_progress()
    assert counts is not None
    return sum(n for (recorded, _, _), n in counts.items() if recorded.endswith(name))


def test_threads_inside_a_function_are_counted_then_released() -> None:
    """Five threads blocked inside a call read 5; when they have returned or raised, 0."""
    analytics = Analytics(track_concurrency=True)
    inside = threading.Barrier(6)
    release = threading.Event()

    @analytics.track("unit")
    def wait(fail: bool) -> None:
        inside.wait(timeout=30)
        release.wait(timeout=30)
        if fail:
            raise ValueError("failing on purpose")

    def run(fail: bool) -> None:
        with contextlib.suppress(ValueError):
            wait(fail)

    threads = [threading.Thread(target=run, args=(i % 2 == 0,)) for i in range(5)]
    for thread in threads:
        thread.start()
    inside.wait(timeout=30)  # all five are inside the call now
    assert in_progress(analytics, "wait") == 5
    release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert in_progress(analytics, "wait") == 0
    assert analytics.call_counts == {"test_threads_inside_a_function_are_counted_then_released"
                                     ".wait": 5}


def test_many_threads_calling_often_leave_it_at_zero() -> None:
    """Counts stay exact under threads switching in and out of calls: 0 once all are done."""
    analytics = Analytics(track_concurrency=True)

    @analytics.track("unit")
    def short(i: int) -> int:
        return i * 2

    def run() -> None:
        for i in range(20_000):
            short(i)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert in_progress(analytics, "short") == 0
    assert analytics.get_stats()["total_calls"] == 160_000


def test_asyncio_tasks_awaiting_inside_a_coroutine_are_counted() -> None:
    """Seven tasks suspended inside a tracked coroutine read 7; after they finish, 0."""
    analytics = Analytics(track_concurrency=True)

    async def main() -> tuple[int, int, int]:
        release = asyncio.Event()
        entered = 0

        @analytics.track("unit")
        async def handler() -> None:
            nonlocal entered
            entered += 1
            await release.wait()

        tasks = [asyncio.create_task(handler()) for _ in range(7)]
        while entered < 7:
            await asyncio.sleep(0)
        during = in_progress(analytics, "handler")
        cancelled = tasks.pop()
        cancelled.cancel()  # a cancelled call ends too (as a failure)
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        after_cancel = in_progress(analytics, "handler")
        release.set()
        await asyncio.gather(*tasks)
        return during, after_cancel, in_progress(analytics, "handler")

    assert asyncio.run(main()) == (7, 6, 0)


def test_generators_are_in_progress_from_first_step_to_their_end() -> None:
    """A generator and an async generator count while they are being consumed."""
    analytics = Analytics(track_concurrency=True)

    @analytics.track("unit")
    def numbers() -> Generator[int, None, None]:
        yield 1
        yield 2

    @analytics.track("unit")
    async def anumbers() -> AsyncIterator[int]:
        yield 1
        yield 2

    first = numbers()
    assert next(first) == 1
    second = numbers()
    assert next(second) == 1
    assert in_progress(analytics, "numbers") == 2
    assert list(first) == [2]
    second.close()  # stopped early: ends too
    assert in_progress(analytics, "numbers") == 0

    async def consume() -> tuple[int, int]:
        stream = anumbers()
        await stream.__anext__()
        during = in_progress(analytics, "anumbers")
        assert [value async for value in stream] == [2]
        return during, in_progress(analytics, "anumbers")

    assert asyncio.run(consume()) == (1, 0)


def test_measured_blocks_count_while_inside() -> None:
    """A ``measure()`` block is a call: in progress while its body runs."""
    analytics = Analytics(track_concurrency=True)
    with analytics.measure("block", event_type="unit"):
        assert in_progress(analytics, "block") == 1
    assert in_progress(analytics, "block") == 0


def test_off_by_default_and_validated_early() -> None:
    """Without the setting nothing is counted; a wrong value fails at construction, named."""
    assert Analytics().calls_in_progress() is None
    assert Analytics({"track_concurrency": True}).calls_in_progress() == {}
    with pytest.raises(TypeError, match="track_concurrency must be a bool"):
        Analytics(track_concurrency=1)  # type: ignore[arg-type]  # the wrong type on purpose
    with pytest.raises(TypeError, match="track_concurrency must be a bool"):
        Analytics({"track_concurrency": "yes"})
