"""Helpers shared by the core's test modules (not a test module itself)."""

from __future__ import annotations

import math
import time
from typing import Any

from callmetrics import Analytics, DurationSketch, Event
from callmetrics._engine.state import FunctionSnapshot


def feed(analytics: Analytics, name: str, durations: list[float], *, event_type: str = "fed",
         failures: int = 0, events: int = 0) -> None:
    """Add ``durations`` as calls of ``name`` through ``restore``, the last ``events`` retained."""
    sketch = DurationSketch()
    for d in durations:
        sketch.add(d)
    short, medium = analytics.short_max, analytics.medium_max
    now = time.time()
    starts = [now - len(durations) + i for i in range(len(durations))]
    slow_i = max(range(len(durations)), key=durations.__getitem__)
    fast_i = min(range(len(durations)), key=durations.__getitem__)
    snap = FunctionSnapshot(
        name=name, event_type=event_type, module="fed", calls=len(durations),
        successes=len(durations) - failures, total=math.fsum(durations),
        fast=sum(1 for d in durations if d <= short),
        medium=sum(1 for d in durations if short < d <= medium),
        slow=sum(1 for d in durations if d > medium), overhead=0.0, sketch=sketch,
        slowest=Event(name, event_type, starts[slow_i], durations[slow_i], None),
        fastest=Event(name, event_type, starts[fast_i], durations[fast_i], None),
    )
    kept = [(starts[i], durations[i], None, name)
            for i in range(len(durations) - events, len(durations))]
    analytics.restore([snap], kept)


def only_event(analytics: Analytics) -> Event:
    """Return the single retained event."""
    events = analytics.events
    assert len(events) == 1
    return events[0]


def snapshots(analytics: Analytics) -> dict[str, FunctionSnapshot]:
    """Each function's snapshot, by its recorded name."""
    return {s.name: s for s in analytics.snapshot()}


def callers_by_name(analytics: Analytics) -> dict[str, dict[str, int]]:
    """For each function, its callers' names and how many calls each made."""
    return {name: {e.name: e.calls for e in s.callers}
            for name, s in snapshots(analytics).items()}


def step_records(analytics: Analytics, result: object) -> dict[str, Any]:
    """What the step proxies' differential tests compare between the C and Python paths.

    The program's ``result``; per function its calls and successes, callers, and
    whether its self and active times are known; the retained calls' errors.
    """
    found = snapshots(analytics)
    return {
        "result": result,
        "calls": {n: (s.calls, s.successes) for n, s in found.items()},
        "callers": {n: sorted((e.name, e.calls) for e in s.callers) for n, s in found.items()},
        "known": {n: (s.self_time is not None, s.active_time is not None)
                  for n, s in found.items()},
        "errors": sorted((c.name, c.error or "") for c in analytics.retained()),
    }
