"""The report's per-function view: what the page shows when a function is clicked.

One compact JSON record per function (figures already formatted, callers and
callees, its slowest retained calls); its histogram is an inert ``<template>`` in
the page, and its failures are the failure table's rows of that function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from callmetrics._engine.state import FunctionSnapshot
from callmetrics._engine.view import RetainedCall
from callmetrics._format import count, duration, percent, printable
from callmetrics._outputs.names import natural_key
from callmetrics._outputs.report_tables import when

__all__ = ["function_details"]

_SLOWEST = 5
_EDGES = 12


def function_details(snaps: Sequence[FunctionSnapshot], calls: Sequence[RetainedCall],
                     time_format: str, compact: bool) -> list[dict[str, Any]]:
    """One record per function, in natural name order (the page looks them up by name)."""
    slowest: dict[str, list[RetainedCall]] = {}
    floor: dict[str, float] = {}  # the shortest kept duration, once a function has five
    below = floor.get
    for call in calls:
        if call.duration <= below(call.name, -1.0):
            continue
        kept = slowest.setdefault(call.name, [])
        kept.append(call)
        if len(kept) > _SLOWEST:
            kept.sort(key=lambda c: -c.duration)
            del kept[_SLOWEST:]
        if len(kept) == _SLOWEST:
            floor[call.name] = min(c.duration for c in kept)
    for kept in slowest.values():
        kept.sort(key=lambda c: -c.duration)
    callees: dict[str, list[tuple[str, int, float]]] = {}
    for snap in snaps:
        for edge in snap.callers:
            callees.setdefault(edge.name, []).append((snap.name, edge.calls, edge.time))
    records = []
    for snap in sorted(snaps, key=lambda s: natural_key(s.name)):
        p50, p95, p99 = snap.sketch.quantiles((0.5, 0.95, 0.99))
        callers = sorted(((e.name, e.calls, e.time) for e in snap.callers), key=lambda e: -e[2])
        made = sorted(callees.get(snap.name, ()), key=lambda e: -e[2])
        records.append({
            "name": printable(snap.name),
            "type": printable(snap.event_type),
            "figures": [
                ["Calls", count(snap.calls)], ["Failures", count(snap.failures)],
                ["Success", percent(snap.successes, snap.calls)],
                ["Self", duration(snap.self_time)], ["Total", duration(snap.total)],
                ["Active", duration(snap.active_time)],
                ["Inclusive", duration(snap.inclusive_time)],
                ["p50", duration(p50)], ["p95", duration(p95)], ["p99", duration(p99)],
                ["Max", duration(snap.max)], ["Overhead", duration(snap.overhead)],
            ],
            "callers": [[printable(n), count(c), duration(t)] for n, c, t in callers[:_EDGES]],
            "callees": [[printable(n), count(c), duration(t)] for n, c, t in made[:_EDGES]],
            "slowest": [[when(c.start, time_format, compact=compact, millis=True),
                         duration(c.duration),
                         "succeeded" if c.error is None else f"failed: {printable(c.error)}"]
                        for c in slowest.get(snap.name, ())],
        })
    return records
