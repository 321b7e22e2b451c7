"""Per-function aggregates, and what a failed call carries.

``FunctionStats`` holds the exact aggregates of one recorded name: counts, total
time, duration categories, the sketch, and the slowest and fastest call ever made.
The recorder (``_recorder.py``) folds buffered calls into it in bulk, one group of
calls per function per drain; nothing here runs on the hot path.

``FailedCall`` is what the hot path buffers for a call that raised, in place of
the function's ``FunctionStats``: the exception's type name, a bounded one-line
message and where it was raised, computed when the call failed so that neither
the exception nor its traceback is kept alive.  ``NotedCall`` is what it buffers
for a successful call that carries a one-line note (``measure()``'s ``block.message``;
a web request's status line): a success of ``stats`` in every count.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from itertools import compress, repeat
from operator import is_
from typing import Any

from callmetrics._engine.accel import summary
from callmetrics._engine.attribution import Attributed, children_times
from callmetrics._engine.callers import EdgeBudget, Idle
from callmetrics._engine.errors import add_counts, type_name
from callmetrics._engine.records import Event
from callmetrics._engine.sketch import DurationSketch
from callmetrics._engine.state import CallerEdge, FunctionSnapshot

__all__ = ["MESSAGE_LIMIT", "Extreme", "FailedCall", "FunctionStats", "NotedCall", "children_times",
           "count_failures", "failure_of", "note_of"]


def _python_summary(values: Sequence[float]) -> tuple[float, float, float]:
    return sum(values), min(values), max(values)


# A drained chunk's (sum, min, max): one C pass with the accelerator, else Python's.
_summary: Callable[[Sequence[float]], tuple[float, float, float]] = summary or _python_summary

# A message (a failure's, or a success's note) is cut to this many characters (the
# full length is noted).
MESSAGE_LIMIT = 500

# An extreme call: (unix start, duration, its FailedCall or NotedCall, else None)
Extreme = tuple[float, float, "FailedCall | NotedCall | None"]


class FailedCall:
    """One call that raised: its function, exception type, message and location."""

    __slots__ = ("_error", "edge", "location", "message", "stats")

    def __init__(self, stats: FunctionStats, error: str | type[BaseException],
                 message: str | None, location: str | None, edge: object = None) -> None:
        """Describe a failure of ``stats``'s function (see :func:`failure_of`).

        ``error`` is the exception type, or its name; the name is only read when the
        failure is read back (a class's ``__name__`` can be a property).
        """
        self.stats = stats
        self._error = error
        self.message = message
        self.location = location
        self.edge = edge  # the call's caller edge (callers.Edge), None: no tracked caller

    @property
    def error(self) -> str:
        """The exception type's name."""
        error = self._error
        return error if isinstance(error, str) else error.__name__


def count_failures(keys: list[Any]) -> None:
    """Count a drained chunk's failures by exception type into their functions' stats.

    Runs under the recorder's lock, only for chunks that hold failures (about 1,400
    instructions a failure under callgrind: one pass over the chunk's keys).  Each
    distinct class is named once per chunk (:func:`errors.type_name`).
    """
    found: dict[FunctionStats, dict[str | type[BaseException], int]] = {}
    # The failures picked out at C speed (a chunk of 4,096 calls may hold one).
    for key in compress(keys, map(is_, map(type, keys), repeat(FailedCall))):
        per = found.get(key.stats)
        if per is None:
            per = found[key.stats] = {}
        error = key._error  # this module's own class
        per[error] = per.get(error, 0) + 1
    for stats, per in found.items():
        names: dict[str, int] = {}
        for error, count in per.items():
            name = type_name(error)  # two classes may share a name: add them up
            names[name] = names.get(name, 0) + count
        stats.add_errors(names)


class NotedCall:
    """One successful call that carries a note: its function and the one-line message."""

    __slots__ = ("edge", "message", "stats")

    def __init__(self, stats: FunctionStats, message: str, edge: object = None) -> None:
        """Describe a success of ``stats``'s function noted ``message`` (see :func:`note_of`)."""
        self.stats = stats
        self.message = message
        self.edge = edge  # the call's caller edge (callers.Edge), None: no tracked caller


def _message(value: object) -> str | None:
    """Return ``str(value)`` on one line, at most ``MESSAGE_LIMIT`` characters (None: empty)."""
    try:
        text = str(value)
    except Exception as err:  # noqa: BLE001  # a broken __str__ must not break the call
        return f"<str() raised {type(err).__name__}>"
    if not isinstance(text, str):  # pragma: no cover  # str() always returns a str
        return None
    full = len(text)
    if full > MESSAGE_LIMIT:
        text = text[:MESSAGE_LIMIT]
    if not text.isprintable():
        text = " ".join(text.split())  # one line: newlines and tabs become single spaces
    if full > MESSAGE_LIMIT:
        return f"{text}… ({full:,} characters)"
    return text or None


def _location(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{code.co_filename}:{tb.tb_lineno} in {code.co_name}"


def failure_of(stats: FunctionStats, exc: BaseException, edge: object = None) -> FailedCall:
    """Describe ``exc``, raised by a call of ``stats``'s function, keeping no reference to it.

    ``edge`` is the call's caller edge (None: called from untracked code).
    """
    return FailedCall(stats, type(exc), _message(exc), _location(exc), edge)


def note_of(stats: FunctionStats, message: object, edge: object = None) -> object:
    """Describe a success of ``stats``'s function noted ``message`` (``str()`` of it).

    The note is cleaned as a failure's message is; an empty one leaves a plain success
    (``edge``, the call's caller edge, when it has one, else ``stats``).
    """
    text = _message(message)
    if text is None:
        return stats if edge is None else edge
    return NotedCall(stats, text, edge)


def _known_sum(mine: float | None, my_calls: int, theirs: float | None,
               their_calls: int) -> float | None:
    """Add two measured figures; unknown (None) when either side's calls were not measured."""
    if theirs is None:
        return mine if their_calls == 0 else None
    if mine is None:
        return theirs if my_calls == 0 else None
    return mine + theirs


def _event(name: str, event_type: str, raw: Extreme | None, time_format: str, *,
           compact: bool) -> Event | None:
    if raw is None:
        return None
    start, duration, failed = raw
    if failed is None:
        return Event(name, event_type, start, duration, None, time_format, compact=compact)
    if isinstance(failed, NotedCall):
        return Event(name, event_type, start, duration, None, time_format, compact=compact,
                     message=failed.message)
    return Event(name, event_type, start, duration, failed.error, time_format, compact=compact,
                 message=failed.message, location=failed.location)


class FunctionStats(Attributed):
    """Everything recorded about one tracked function (keyed by its recorded name).

    Observers receive this object: ``name``, ``event_type`` and ``kind`` are theirs
    to read; everything else is the recorder's, changed only under its lock.
    """

    __slots__ = (
        "__weakref__",
        "calls",
        "cpu_time",
        "drain_seconds",
        "errors",
        "event_type",
        "expected",
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

    def __init__(self, name: str, event_type: str, module: str,
                 budget: EdgeBudget | None = None) -> None:
        """Start empty aggregates for the function recorded as ``name``.

        ``budget`` bounds the caller edges of the instance it belongs to.
        """
        self.name = name
        self.event_type = event_type
        self.module = module
        # Which wrapper records it (sync, async, gen, agen, block): its calibrated cost.
        self.kind = "sync"
        self.calls = 0
        self.successes = 0
        self.total = 0.0
        self.fast = 0
        self.medium = 0
        self.slow = 0
        self.sketch = DurationSketch()
        # The slowest and fastest call ever seen, kept after the ring has dropped them.
        self.slowest: Extreme | None = None
        self.fastest: Extreme | None = None
        # Calls that went through a wrapper (their hot-path cost is calibrated), and
        # the measured seconds spent draining this function's calls.
        self.hot_calls = 0
        self.drain_seconds = 0.0
        # Where the time goes (see _callers): caller edges of outer and nested calls,
        # by caller, counted by drains; never rebound (the hot path holds them).
        self.budget = budget if budget is not None else EdgeBudget()
        self.edges: dict[FunctionStats, Any] = {}
        self.nested: dict[FunctionStats, Any] = {}
        # outer? -> the edge of callers past the cap (None until one is: memory per function)
        self.folded: dict[bool, Any] | None = None
        # Suspended seconds of its coroutine/generator calls (never rebound: the step
        # proxy holds it), and whether its calls go through that proxy (set by wrap).
        self.idle = Idle()
        self.stepped = False
        self._clear_attribution()
        # Calls that raised an exception declared expected (``track(expected=...)``),
        # counted as successes: incremented by the hot path's failure end
        # (``Ends.failed``), one slot increment under the GIL.
        self.expected = 0
        # Failures by exception type's qualified name (errors.py: capped, exact in
        # total); None until the first one (memory per function).
        self.errors: dict[str, int] | None = None
        # Seconds of thread CPU time of the calls (None: not measured); carried
        # through merges and stores.
        self.cpu_time: float | None = None

    def add_errors(self, counts: Mapping[str, int]) -> None:
        """Count failures by type name (``errors.add_counts``: capped, totals exact)."""
        if self.errors is None:
            self.errors = {}
        add_counts(self.errors, counts)

    def add(self, durations: Sequence[float], successes: int, short_max: float,
            medium_max: float) -> tuple[float, float]:
        """Add drained calls' durations (left as they are); return their (lowest, highest).

        ``durations`` is a list of floats or an ``array('d')`` (a ``CallBuffer``'s).

        The extremes' events are the caller's to set: it knows where the calls are.
        """
        count = len(durations)
        if count == 1:
            low = durations[0]
            self.add_call(low, successes == 1, short_max, medium_max)
            return low, low
        self.calls += count
        self.successes += successes
        self.hot_calls += count
        total, low, high = _summary(durations)
        self.total += total
        if high <= short_max:  # the common case: no sort (bucket keys counted in bulk)
            self.fast += count
            self.sketch.add_unsorted(durations, low, high)
            return low, high
        # Sorting (C, fast on floats) gives the categories with two bisections.
        ordered = sorted(durations)
        fast = bisect_right(ordered, short_max)
        medium = bisect_right(ordered, medium_max, fast)
        self.fast += fast
        self.medium += medium - fast
        self.slow += count - medium
        self.sketch.add_sorted(ordered)
        return low, high

    def add_call(self, duration: float, success: bool, short_max: float,
                 medium_max: float) -> None:
        """Add one drained call (the drain's path when a chunk spreads over many functions).

        The extremes' events are the caller's to set, as with :meth:`add`.
        """
        self.calls += 1
        self.successes += success
        self.hot_calls += 1
        self.total += duration
        if duration <= short_max:
            self.fast += 1
        elif duration <= medium_max:
            self.medium += 1
        else:
            self.slow += 1
        self.sketch.add_one(duration)

    def merge(self, other: FunctionStats, children: float = 0.0) -> None:
        """Add another function's aggregates to this one.

        ``children`` is what :func:`children_times` gives ``other`` in its recorder.
        """
        self.merge_attribution(other, children)
        self.cpu_time = _known_sum(self.cpu_time, self.calls, other.cpu_time, other.calls)
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
        self.expected += other.expected
        if other.errors:
            self.add_errors(other.errors)

    def reset(self) -> None:
        """Forget every aggregate (edges are zeroed in place: wrappers hold them)."""
        fresh = FunctionStats(self.name, self.event_type, self.module)
        for slot in FunctionStats.__slots__:
            if slot not in ("name", "event_type", "module", "kind", "__weakref__"):
                setattr(self, slot, getattr(fresh, slot))
        self._clear_attribution()
        for edge in self.all_edges():
            edge.calls = 0
            edge.time = 0.0

    def event(self, raw: Extreme | None, time_format: str, *, compact: bool) -> Event | None:
        """Turn a kept extreme into an ``Event``."""
        return _event(self.name, self.event_type, raw, time_format, compact=compact)

    def snapshot(self, per_call_overhead: Mapping[str, float], time_format: str, *,
                 compact: bool, children: float = 0.0) -> FunctionSnapshot:
        """Copy the aggregates; the caller must hold the recorder's lock.

        ``children`` is the seconds of the calls this function made (from
        :func:`children_times`).
        """
        self_time, inclusive, active, active_self = self.times(children)
        callers = tuple(sorted((CallerEdge(name, calls, took)
                                for name, calls, took in self.callers()),
                               key=lambda edge: (-edge.time, edge.name)))
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
            self_time=self_time,
            inclusive_time=inclusive,
            active_time=active,
            active_self_time=active_self,
            callers=callers,
            failures_by_type=dict(self.errors) if self.errors else {},
            cpu_time=self.cpu_time,
        )

    def __repr__(self) -> str:
        """Name the function and its call count."""
        return f"FunctionStats({self.name!r}, {self.event_type!r}, calls={self.calls})"
