"""Reading back what the recorder holds: the seed's read API and the ``Source`` interface.

``ReadBack`` is a part of ``Analytics`` (a mixin): every read drains the buffer
under the recorder's lock (``Recorder.reading()``), then costs in proportion to
``max_events`` plus the number of functions, never to the number of calls made.
"""

from __future__ import annotations

import logging
import math
from array import array
from collections.abc import Callable, Iterable, Mapping
from itertools import compress, repeat
from time import perf_counter
from typing import Any

from callmetrics._engine.aggregate import FailedCall, FunctionStats, NotedCall, children_times
from callmetrics._engine.calibrate import per_call_overhead
from callmetrics._engine.columns import CallColumns, ColumnReading
from callmetrics._engine.events import EventsView
from callmetrics._engine.recorder import Recorder
from callmetrics._engine.sketch import DurationSketch
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._engine.view import Reading, RetainedCall
from callmetrics._format import duration, percent

__all__ = ["CountsView", "ReadBack"]

_NO_EDIT = ("{what} is a read-only snapshot of what was recorded; use {instead}")


class CountsView(dict[str, Any]):
    """What ``call_counts`` and friends return: a snapshot whose ``clear()`` is ``reset()``.

    ``clear()`` (the seed's way of starting again) forgets every call of the instance
    (``reset()``); any other change raises ``TypeError``.
    """

    __slots__ = ("_reset", "_what")

    def __init__(self, counts: dict[str, Any], reset: Any, what: str) -> None:
        super().__init__(counts)
        self._reset = reset
        self._what = what

    def clear(self) -> None:
        """Forget every recorded call of the instance: ``reset()``."""
        self._reset()
        super().clear()

    def _refuse(self, *_: object, **__: object) -> Any:
        raise TypeError(_NO_EDIT.format(what=f"analytics.{self._what}",
                                        instead=f"{self._what}.clear() or reset() to start "
                                                "again, dict(...) for a copy to edit"))

    pop = popitem = setdefault = update = _refuse
    __setitem__ = __delitem__ = __ior__ = _refuse


def _owner(key: FunctionStats | FailedCall | NotedCall) -> FunctionStats:
    return key if isinstance(key, FunctionStats) else key.stats


def _index_of(stats: FunctionStats, index: dict[Any, int], by_name: dict[str, int],
              out: CallColumns) -> int:
    """The column index of ``stats``'s name (added to ``out`` when new)."""
    found = index.get(stats)
    if found is None:
        found = by_name.get(stats.name)
        if found is None:
            found = by_name[stats.name] = len(out.names)
            out.names.append(stats.name)
            out.types.append(stats.event_type)
        index[stats] = found
    return found


class ReadBack:
    """The read half of ``Analytics``."""

    _recorder: Recorder
    enabled: bool
    time_format: str
    compact_time: bool
    console_logger: logging.Logger

    def _snapshots(self, per_call: Mapping[str, float]) -> list[FunctionSnapshot]:
        fmt, compact = self.time_format, self.compact_time
        every = self._recorder.stats
        children = children_times(every.values())
        return [stats.snapshot(per_call, fmt, compact=compact, children=children.get(stats, 0.0))
                for _, stats in sorted(every.items()) if stats.calls]

    def _retained(self) -> list[RetainedCall]:
        out = []
        for start, took, key in self._recorder.ring.calls():
            if type(key) is FailedCall:
                stats = key.stats
                out.append(RetainedCall(start, took, stats.name, stats.event_type, key.error,
                                        key.message, key.location))
            elif type(key) is NotedCall:  # a success with a note
                stats = key.stats
                out.append(RetainedCall(start, took, stats.name, stats.event_type, None,
                                        key.message))
            else:
                out.append(RetainedCall(start, took, key.name, key.event_type, None))
        return out

    def _columns(self) -> CallColumns:
        """The retained calls as columns, in ``_retained()``'s order (lock held)."""
        keys, starts, durations = self._recorder.ring.columns()
        index: dict[Any, int] = {}  # FunctionStats -> its name's index
        by_name: dict[str, int] = {}
        out = CallColumns(starts=starts, durations=durations)
        for stats in self._recorder.stats.values():
            _index_of(stats, index, by_name, out)
        functions = array("l", map(index.get, keys, repeat(-1)))
        for i in compress(range(len(keys)), map((-1).__eq__, functions)):
            key = keys[i]
            if type(key) is FailedCall:
                out.details[i] = (key.error, key.message, key.location)
                key = key.stats
            elif type(key) is NotedCall:
                out.details[i] = (None, key.message, None)
                key = key.stats
            functions[i] = _index_of(key, index, by_name, out)
        out.functions = functions
        return out

    def read_columns(self) -> ColumnReading:
        """Return aggregates and retained calls (as columns) taken together, as ``read()``."""
        per_call = self._per_call()
        with self._recorder.reading():
            return ColumnReading(self._snapshots(self._calibrated(per_call)), self._columns(),
                                 self.wall_time())

    def _per_call(self) -> Mapping[str, float]:
        """The wrapper's calibrated cost per call (measured once, outside the lock).

        Not measured (a fifth of a second) while no call went through a wrapper: a
        view of a store has none, and its overheads are the stored ones.
        """
        if any(stats.hot_calls for stats in list(self._recorder.stats.values())):
            return per_call_overhead()
        return {}

    def _calibrated(self, per_call: Mapping[str, float]) -> Mapping[str, float]:
        """``per_call``, or the calibration if a wrapped call came meanwhile (lock held)."""
        if not per_call and any(stats.hot_calls for stats in self._recorder.stats.values()):
            return per_call_overhead()
        return per_call

    def snapshot(self) -> list[FunctionSnapshot]:
        """Return a consistent copy of every function's aggregates, in name order."""
        per_call = self._per_call()
        with self._recorder.reading():
            return self._snapshots(self._calibrated(per_call))

    def retained(self) -> list[RetainedCall]:
        """Return the retained calls, oldest first (part of the ``Source`` interface)."""
        with self._recorder.reading():
            return self._retained()

    def read(self) -> Reading:
        """Return aggregates and retained calls taken together, so that they agree."""
        per_call = self._per_call()
        with self._recorder.reading():
            return Reading(self._snapshots(self._calibrated(per_call)), self._retained(),
                           self.wall_time())

    def wall_time(self) -> float:
        """Seconds from this instance's creation to now: the span its calls can cover.

        A view of stored runs (``load()``): the seconds those runs spanned.
        """
        fixed = self._recorder.wall
        return perf_counter() - self._recorder.created if fixed is None else fixed

    def reset(self) -> None:
        """Forget every recorded call: counts, aggregates and retained events.

        The tracked functions stay tracked (their next calls count from zero), and an
        attached store's run follows at its next flush.
        """
        with self._recorder.reading():
            for stats in self._recorder.stats.values():
                stats.reset()
            self._recorder.ring.clear()

    def clear_events(self) -> None:
        """Drop every retained event; the exact counts and aggregates stay."""
        with self._recorder.reading():
            self._recorder.ring.clear()

    @property
    def events(self) -> EventsView:
        """The most recent calls (at most ``max_events``) as plain dicts, in the order recorded.

        A read-only view taken now (``events[-1]`` is the call recorded last), each event
        built when read: ``events.clear()`` (or ``analytics.events = []``) drops the
        retained events; any other change raises ``TypeError``; ``list(...)`` copies it.
        """
        fmt = "%H:%M:%S" if self.compact_time else self.time_format
        recorder = self._recorder
        with recorder.reading():
            calls = recorder.ring.view(recorder.lock)
        return EventsView(calls, fmt, self.clear_events)

    @events.setter
    def events(self, value: object) -> None:
        if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value):
            raise TypeError("analytics.events can only be set to [] (which drops the retained "
                            "events); use restore() to add calls, reset() to start again")
        self.clear_events()

    @property
    def call_counts(self) -> dict[str, int]:
        """Calls per function, exact over every call ever made (a snapshot; ``clear()``: reset)."""
        with self._recorder.reading():
            counts = {name: s.calls for name, s in self._recorder.stats.items() if s.calls}
        return CountsView(counts, self.reset, "call_counts")

    @property
    def success_counts(self) -> dict[str, int]:
        """Successful calls per function, exact over every call (a snapshot; ``clear()``: reset)."""
        with self._recorder.reading():
            counts = {name: s.successes for name, s in self._recorder.stats.items() if s.calls}
        return CountsView(counts, self.reset, "success_counts")

    @property
    def decorator_overhead(self) -> dict[str, float]:
        """Seconds the wrapper added to each function's calls (a snapshot; ``clear()``: reset)."""
        return CountsView({snap.name: snap.overhead for snap in self.snapshot()}, self.reset,
                          "decorator_overhead")

    def _select(self, function_filter: str | Iterable[str] | None) -> list[FunctionStats]:
        every = self._recorder.stats
        if not function_filter:  # None, "" or an empty collection: every function (seed)
            return [s for s in every.values() if s.calls]
        if isinstance(function_filter, str):
            names = {function_filter}
        elif isinstance(function_filter, Iterable):
            names = set(function_filter)
            if not all(isinstance(n, str) for n in names):
                raise TypeError("function_filter must hold only str names")
        else:
            raise TypeError(
                f"function_filter must be a str, an iterable of str or None, "
                f"got {type(function_filter).__name__}"
            )
        return [s for n in sorted(names) if (s := every.get(n)) is not None and s.calls]

    def medians(self, names: Iterable[str], *, drain: bool = True) -> dict[str, float | None]:
        """Return the median call of each named function recorded (None: no call yet).

        The ``p50`` of ``get_stats(name)``, for many functions at the cost of one drain:
        what ``callmetrics run``'s pruner reads every time it looks.  ``drain=False``
        reads the calls folded so far (the buffer's newest ones left for their drain).
        """
        with self._recorder.reading() if drain else self._recorder.lock:
            every = self._recorder.stats
            return {name: stats.sketch.quantile(0.5) for name in names
                    if (stats := every.get(name)) is not None}

    def folded_counts(self) -> dict[str, int]:
        """Calls per function folded so far: ``call_counts`` without draining the buffer."""
        with self._recorder.lock:
            return {name: s.calls for name, s in self._recorder.stats.items() if s.calls}

    def watch_folds(self, hook: Callable[[int], None] | None) -> None:
        """Have ``hook(n)`` told of every ``n`` calls folded (None: no more); one at a time.

        It runs in the thread that drains, under the recorder's lock: it must be quick
        and never raise.  ``callmetrics run``'s pruner looks again when it is told of
        enough calls, however short the time.
        """
        self._recorder.on_fold = hook

    def get_stats(self, function_filter: str | Iterable[str] | None = None) -> dict[str, Any]:
        """Return statistics over every call of the selected functions.

        Everything except ``event_count`` covers every call ever made, not just the
        retained events.  Durations and percentiles are in seconds.  The result is
        plain data (``json.dumps`` takes it).

        Args:
            function_filter: a function name, several names, or None (or anything
                falsy, as in the seed) for all.

        """
        with self._recorder.reading():
            selected = self._select(function_filter)
            chosen = {id(s) for s in selected}
            event_count = sum(n for key, n in self._recorder.ring.counts().items()
                              if id(_owner(key)) in chosen)
            sketch = DurationSketch()
            for stats in selected:
                sketch.merge(stats.sketch)
            total_calls = sum(s.calls for s in selected)
            total_success = sum(s.successes for s in selected)
            total_time = math.fsum(s.total for s in selected)
            slowest = max(((s, s.slowest) for s in selected if s.slowest),
                          key=lambda p: p[1][1], default=None)
            fastest = min(((s, s.fastest) for s in selected if s.fastest),
                          key=lambda p: p[1][1], default=None)
            fmt, compact = self.time_format, self.compact_time
            return {
                "total_calls": total_calls,
                "total_success": total_success,
                "success_rate": total_success / total_calls * 100 if total_calls else 0.0,
                "total_time": total_time,
                "avg_duration": total_time / total_calls if total_calls else 0.0,
                "slowest": slowest[0].event(slowest[1], fmt, compact=compact) if slowest else None,
                "fastest": fastest[0].event(fastest[1], fmt, compact=compact) if fastest else None,
                "duration_counts": {
                    "fast": sum(s.fast for s in selected),
                    "medium": sum(s.medium for s in selected),
                    "slow": sum(s.slow for s in selected),
                },
                "function_count": len(selected),
                "event_count": event_count,
                # Calls that raised an exception declared expected: among the successes.
                "expected_exceptions": sum(s.expected for s in selected),
                **sketch.summary(),
                "wall_time": self.wall_time(),
                "self_time": self._self_total(selected),
                # Thread CPU time of the measured functions (cpu_time=True), else None.
                "cpu_time": math.fsum(measured) if (measured := [
                    s.cpu_time for s in selected if s.cpu_time is not None]) else None,
            }

    def _self_total(self, selected: list[FunctionStats]) -> float | None:
        """The selected functions' own times, summed (None: one is unknown); lock held.

        A function's own time is its active self time when known (coroutines and
        generators count the steps they ran, not their waits), else its self time.
        """
        children = children_times(self._recorder.stats.values())
        found = [own if (own := times[3]) is not None else times[0]
                 for times in (stats.times(children.get(stats, 0.0)) for stats in selected)]
        if any(value is None for value in found):
            return None
        return math.fsum(value for value in found if value is not None)

    def log_summary(self) -> None:
        """Log the two summary lines (calls, success, average; speed mix) to the console logger."""
        if not self.enabled:
            return
        stats = self.get_stats()
        calls = stats["total_calls"]
        self.console_logger.info(
            "Analytics Summary: %s calls | %s success | avg %s", f"{calls:,}",
            percent(stats["total_success"], calls), duration(stats["avg_duration"]))
        counts = stats["duration_counts"]
        total = sum(counts.values())
        self.console_logger.info(
            "Performance: fast %s | medium %s | slow %s", percent(counts["fast"], total, 0),
            percent(counts["medium"], total, 0), percent(counts["slow"], total, 0))
