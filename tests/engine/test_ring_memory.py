"""The ring is a store sized up front: once full, tracked calls leave nothing allocated."""

from __future__ import annotations

import tracemalloc
from array import array

from callmetrics import Analytics
from callmetrics._engine import ring as ring_module
from callmetrics._engine.ring import EventRing


def test_the_ring_keeps_exactly_the_newest_calls_across_wraps() -> None:
    ring = EventRing(5)
    for first in range(0, 13, 3):  # chunks of 3: the store wraps around several times
        ring.append([f"k{i}" for i in range(first, first + 3)],
                    array("d", [float(i) for i in range(first, first + 3)]),
                    [0.5] * 3, 100.0)
    assert len(ring) == 5
    assert [(start, key) for start, _, key in ring.calls()] == [
        (110.0 + i, f"k{10 + i}") for i in range(5)]
    assert ring.counts() == {f"k{i}": 1 for i in range(10, 15)}
    ring.append([f"x{i}" for i in range(7)], [float(i) for i in range(7)], [1.0] * 7, 0.0)
    assert [key for _, _, key in ring.calls()] == [f"x{i}" for i in range(2, 7)]
    ring.clear()
    assert ring.calls() == []
    assert len(ring) == 0


def test_a_limit_above_the_preallocation_grows_to_it() -> None:
    ring_module.PREALLOCATED, saved = 4, ring_module.PREALLOCATED
    try:
        ring = EventRing(3_000)
    finally:
        ring_module.PREALLOCATED = saved
    for first in range(0, 5_000, 1_000):
        ring.append(list(range(first, first + 1_000)),
                    [float(i) for i in range(first, first + 1_000)], [0.0] * 1_000, 0.0)
    assert [key for _, _, key in ring.calls()] == list(range(2_000, 5_000))


def test_steady_state_tracked_calls_allocate_nothing_that_stays() -> None:
    analytics = Analytics()

    @analytics.track("work")
    def work(x: int) -> int:
        return x

    for i in range(30_000):  # the ring (10,000 calls) is full, the sketch has its buckets
        work(i)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(10_000):  # about ten drains into the ring
            work(i)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert sum(analytics.call_counts.values()) == 40_000
    # Before the ring was a store sized up front, every drain kept new arrays: about
    # 240 kB here (the ring's 10,000 calls, re-allocated under tracemalloc's eyes).
    assert grown < 32_000
