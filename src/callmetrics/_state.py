"""Per-function aggregates and the bounded ring of retained events.

The hot path only appends ``(start, duration)`` tuples to a function's buffer
(``(start, duration, exc_type)`` to its error buffer).  ``FunctionStats.drain``
folds a whole buffer into exact counts, totals, extremes and the sketch with
C-level bulk operations, which costs far less per call than doing it call by call.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from callmetrics._records import Event
from callmetrics._sketch import DurationSketch

__all__ = ["BUFFER_LIMIT", "EventRing", "FunctionSnapshot", "FunctionStats", "RawEvent"]

# A function's buffer is drained once it holds this many calls: large enough to
# amortise the drain, small enough to keep memory and staleness low.
BUFFER_LIMIT = 4096

# (unix start, duration, exception type name or None, stats it belongs to)
RawEvent = tuple[float, float, str | None, "FunctionStats"]

# Failed calls as the hot path records them: (perf_counter start, duration, exception type)
Failed = list[tuple[float, float, type[BaseException]]]


def _find(duration: float, offset: float, flat: list[float],
          failed: Failed) -> tuple[float, float, str | None]:
    """Return ``(unix start, duration, error)`` of the drained call that took ``duration``."""
    for start, took, exc_type in failed:
        if took == duration:
            return start + offset, duration, exc_type.__name__
    position = flat[1::2].index(duration)
    return flat[2 * position] + offset, duration, None


@dataclass(frozen=True, slots=True)
class FunctionSnapshot:
    """A consistent copy of one function's aggregates, for reports, stores and exporters."""

    name: str
    event_type: str
    module: str
    calls: int
    successes: int
    total: float
    fast: int
    medium: int
    slow: int
    overhead: float
    sketch: DurationSketch
    slowest: Event | None
    fastest: Event | None

    @property
    def failures(self) -> int:
        """Calls that raised."""
        return self.calls - self.successes

    @property
    def min(self) -> float:
        """Shortest call in seconds (0.0 when there were none)."""
        return self.sketch.min or 0.0

    @property
    def max(self) -> float:
        """Longest call in seconds (0.0 when there were none)."""
        return self.sketch.max or 0.0

    @property
    def average(self) -> float:
        """Mean duration in seconds (0.0 when there were none)."""
        return self.total / self.calls if self.calls else 0.0


class FunctionStats:
    """Everything recorded about one tracked function (keyed by its recorded name)."""

    __slots__ = (
        "buf",
        "calls",
        "drain_seconds",
        "errs",
        "event_type",
        "fast",
        "fastest",
        "hot_calls",
        "kind",
        "medium",
        "module",
        "name",
        "sketch",
        "slow",
        "slowest",
        "successes",
        "total",
    )

    def __init__(self, name: str, event_type: str, module: str) -> None:
        """Start empty aggregates for the function recorded as ``name``."""
        self.name = name
        self.event_type = event_type
        self.module = module
        # Which wrapper records it (sync, async, gen, agen, block): its calibrated cost.
        self.kind = "sync"
        # Successful calls as [start, duration, start, duration, ...]: floats are not
        # tracked by the garbage collector, tuples are (and would trigger collections).
        self.buf: list[float] = []
        self.errs: Failed = []
        self.calls = 0
        self.successes = 0
        self.total = 0.0
        self.fast = 0
        self.medium = 0
        self.slow = 0
        self.sketch = DurationSketch()
        # Extremes as (unix start, duration, error name): events of the slowest and
        # fastest call ever seen, kept even after the ring has dropped them.
        self.slowest: tuple[float, float, str | None] | None = None
        self.fastest: tuple[float, float, str | None] | None = None
        # Calls that went through a wrapper (their hot-path cost is calibrated), and
        # the measured seconds spent draining this function's buffers.
        self.hot_calls = 0
        self.drain_seconds = 0.0

    def drain(
        self, offset: float, short_max: float, medium_max: float
    ) -> tuple[list[float], Failed] | None:
        """Fold the buffered calls into the aggregates; return them for the event ring.

        Must be called with the owning instance's lock held.

        Args:
            offset: seconds to add to a ``perf_counter`` reading to get Unix time.
            short_max: upper bound of the fast category.
            medium_max: upper bound of the medium category.

        Returns:
            ``(flat, failed)``: successful calls as ``[start, duration, start, ...]`` and
            failed ones as ``(start, duration, exception type)``; None if there were none.
        """
        buf, errs = self.buf, self.errs
        n, m = len(buf), len(errs)
        if not n and not m:
            return None
        # Slice-then-delete keeps calls that other threads append meanwhile (each call
        # extends the buffer by one atomic C call, so a slice never splits a pair).
        flat = buf[:n]
        del buf[:n]
        failed = errs[:m]
        del errs[:m]
        durations = flat[1::2]
        if failed:
            durations.extend([e[1] for e in failed])
        self.calls += n // 2 + m
        self.successes += n // 2
        self.hot_calls += n // 2 + m
        self.record(durations, offset, short_max, medium_max, flat, failed)
        return flat, failed

    def record(
        self,
        durations: list[float],
        offset: float,
        short_max: float,
        medium_max: float,
        flat: list[float],
        failed: Failed,
    ) -> None:
        """Add the durations of drained calls (sorted in place) to the aggregates.

        ``flat`` and ``failed`` are the calls themselves, to find the extremes' events.
        """
        count = len(durations)
        self.total += sum(durations)
        # Sorting (C, fast on floats) gives the extremes, the categories and the
        # sketch's buckets with a handful of bisections instead of per-call work.
        durations.sort()
        low, high = durations[0], durations[-1]
        if high <= short_max:
            self.fast += count
        else:
            fast = bisect_right(durations, short_max)
            medium = bisect_right(durations, medium_max, fast)
            self.fast += fast
            self.medium += medium - fast
            self.slow += count - medium
        if self.slowest is None or high > self.slowest[1]:
            self.slowest = _find(high, offset, flat, failed)
        if self.fastest is None or low < self.fastest[1]:
            self.fastest = _find(low, offset, flat, failed)
        self.sketch.add_sorted(durations)

    def merge(self, other: FunctionStats) -> None:
        """Add another function's drained aggregates to this one."""
        self.calls += other.calls
        self.successes += other.successes
        self.total += other.total
        self.fast += other.fast
        self.medium += other.medium
        self.slow += other.slow
        self.sketch.merge(other.sketch)
        if other.slowest is not None and (
            self.slowest is None or other.slowest[1] > self.slowest[1]
        ):
            self.slowest = other.slowest
        if other.fastest is not None and (
            self.fastest is None or other.fastest[1] < self.fastest[1]
        ):
            self.fastest = other.fastest
        self.hot_calls += other.hot_calls
        self.drain_seconds += other.drain_seconds

    def reset(self) -> None:
        """Forget every aggregate (buffers must already be drained)."""
        fresh = FunctionStats(self.name, self.event_type, self.module)
        for slot in FunctionStats.__slots__:
            if slot not in ("buf", "errs", "name", "event_type", "module", "kind"):
                setattr(self, slot, getattr(fresh, slot))

    def event(self, raw: tuple[float, float, str | None] | None, time_format: str,
              *, compact: bool) -> Event | None:
        """Turn a kept ``(start, duration, error)`` triple into an ``Event``."""
        if raw is None:
            return None
        return Event(self.name, self.event_type, raw[0], raw[1], raw[2], time_format,
                     compact=compact)

    def snapshot(self, per_call_overhead: Mapping[str, float], time_format: str, *,
                 compact: bool) -> FunctionSnapshot:
        """Copy the aggregates; the caller must hold the lock and have drained."""
        return FunctionSnapshot(
            name=self.name,
            event_type=self.event_type,
            module=self.module,
            calls=self.calls,
            successes=self.successes,
            total=self.total,
            fast=self.fast,
            medium=self.medium,
            slow=self.slow,
            overhead=self.hot_calls * per_call_overhead.get(self.kind, 0.0) + self.drain_seconds,
            sketch=self.sketch.copy(),
            slowest=self.event(self.slowest, time_format, compact=compact),
            fastest=self.event(self.fastest, time_format, compact=compact),
        )


class _Chunk(NamedTuple):
    """Calls drained together: hot-path lists of one function, or resolved events."""

    stats: FunctionStats | None
    offset: float
    flat: list[float]
    failed: Failed
    resolved: list[RawEvent]

    @property
    def size(self) -> int:
        return len(self.flat) // 2 + len(self.failed) + len(self.resolved)

    def events(self) -> Iterator[RawEvent]:
        stats, offset = self.stats, self.offset
        if stats is not None:
            flat = self.flat
            for start, duration in zip(flat[0::2], flat[1::2], strict=True):
                yield start + offset, duration, None, stats
            for start, duration, exc_type in self.failed:
                yield start + offset, duration, exc_type.__name__, stats
        yield from self.resolved


class EventRing:
    """The most recent calls, at most ``limit`` of them when read (0: no cap).

    Calls arrive in generations: everything one drain pass took from every function,
    so a generation covers one stretch of time for all functions together.  Whole
    generations are dropped, oldest first, once the newer ones still hold ``limit``
    calls; reading sorts by start and returns exactly the newest ``limit``.
    """

    __slots__ = ("_generations", "_size", "limit")

    def __init__(self, limit: int) -> None:
        """Create an empty ring holding at most ``limit`` calls (0: no cap)."""
        self.limit = limit
        self._generations: deque[tuple[int, list[_Chunk]]] = deque()
        self._size = 0

    def __len__(self) -> int:
        """Return how many calls a read would give."""
        return self._size if not self.limit else min(self._size, self.limit)

    def add_generation(self, chunks: list[_Chunk]) -> None:
        """Append the calls of one drain pass, then drop generations no longer needed."""
        size = sum(chunk.size for chunk in chunks)
        if not size:
            return
        self._generations.append((size, chunks))
        self._size += size
        if self.limit:
            generations = self._generations
            while len(generations) > 1 and self._size - generations[0][0] >= self.limit:
                self._size -= generations.popleft()[0]

    @staticmethod
    def chunk(stats: FunctionStats, offset: float, flat: list[float], failed: Failed) -> _Chunk:
        """Wrap calls drained from ``stats`` (see ``FunctionStats.drain``) for the ring."""
        return _Chunk(stats, offset, flat, failed, [])

    def raw(self) -> list[RawEvent]:
        """Return every retained call as a RawEvent, oldest first, trimmed to the limit."""
        out: list[RawEvent] = []
        for _, chunks in self._generations:
            for chunk in chunks:
                out.extend(chunk.events())
        out.sort(key=_start_of)
        if self.limit and len(out) > self.limit:
            del out[: len(out) - self.limit]
        return out

    def replace(self, raw: Iterable[RawEvent]) -> int:
        """Keep exactly ``raw`` (trimmed to the newest ``limit``); return how many were cut."""
        kept = sorted(raw, key=_start_of)
        dropped = 0
        if self.limit and len(kept) > self.limit:
            dropped = len(kept) - self.limit
            del kept[:dropped]
        self.clear()
        self.add_generation([_Chunk(None, 0.0, [], [], kept)])
        return dropped

    def filter(self, keep: Callable[[RawEvent], bool]) -> int:
        """Drop retained calls for which ``keep`` is false; return how many were dropped."""
        before = self.raw()
        self.replace(e for e in before if keep(e))
        return len(before) - self._size

    def clear(self) -> None:
        """Drop every retained call."""
        self._generations.clear()
        self._size = 0


def _start_of(event: RawEvent) -> float:
    return event[0]
