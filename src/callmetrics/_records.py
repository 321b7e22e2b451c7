"""Small record types: the seed's containers and the read-only event view."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EVENT_KEYS", "CallInfo", "Event", "LoggerContainer", "TimingInfo", "format_time"]


@dataclass(slots=True)
class TimingInfo:
    """Timing of one call: wall-clock start and end, duration and wrapper overhead (s)."""

    start: float
    end: float
    duration: float
    overhead: float


@dataclass(slots=True)
class CallInfo:
    """What was called: the recorded function name, its event type and the outcome."""

    func_name: str
    event_type: str
    success: bool


class LoggerContainer:
    """The three loggers an ``Analytics`` instance writes to."""

    __slots__ = ("analytics", "console", "error")

    def __init__(
        self,
        console_logger: logging.Logger,
        error_logger: logging.Logger,
        analytics_logger: logging.Logger,
    ) -> None:
        """Hold the console, error and analytics loggers.

        Raises:
            TypeError: when any of them is not a ``logging.Logger``.

        """
        for name, value in (
            ("console_logger", console_logger),
            ("error_logger", error_logger),
            ("analytics_logger", analytics_logger),
        ):
            if not isinstance(value, logging.Logger):
                raise TypeError(f"{name} must be a logging.Logger, got {type(value).__name__}")
        self.console = console_logger
        self.error = error_logger
        self.analytics = analytics_logger

    def __repr__(self) -> str:
        """Name the three loggers."""
        return (
            f"LoggerContainer(console={self.console.name!r}, error={self.error.name!r}, "
            f"analytics={self.analytics.name!r})"
        )


def format_time(timestamp: float, time_format: str, *, compact: bool) -> str:
    """Format a Unix timestamp in local time, as the seed displays it."""
    return time.strftime("%H:%M:%S" if compact else time_format, time.localtime(timestamp))


EVENT_KEYS = (
    "Function",
    "Event Type",
    "Start Time",
    "End Time",
    "Duration (s)",
    "Success",
    "Error",
)


class Event(Mapping[str, Any]):
    """One recorded call, readable as a mapping with the seed's keys.

    Timestamps are kept as Unix times (``start``, ``end``) and only formatted when
    ``"Start Time"`` or ``"End Time"`` is read.
    """

    __slots__ = ("_compact", "_time_format", "duration", "error", "event_type",
                 "function", "start")

    def __init__(
        self,
        function: str,
        event_type: str,
        start: float,
        duration: float,
        error: str | None,
        time_format: str = "%Y-%m-%d %H:%M:%S",
        *,
        compact: bool = False,
    ) -> None:
        """Describe one call; ``error`` is the exception type's name or None."""
        self.function = function
        self.event_type = event_type
        self.start = start
        self.duration = duration
        self.error = error
        self._time_format = time_format
        self._compact = compact

    @property
    def end(self) -> float:
        """Unix time at which the call ended."""
        return self.start + self.duration

    @property
    def success(self) -> bool:
        """Whether the call returned without raising."""
        return self.error is None

    def __getitem__(self, key: str) -> Any:  # noqa: PLR0911  # one return per seed key
        """Read a field by the seed's key."""
        if key == "Function":
            return self.function
        if key == "Event Type":
            return self.event_type
        if key == "Start Time":
            return format_time(self.start, self._time_format, compact=self._compact)
        if key == "End Time":
            return format_time(self.end, self._time_format, compact=self._compact)
        if key == "Duration (s)":
            return self.duration
        if key == "Success":
            return self.error is None
        if key == "Error":
            return self.error
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        """Iterate over the seed's keys."""
        return iter(EVENT_KEYS)

    def __len__(self) -> int:
        """Return the number of keys."""
        return len(EVENT_KEYS)

    def __repr__(self) -> str:
        """Show the function, duration and outcome."""
        outcome = "ok" if self.error is None else self.error
        return f"Event({self.function!r}, {self.event_type!r}, {self.duration:.6f}s, {outcome})"
