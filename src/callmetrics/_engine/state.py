"""``FunctionSnapshot``: the consistent, read-only copy of one function's aggregates.

Outputs (report, console, store, exporters) receive these through the ``Source``
interface of ``_view.py``; the live aggregates are ``_aggregate.FunctionStats``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callmetrics._engine.errors import UNKNOWN_TYPE
from callmetrics._engine.records import Event
from callmetrics._engine.sketch import DurationSketch

__all__ = ["OTHER_CALLERS", "CallerEdge", "FunctionSnapshot"]


@dataclass(frozen=True, slots=True)
class CallerEdge:
    """Calls of a function made by one caller: the nearest tracked call on the stack."""

    name: str
    """The caller's recorded name; ``OTHER_CALLERS`` folds the callers past the cap."""
    calls: int
    """How many calls it made."""
    time: float
    """The seconds those calls took (their durations, summed)."""


# The name of the entry that folds every caller past the per-instance cap on edges.
OTHER_CALLERS = "(other callers)"


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
    # Where the time goes (None: unknown, as in stores written before schema 3).
    self_time: float | None = None
    """Seconds of the calls less the time of the tracked calls they made directly
    (on the same thread, or awaited by the same coroutine)."""
    inclusive_time: float | None = None
    """Seconds of the outermost calls only: a recursion counted once (cProfile's cumtime)."""
    active_time: float | None = None
    """Seconds the calls were running (coroutines and generators: the sum of their steps,
    from each resume to the next suspension); ``total`` for plain functions."""
    active_self_time: float | None = None
    """``active_time`` less the active time of the tracked calls made directly."""
    callers: tuple[CallerEdge, ...] = ()
    """Who called it: one entry per tracked caller (none for calls from untracked code)."""
    failures_by_type: Mapping[str, int] | None = None
    """Failures by exception type's qualified name (``_engine.errors``: at most
    ``TYPES_LIMIT`` names, the rest under ``"(other)"``; those of a store written
    before schema 4 under ``"(unknown)"``); they add up to ``failures``.  None: not
    recorded (see :meth:`failure_types`)."""
    cpu_time: float | None = None
    """Seconds of thread CPU time the calls used (None: not measured)."""

    def failure_types(self) -> dict[str, int]:
        """Failures by type name, adding up to ``failures`` (the unrecorded as ``(unknown)``)."""
        known = dict(self.failures_by_type or {})
        rest = self.failures - sum(known.values())
        if rest > 0:
            known[UNKNOWN_TYPE] = known.get(UNKNOWN_TYPE, 0) + rest
        return {name: count for name, count in known.items() if count}

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
