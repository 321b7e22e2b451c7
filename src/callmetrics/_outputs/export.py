"""The documented JSON shape of an instance's statistics (``to_dict``, ``stats --json``).

Shape, schema version 1 (durations in seconds, times as Unix seconds)::

    {
      "schema": "callmetrics.stats",
      "schema_version": 1,
      "generated_at": "2026-11-27T23:05:00Z",        # UTC, ISO 8601
      "totals": {                                    # over every call of every function
        "calls", "successes", "failures", "success_rate" (percent), "total_time",
        "avg_duration", "min_duration", "max_duration", "p50", "p90", "p95", "p99",
        "duration_counts": {"fast", "medium", "slow"},
        "function_count", "event_count" (retained events),
        "slowest", "fastest",                        # event objects or null
        "wall_time",                                 # seconds the run spans, or null
        "self_time",                                 # the functions' self times, summed
        "cpu_time"                                   # the measured CPU times, summed, or null
      },
      "functions": [                                 # sorted by total_time, largest first
        {"name", "event_type", "module", the same keys as totals except function_count,
         event_count and wall_time, and "overhead" (seconds the wrapper added in total),
         "inclusive_time", "active_time", "callers": [{"name", "calls", "time"}],
         "failures_by_type": {"ValueError": 3, ...}, "cpu_time"}
      ],
      "errors": [                                    # retained failed calls, by cause
        {"function", "functions", "event_type", "error", "template", "message",
         "examples", "location", "count", "first", "last"}  # most frequent first
      ],
      "environment": {"python", "platform", "hot_path", "argv", "host", "pid", "label"}
    }
    }

An event object is ``{"function", "event_type", "start", "end", "duration",
"success", "error"}`` (``error``: the exception type's name or null).  Percentiles,
``slowest`` and ``fastest`` are null when there were no calls.

Where the time goes: a function's ``self_time`` is its calls' durations less those
of the tracked calls they made directly (on the same thread); ``inclusive_time`` counts
recursion once (outermost calls only, as cProfile's cumtime); ``active_time`` is the
time its calls ran (``total_time`` for plain functions); ``callers`` lists the tracked
functions that called it (nearest tracked call on the stack), the most time first,
with ``"(other callers)"`` folding those past the instance's cap.  Each is null when
unknown (coroutines and generators; stores written before they were recorded), and
the totals' ``self_time`` is null when any function's is.  ``wall_time`` is the span
of the instance (from its creation to the reading) or of the stored runs read
(overlapping runs counted once).

A function's ``cpu_time`` is the thread CPU time its calls used, in seconds, when
measured (``Analytics(cpu_time=True)``: plain functions and ``with measure()``
blocks), else null, never 0 for "not measured".  The totals' ``cpu_time`` sums the
functions measured (null when none was); like ``total_time``, it counts a nested
call's CPU time in its caller's too.

A function's ``failures_by_type`` counts *all* its failures by the exception's
qualified type name (``ValueError``, ``json.decoder.JSONDecodeError``), exactly: the
counts add up to ``failures``.  At most 20 names per function; failures of further
types are counted under ``"(other)"``, and those of stores written before the types
were recorded (schema version 4) under ``"(unknown)"``.

``errors`` groups the *retained* failed calls (the newest ``max_events`` calls) by
cause: exception type, where it was raised (``location``, ``file:line in function``)
and ``template``, the message with what varies between calls masked (numbers, hex
ids, UUIDs and quoted values read ``<n>``, ``<hex>``, ``<uuid>``, ``'<value>'``).
``message`` is the newest message, ``examples`` up to three distinct messages,
newest first (each one line, at most 500 characters); ``location``, ``template`` and
``message`` are null when unknown (stores written before they were recorded).
``function`` is the function with the most of these failures, ``functions`` maps
each function to its count; ``count`` is how many retained calls share the cause,
``first`` and ``last`` the Unix start times of the oldest and newest.

``environment`` describes the process that produced the dict (for a view loaded from
a store, the process that loaded it, not the runs'): Python, platform, the hot path
(C accelerator or pure Python), argv, host, pid and the run label
(``CALLMETRICS_RUN_LABEL``, or null).  The exact number of failures
is ``failures`` in ``totals`` and in each function.

The keys differ from ``get_stats()`` on purpose: ``get_stats()`` keeps the seed's
``total_calls`` and ``total_success``; this shape says ``calls``, ``successes`` and
``failures`` throughout.  New keys may be added within a schema version; renamed or
removed keys raise it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from callmetrics._engine.records import Event
from callmetrics._engine.sketch import DurationSketch
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._outputs.environment import process_environment
from callmetrics._outputs.failures import failure_causes

if TYPE_CHECKING:
    from callmetrics._engine.view import RetainedCall, Source

__all__ = ["SCHEMA", "SCHEMA_VERSION", "cpu_total", "error_groups", "event_dict", "self_total",
           "to_dict"]

SCHEMA: Final = "callmetrics.stats"
SCHEMA_VERSION: Final = 1


def event_dict(event: Event | None) -> dict[str, Any] | None:
    """Return the JSON form of one call (None stays None)."""
    if event is None:
        return None
    return {
        "function": event.function,
        "event_type": event.event_type,
        "start": event.start,
        "end": event.end,
        "duration": event.duration,
        "success": event.success,
        "error": event.error,
    }


def _figures(calls: int, successes: int, total: float, sketch: DurationSketch,
             counts: tuple[int, int, int]) -> dict[str, Any]:
    return {
        "calls": calls,
        "successes": successes,
        "failures": calls - successes,
        "success_rate": successes / calls * 100 if calls else 0.0,
        "total_time": total,
        "avg_duration": total / calls if calls else 0.0,
        **sketch.summary(),
        "duration_counts": {"fast": counts[0], "medium": counts[1], "slow": counts[2]},
    }


def _function(snap: FunctionSnapshot) -> dict[str, Any]:
    return {
        "name": snap.name,
        "event_type": snap.event_type,
        "module": snap.module,
        **_figures(snap.calls, snap.successes, snap.total, snap.sketch,
                   (snap.fast, snap.medium, snap.slow)),
        "overhead": snap.overhead,
        "slowest": event_dict(snap.slowest),
        "fastest": event_dict(snap.fastest),
        "self_time": snap.self_time,
        "inclusive_time": snap.inclusive_time,
        "active_time": snap.active_time,
        "callers": [{"name": edge.name, "calls": edge.calls, "time": edge.time}
                    for edge in snap.callers],
        "failures_by_type": snap.failure_types(),
        "cpu_time": snap.cpu_time,
    }


def self_total(snaps: list[FunctionSnapshot]) -> float | None:
    """The functions' self times, summed (None when any is unknown)."""
    found = [s.self_time for s in snaps]
    if any(value is None for value in found):
        return None
    return math.fsum(value for value in found if value is not None)


def cpu_total(snaps: list[FunctionSnapshot]) -> float | None:
    """The measured functions' CPU times, summed (None when none was measured)."""
    found = [s.cpu_time for s in snaps if s.cpu_time is not None]
    return math.fsum(found) if found else None


def error_groups(calls: list[RetainedCall]) -> list[dict[str, Any]]:
    """Group the failed calls among ``calls`` by cause (``failure_causes``), most frequent first."""
    return [{"function": g.function, "functions": dict(g.functions.most_common()),
             "event_type": g.event_type, "error": g.error, "template": g.template,
             "message": g.message, "examples": list(g.examples), "location": g.location,
             "count": g.count, "first": g.first, "last": g.last}
            for g in failure_causes(calls)]


def to_dict(source: Source) -> dict[str, Any]:
    """Return the JSON-ready statistics of ``source`` in the shape documented above."""
    reading = source.read()
    snaps = reading.functions
    sketch = DurationSketch()
    for snap in snaps:
        sketch.merge(snap.sketch)
    calls = sum(s.calls for s in snaps)
    slowest = max((s.slowest for s in snaps if s.slowest), key=lambda e: e.duration,
                  default=None)
    fastest = min((s.fastest for s in snaps if s.fastest), key=lambda e: e.duration,
                  default=None)
    totals = {
        **_figures(calls, sum(s.successes for s in snaps), math.fsum(s.total for s in snaps),
                   sketch, (sum(s.fast for s in snaps), sum(s.medium for s in snaps),
                            sum(s.slow for s in snaps))),
        "function_count": len(snaps),
        "event_count": len(reading.calls),
        "slowest": event_dict(slowest),
        "fastest": event_dict(fastest),
        "wall_time": reading.wall_time,
        "self_time": self_total(snaps),
        "cpu_time": cpu_total(snaps),
    }
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "totals": totals,
        "functions": [_function(s) for s in sorted(snaps, key=lambda s: (-s.total, s.name))],
        "errors": error_groups(reading.calls),
        "environment": process_environment(),
    }
