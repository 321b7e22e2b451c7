"""The report's per-function view: what the page shows when a function is clicked.

One compact JSON record per function (figures already formatted, callers and
callees, its slowest retained calls); its histogram is an inert ``<template>`` in
the page, and its failures are the failure table's rows of that function.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from operator import ge, itemgetter
from typing import Any, TypeVar, overload

from callmetrics._engine.columns import CallColumns
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._engine.view import RetainedCall
from callmetrics._format import count, duration, percent, printable
from callmetrics._outputs.failures import failure_causes
from callmetrics._outputs.names import natural_key
from callmetrics._outputs.report_charts import Percentiles
from callmetrics._outputs.report_tables import CPU_COLUMN, when

__all__ = ["function_details", "over_time"]

_SLOWEST = 5
_V = TypeVar("_V")
_EDGES = 12


def function_details(snaps: Sequence[FunctionSnapshot], calls: CallColumns,
                     failed: Sequence[RetainedCall], time_format: str,
                     compact: bool, known: Percentiles | None = None) -> list[dict[str, Any]]:
    """One record per function, in natural name order (the page looks them up by name).

    ``calls``: the retained calls in the order they started (``valid_calls``);
    ``failed``: the failed ones among them.  ``failures``: ``[count, exception, message
    template]`` of each cause, this function's own count, the most frequent first.
    ``known``: the functions' p50, p95 and p99 (``percentiles``), when already read.
    """
    failed_by: dict[str, list[list[str]]] = {}
    for cause in failure_causes(failed):
        for name, n in cause.functions.items():
            failed_by.setdefault(name, []).append([
                count(n), printable(cause.error),
                "no message recorded" if cause.template is None else printable(cause.template)])
    # Each function's positions and durations, in start order: C-speed passes.
    positions_of = _grouped(calls, range(len(calls)))
    every = calls.durations.tolist()
    slowest: dict[str, list[int]] = {}
    trends: dict[str, dict[str, Any] | None] = {}
    for name, positions in zip(calls.names, positions_of, strict=True):
        if positions:
            # itemgetter picks a function's durations in one C call (a 1-tuple for one).
            took = list(itemgetter(*positions)(every)) if len(positions) > 1 else [
                every[positions[0]]]
            trend, longest = _profile(_Gathered(positions, calls.starts), took)
            slowest[name] = [positions[i] for i in longest]
            trends[name] = trend
    callees: dict[str, list[tuple[str, int, float]]] = {}
    for snap in snaps:
        for edge in snap.callers:
            callees.setdefault(edge.name, []).append((snap.name, edge.calls, edge.time))
    records = []
    for snap in sorted(snaps, key=lambda s: natural_key(s.name)):
        p50, p95, p99 = (known[snap.name] if known is not None
                         else snap.sketch.quantiles((0.5, 0.95, 0.99)))
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
                *([[CPU_COLUMN, duration(snap.cpu_time)]] if snap.cpu_time is not None
                  else []),
            ],
            "callers": [[printable(n), count(c), duration(t)] for n, c, t in callers[:_EDGES]],
            "callees": [[printable(n), count(c), duration(t)] for n, c, t in made[:_EDGES]],
            "over_time": trends.get(snap.name),
            "failures": failed_by.get(snap.name, []),
            "slowest": [[when(c.start, time_format, compact=compact, millis=True),
                         duration(c.duration),
                         "succeeded" if c.error is None else f"failed: {printable(c.error)}"]
                        for c in calls.calls(slowest.get(snap.name, ()))],
        })
    return records


def _grouped(calls: CallColumns, values: Iterable[_V]) -> list[list[_V]]:
    """``values`` (one per call) split by function: a list per index of ``calls.names``."""
    groups: list[list[_V]] = [[] for _ in calls.names]
    deque(map(list.append, map(groups.__getitem__, calls.functions), values), maxlen=0)
    return groups


def _longest(durations: list[float]) -> list[int]:
    """Indices of the ``_SLOWEST`` longest durations, longest first, ties to the earliest.

    ``heapq.nlargest`` is a stable sort's head; it runs on the few candidates at or
    above the ``_SLOWEST``-th longest of an evenly spaced probe (at least that many
    durations are that long, so every one of the longest is among them).
    """
    n = len(durations)
    candidates: Iterable[int] = range(n)
    if n > 4 * _PROBE:
        floor = heapq.nlargest(_SLOWEST, durations[::n // _PROBE])[-1]
        candidates = compress(range(n), map(ge, durations, repeat(floor)))
    return heapq.nlargest(_SLOWEST, candidates, key=durations.__getitem__)


# Durations sampled to find a floor for the longest (``_longest``).
_PROBE = 256

# Percentiles over time: the retained calls of a function in this many slices of time.
_SLICES = 20
_MIN_PER_SLICE = 5


class _Gathered(Sequence[float]):
    """``values[positions[i]]`` for each ``i``: a function's starts, read only where asked."""

    def __init__(self, positions: list[int], values: Sequence[float]) -> None:
        self._positions = positions
        self._values = values

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> float: ...

    @overload
    def __getitem__(self, index: slice) -> list[float]: ...

    def __getitem__(self, index: int | slice) -> float | list[float]:
        if isinstance(index, slice):
            return [self._values[p] for p in self._positions[index]]
        return self._values[self._positions[index]]


def over_time(starts: Sequence[float], durations: Sequence[float]) -> dict[str, Any] | None:
    """p50 and p95 of a function's retained calls per slice of time, for the function view.

    ``starts`` ascending, ``durations`` alike.  ``t``: each slice's middle as seconds
    since the first call; ``p50``/``p95``: microseconds (None where a slice holds fewer
    than five calls); None without enough calls for two slices.
    """
    return _profile(starts, list(durations))[0]


def _profile(starts: Sequence[float],
             durations: list[float]) -> tuple[dict[str, Any] | None, list[int]]:
    """``over_time`` of a function's calls, and the indices of its ``_SLOWEST`` longest.

    The slices are sorted once for both: the longest calls are among the longest of
    the slices, so only the slices that hold one are searched again.
    """
    n = len(starts)
    if n < 2 * _MIN_PER_SLICE or starts[-1] - starts[0] <= 0:
        return None, _longest(durations)
    first, span = starts[0], starts[-1] - starts[0]
    # The calls are in start order: each slice is one run of them, found by bisection.
    edges = [bisect.bisect_left(starts, first + k * span / _SLICES) for k in range(_SLICES)]
    edges.append(n)
    p50: list[float | None] = []
    p95: list[float | None] = []
    tails: list[tuple[int, int, list[float]]] = []  # each slice's longest, sorted
    for lo, hi in itertools.pairwise(edges):
        if hi - lo < _MIN_PER_SLICE:
            p50.append(None)
            p95.append(None)
            tails.append((lo, hi, sorted(durations[lo:hi])))
            continue
        part = sorted(durations[lo:hi])
        p50.append(round(part[len(part) // 2] * 1e6, 3))
        p95.append(round(part[min(int(len(part) * 0.95), len(part) - 1)] * 1e6, 3))
        tails.append((lo, hi, part[-_SLOWEST:]))
    floor = heapq.nlargest(_SLOWEST, itertools.chain.from_iterable(t for _, _, t in tails))[-1]
    candidates = itertools.chain.from_iterable(
        compress(range(lo, hi), map(ge, durations[lo:hi], repeat(floor)))
        for lo, hi, tail in tails if tail and tail[-1] >= floor)
    longest = heapq.nlargest(_SLOWEST, candidates, key=durations.__getitem__)
    if sum(v is not None for v in p50) < 2:
        return None, longest
    return ({"t": [round((i + 0.5) * span / _SLICES, 6) for i in range(_SLICES)],
             "p50": p50, "p95": p95, "span": duration(span)}, longest)
