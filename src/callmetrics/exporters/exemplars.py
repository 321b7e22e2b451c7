"""Exemplars: recent calls that carry a trace id, kept per function and duration octave.

When OpenTelemetry spans are on (``callmetrics.exporters.otel.instrument(...,
spans=True)``), each traced call is offered here with its span's trace and span ids.
For each function, the latest call of each power-of-two duration range is kept, so
the memory is bounded (at most ~60 entries a function, in practice a dozen), and
every classic bucket can show a recent call that fell in it.  The Prometheus
exporter reads them for the OpenMetrics exposition (and the protobuf one's classic
buckets); only a live instance has them, never a store.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Exemplar", "ExemplarStore", "pick", "store_for"]


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One traced call: its duration, when it ended, and its trace."""

    value: float
    """Seconds the call took."""
    timestamp: float
    """Unix time at which it ended."""
    trace_id: str
    """The trace id, 32 hex digits."""
    span_id: str
    """The span id, 16 hex digits."""


class ExemplarStore:
    """The latest traced call per ``(function, event_type)`` and duration octave."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        """Start empty."""
        self._kept: dict[tuple[str, str], dict[int, Exemplar]] = {}

    def offer(self, key: tuple[str, str], duration: float, trace_id: int,
              span_id: int) -> None:
        """Keep this call as the latest of its function and octave (one dict write)."""
        octaves = self._kept.get(key)
        if octaves is None:
            octaves = self._kept.setdefault(key, {})
        octave = math.frexp(duration)[1] if duration > 0 else -1100
        octaves[octave] = Exemplar(duration, time.time(), f"{trace_id:032x}", f"{span_id:016x}")

    def read(self) -> dict[tuple[str, str], list[Exemplar]]:
        """Return a copy of the kept calls by function."""
        return {key: list(octaves.copy().values()) for key, octaves in self._kept.copy().items()}


_stores: weakref.WeakKeyDictionary[Any, ExemplarStore] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def store_for(owner: object, *, create: bool = False) -> ExemplarStore | None:
    """Return the exemplar store of ``owner`` (an ``Analytics``), made on demand."""
    found = _stores.get(owner)
    if found is None and create:
        with _lock:
            found = _stores.setdefault(owner, ExemplarStore())
    return found


def pick(exemplars: Sequence[Exemplar], bounds: Sequence[float]) -> tuple[Exemplar | None, ...]:
    """Return, for each bucket ``(bounds[i-1], bounds[i]]`` and +Inf, its latest exemplar."""
    chosen: list[Exemplar | None] = [None] * (len(bounds) + 1)
    for exemplar in exemplars:
        at = bisect_left(bounds, exemplar.value)  # first bound >= value
        held = chosen[at]
        if held is None or held.timestamp <= exemplar.timestamp:
            chosen[at] = exemplar
    return tuple(chosen)
