"""Helpers shared by the core's test modules (not a test module itself)."""

from __future__ import annotations

import math
import time

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
