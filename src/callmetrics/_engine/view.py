"""The one read-only interface through which outputs read a recorder.

The report, the console, the store, the exporters and the integrations read
recorded calls through :class:`Source` only: they never import ``Analytics`` or
the engine's internals.  A ``Source`` is ``Analytics`` itself, or a view rebuilt
from a store by ``load()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from callmetrics._engine.config import AnalyticsConfig
    from callmetrics._engine.state import FunctionSnapshot

__all__ = ["Reading", "RetainedCall", "Source"]


class RetainedCall(NamedTuple):
    """One retained call, as outputs see it."""

    start: float
    """Unix time at which the call started."""
    duration: float
    """Seconds the call took."""
    name: str
    """The function's recorded name."""
    event_type: str
    """The function's event type."""
    error: str | None
    """The exception's type name, or None for a successful call."""
    message: str | None = None
    """The exception's message, or a success's note: one line, at most 500 characters."""
    location: str | None = None
    """Where the exception was raised: ``file:line in function`` (None on success)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """Aggregates and retained calls read together, so that they agree."""

    functions: list[FunctionSnapshot]
    """Every function with at least one call, in name order."""
    calls: list[RetainedCall]
    """The retained calls (at most ``max_events``), oldest first."""
    wall_time: float | None = None
    """Seconds of wall time the recorder covers (a live instance: from its creation to
    the reading; a store view: the chosen runs' spans, overlaps counted once); None:
    unknown."""


class Source(Protocol):
    """What an output may read of a recorder: settings, aggregates, retained calls."""

    @property
    def settings(self) -> AnalyticsConfig:
        """The validated settings in force."""

    def snapshot(self) -> list[FunctionSnapshot]:
        """Return a consistent copy of every function's aggregates, in name order."""

    def retained(self) -> list[RetainedCall]:
        """Return the retained calls, oldest first."""

    def read(self) -> Reading:
        """Return aggregates and retained calls taken together."""
