"""Per-function aggregates and the bounded ring of retained events.

The hot path only appends ``(start, duration)`` tuples to a function's buffer
(``(start, duration, exc_type)`` to its error buffer).  ``FunctionStats.drain``
folds a whole buffer into exact counts, totals, extremes and the sketch with
C-level bulk operations, which costs far less per call than doing it call by call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from callmetrics._records import Event
from callmetrics._sketch import DurationSketch

__all__ = ["BUFFER_LIMIT", "EventRing", "FunctionSnapshot", "FunctionStats", "RawEvent"]

# A function's buffer is drained once it holds this many calls: large enough to
# amortise the drain, small enough to keep memory and staleness low.
BUFFER_LIMIT = 4096

# (unix start, duration, exception type name or None, stats it belongs to)
RawEvent = tuple[float, float, str | None, "FunctionStats"]


def _entry_error(entry: tuple[Any, ...]) -> str | None:
    return entry[2].__name__ if len(entry) == 3 else None


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
        self.buf: list[tuple[float, float]] = []
        self.errs: list[tuple[float, float, type[BaseException]]] = []
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
    ) -> list[tuple[Any, ...]] | None:
        """Fold the buffered calls into the aggregates; return them for the event ring.

        Must be called with the owning instance's lock held.

        Args:
            offset: seconds to add to a ``perf_counter`` reading to get Unix time.
            short_max: upper bound of the fast category.
            medium_max: upper bound of the medium category.

        """
        buf, errs = self.buf, self.errs
        n, m = len(buf), len(errs)
        if not n and not m:
            return None
        # Slice-then-delete keeps calls that other threads append meanwhile.
        entries: list[tuple[Any, ...]] = buf[:n]
        del buf[:n]
        if m:
            failed = errs[:m]
            del errs[:m]
            entries.extend(failed)
        durations = [e[1] for e in entries]
        self.record(durations, entries, offset, short_max, medium_max, failures=m)
        self.hot_calls += n + m
        return entries

    def record(
        self,
        durations: list[float],
        entries: list[tuple[Any, ...]],
        offset: float,
        short_max: float,
        medium_max: float,
        *,
        failures: int,
    ) -> None:
        """Add calls (``entries[i]`` took ``durations[i]``) to the aggregates."""
        count = len(durations)
        self.calls += count
        self.successes += count - failures
        self.total += sum(durations)
        high, low = max(durations), min(durations)
        if high <= short_max:
            self.fast += count
        else:
            medium = sum(1 for d in durations if short_max < d <= medium_max)
            slow = sum(1 for d in durations if d > medium_max)
            self.fast += count - medium - slow
            self.medium += medium
            self.slow += slow
        if self.slowest is None or high > self.slowest[1]:
            e = entries[durations.index(high)]
            self.slowest = (e[0] + offset, high, _entry_error(e))
        if self.fastest is None or low < self.fastest[1]:
            e = entries[durations.index(low)]
            self.fastest = (e[0] + offset, low, _entry_error(e))
        self.sketch.add_batch(durations, low, high)

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


class EventRing:
    """The most recent calls, kept in drained chunks, at most ``limit`` of them when read.

    ``limit == 0`` keeps everything.  Chunks are dropped whole, oldest first, once the
    rest still holds ``limit`` calls; reading sorts by start and returns exactly the
    newest ``limit``.
    """

    __slots__ = ("_chunks", "_size", "limit")

    def __init__(self, limit: int) -> None:
        """Create an empty ring holding at most ``limit`` calls (0: no cap)."""
        self.limit = limit
        # (stats, unix offset, entries); entries are hot-path tuples or RawEvents
        self._chunks: deque[tuple[FunctionStats | None, float, list[tuple[Any, ...]]]] = deque()
        self._size = 0

    def __len__(self) -> int:
        """Return how many calls a read would give."""
        return self._size if not self.limit else min(self._size, self.limit)

    def add(self, stats: FunctionStats | None, offset: float,
            entries: list[tuple[Any, ...]]) -> None:
        """Append a chunk: hot-path entries of ``stats``, or RawEvents when stats is None."""
        if not entries:
            return
        self._chunks.append((stats, offset, entries))
        self._size += len(entries)
        if self.limit:
            while len(self._chunks) > 1 and self._size - len(self._chunks[0][2]) >= self.limit:
                self._size -= len(self._chunks.popleft()[2])

    def raw(self) -> list[RawEvent]:
        """Return every retained call as a RawEvent, oldest first, trimmed to the limit."""
        out: list[RawEvent] = []
        for stats, offset, entries in self._chunks:
            if stats is None:
                out.extend(entries)
            else:
                out.extend((e[0] + offset, e[1], _entry_error(e), stats) for e in entries)
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
        self._chunks.clear()
        self._size = 0
        if kept:
            self._chunks.append((None, 0.0, kept))
            self._size = len(kept)
        return dropped

    def filter(self, keep: Callable[[RawEvent], bool]) -> int:
        """Drop retained calls for which ``keep`` is false; return how many were dropped."""
        before = self.raw()
        self.replace(e for e in before if keep(e))
        return len(before) - self._size

    def clear(self) -> None:
        """Drop every retained call."""
        self._chunks.clear()
        self._size = 0


def _start_of(event: RawEvent) -> float:
    return event[0]
