"""``FunctionSnapshot``: the consistent, read-only copy of one function's aggregates.

Outputs (report, console, store, exporters) receive these through the ``Source``
interface of ``_view.py``; the live aggregates are ``_aggregate.FunctionStats``.
"""

from __future__ import annotations

from dataclasses import dataclass

from callmetrics._engine.records import Event
from callmetrics._engine.sketch import DurationSketch

__all__ = ["FunctionSnapshot"]


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
