"""Small record types: the seed's containers and the events read back."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from callmetrics._format import duration as format_duration

__all__ = ["EVENT_KEYS", "CallInfo", "Event", "LoggerContainer", "TimingInfo", "format_time",
           "make_event"]


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


_time_cache: dict[str, dict[int, str]] = {}
_TIME_CACHE_SIZE = 4096


def format_time(timestamp: float, time_format: str, *, compact: bool) -> str:
    """Format a Unix timestamp in local time, as the seed displays it.

    ``time.strftime`` has no unit below the second, so each second is formatted once
    and cached (a read of 10,000 events formats a handful of seconds).
    """
    fmt = "%H:%M:%S" if compact else time_format
    second = math.floor(timestamp)
    cache = _time_cache.get(fmt)
    if cache is None:
        cache = _time_cache[fmt] = {}
    text = cache.get(second)
    if text is None:
        if len(cache) >= _TIME_CACHE_SIZE:
            cache.clear()
        text = cache[second] = time.strftime(fmt, time.localtime(second))
    return text


EVENT_KEYS = (
    "Function",
    "Event Type",
    "Start Time",
    "End Time",
    "Duration (s)",
    "Success",
    "Error",
    "Message",
    "Location",
)


class Event(dict[str, Any]):
    """One recorded call: a plain dict with the seed's keys, plus failure details.

    ``json.dumps`` takes it as it is.  The seed's keys are ``Function``, ``Event
    Type``, ``Start Time``, ``End Time`` (formatted local times), ``Duration (s)``,
    ``Success`` and ``Error`` (the exception type's name or None); ``Message`` is one
    line of at most 500 characters: for a failure the exception's message, for a
    success a note its recorder attached (``measure()``'s ``block.message``; for a
    web request, the status line, e.g. ``200 OK``), else None; ``Location``
    (``file:line in function``) is None for successful calls.  The Unix times are
    also attributes (``start``, ``end``), with ``duration``, ``function``,
    ``event_type``, ``error``, ``message``, ``location`` and ``success``.
    """

    __slots__ = ("start",)

    def __init__(  # the seed's fields plus the failure's details
        self,
        function: str,
        event_type: str,
        start: float,
        duration: float,
        error: str | None,
        time_format: str = "%Y-%m-%d %H:%M:%S",
        *,
        compact: bool = False,
        message: str | None = None,
        location: str | None = None,
    ) -> None:
        """Describe one call; ``error`` is the exception type's name or None."""
        self.start = start
        fmt = "%H:%M:%S" if compact else time_format
        super().__init__(_fields(function, event_type, start, duration, error, fmt, message,
                                 location))

    @property
    def function(self) -> str:
        """The function's recorded name."""
        return self["Function"]  # type: ignore[no-any-return]

    @property
    def event_type(self) -> str:
        """The function's event type."""
        return self["Event Type"]  # type: ignore[no-any-return]

    @property
    def duration(self) -> float:
        """Seconds the call took."""
        return self["Duration (s)"]  # type: ignore[no-any-return]

    @property
    def error(self) -> str | None:
        """The exception type's name, or None for a successful call."""
        return self["Error"]  # type: ignore[no-any-return]

    @property
    def message(self) -> str | None:
        """The exception's message, or a success's note (one line, at most 500 characters)."""
        return self["Message"]  # type: ignore[no-any-return]

    @property
    def location(self) -> str | None:
        """Where the exception was raised (``file:line in function``), or None."""
        return self["Location"]  # type: ignore[no-any-return]

    @property
    def end(self) -> float:
        """Unix time at which the call ended."""
        return self.start + self.duration

    @property
    def success(self) -> bool:
        """Whether the call returned without raising."""
        return self.error is None

    def __repr__(self) -> str:
        """Show the function, duration and outcome (with its message, when it has one)."""
        outcome = "ok" if self.error is None else self.error
        message = self.message
        if message:
            shown = message if len(message) <= _REPR_MESSAGE else message[:_REPR_MESSAGE - 1] + "…"
            outcome = f"{outcome}: {shown!r}"
        return (f"Event({self.function!r}, {self.event_type!r}, {format_duration(self.duration)}, "
                f"{outcome})")


_REPR_MESSAGE = 60  # characters of a message in repr(Event)


def _fields(function: str, event_type: str, start: float, duration: float,
            error: str | None, fmt: str, message: str | None,
            location: str | None) -> dict[str, Any]:
    return {
        "Function": function,
        "Event Type": event_type,
        "Start Time": format_time(start, fmt, compact=False),
        "End Time": format_time(start + duration, fmt, compact=False),
        "Duration (s)": duration,
        "Success": error is None,
        "Error": error,
        "Message": message,
        "Location": location,
    }


_new_dict = dict.__new__
_fill = dict.update


def make_event(function: str, event_type: str, start: float, duration: float,
               error: str | None, fmt: str, message: str | None = None,
               location: str | None = None) -> Event:
    """Build an ``Event`` without running Python ``__init__`` (reads build thousands).

    ``fmt`` is the time format already chosen (``"%H:%M:%S"`` in compact mode).
    """
    event: Event = _new_dict(Event)
    _fill(event, _fields(function, event_type, start, duration, error, fmt, message, location))
    event.start = start
    return event
