"""The ring of retained calls: exact trimming, restore precision, counts."""

from __future__ import annotations

from array import array
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from callmetrics._engine.aggregate import FunctionStats
from callmetrics._engine.ring import EventRing


def chunk(stats: FunctionStats, starts: list[float],
          duration: float = 0.5) -> tuple[list[Any], array[float], array[float]]:
    """Return calls of ``stats`` as a drain takes them from a ``CallBuffer``."""
    return [stats] * len(starts), array("d", starts), array("d", [duration] * len(starts))


@given(st.integers(1, 50), st.lists(st.integers(0, 40), max_size=30))
def test_ring_holds_exactly_the_newest_limit_calls(limit: int, sizes: list[int]) -> None:
    """After any sequence of chunks, the ring holds min(total, limit) calls: the newest."""
    stats = FunctionStats("f", "unit", "m")
    ring = EventRing(limit)
    made: list[float] = []
    for size in sizes:
        starts = [float(len(made) + i) for i in range(size)]
        made += starts
        ring.append(*chunk(stats, starts), 100.0)
        assert len(ring) == min(len(made), limit)
    assert [start for start, _, _ in ring.calls()] == [s + 100.0 for s in made[-limit:]]
    assert ring.counts()[stats] == min(len(made), limit)


def test_no_limit_keeps_everything() -> None:
    """Limit 0 keeps every call."""
    stats = FunctionStats("f", "unit", "m")
    ring = EventRing(0)
    for i in range(10):
        ring.append(*chunk(stats, [float(i)] * 100), 0.0)
    assert len(ring) == 1000


def test_replace_keeps_durations_exact_at_unix_times() -> None:
    """Restored calls keep their exact durations though their starts are Unix times."""
    stats = FunctionStats("f", "unit", "m")
    ring = EventRing(10)
    calls = [(1_796_000_000.0 + i, 1.5e-7 * (i + 1), stats) for i in range(15)]
    assert ring.replace(calls) == 5
    kept = ring.calls()
    assert [start for start, _, _ in kept] == [c[0] for c in calls[5:]]
    for (_, took, _), (_, wanted, _) in zip(kept, calls[5:], strict=True):
        assert took == wanted


def test_filter_drops_and_counts() -> None:
    """filter() drops the calls a predicate rejects and says how many."""
    stats = FunctionStats("f", "unit", "m")
    ring = EventRing(100)
    ring.append(*chunk(stats, [float(i) for i in range(20)]), 0.0)
    assert ring.filter(lambda call: call[0] >= 5.0) == 5
    assert len(ring) == 15
    ring.clear()
    assert ring.calls() == []
