"""Per-call log lines, with the level decision cached where logging itself caches it.

The hot path must not ask ``isEnabledFor`` on every call (about 100 ns).  The
standard library caches level decisions in each logger's ``_cache`` dict and clears
those dicts whenever a level changes (``setLevel``, ``logging.disable``,
``dictConfig``).  We store our combined decision under a private key in the
``_cache`` of a private logger, one per (analytics, console) logger pair: a dict
lookup per call, and a level changed through the logging API takes effect on the
next call.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from contextvars import ContextVar
from typing import Any, Final

from callmetrics._engine.records import LoggerContainer
from callmetrics._format import duration as format_duration

__all__ = [
    "CACHE_KEY",
    "CONSOLE_SUPPRESSED",
    "FAILURES_LOGGED_BY_CALLER",
    "CallLogger",
    "default_loggers",
    "report_internal_error",
]

# Our entry in a logger's level cache (logging itself only stores int keys there):
# the buffer length at which a wrapper leaves its fast path.  0 while successful calls
# are logged (every call leaves it), the buffer's capacity otherwise (only to drain).
# Shared by instances whose logger pair is the same: they all use the same capacity.
CACHE_KEY: Final = "callmetrics.success-limit"

# Depth of batch_mode blocks in the current context: per-call console lines are
# suppressed while it is above zero.  A ContextVar, so two concurrent asyncio tasks
# (or threads) each see their own batches.
CONSOLE_SUPPRESSED: ContextVar[int] = ContextVar("callmetrics_console_suppressed", default=0)
# Set (True) while a caller that logs the failure itself, in one line, records it (the
# web middlewares): the per-call failure lines are then left out.
FAILURES_LOGGED_BY_CALLER: ContextVar[bool] = ContextVar("callmetrics_failures_logged",
                                                         default=False)

# A per-call line: status, name, [event type], duration as ``_format.duration`` shows it
# (``OK app.fetch [API call] 12.3 µs``).  Formatted by logging, only for a handler that emits.
_LINE: Final = "%s %s [%s] %s"

_internal = logging.getLogger("callmetrics.internal")
_reported: set[str] = set()


def _library_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return logger


# The library's root logger gets a NullHandler (standard practice), so that an
# application without logging configured sees no stray "last resort" output.
_library_logger("callmetrics")


def default_loggers() -> LoggerContainer:
    """Return standard-library loggers under ``callmetrics.*``."""
    return LoggerContainer(
        console_logger=_library_logger("callmetrics.console"),
        error_logger=_library_logger("callmetrics.error"),
        analytics_logger=_library_logger("callmetrics.analytics"),
    )


def report_internal_error(what: str, exc: BaseException) -> None:
    """Log an internal failure of the library once per kind; never raise."""
    if what in _reported:
        return
    _reported.add(what)
    try:
        _internal.error("callmetrics: %s failed (%s: %s); continuing", what,
                        type(exc).__name__, exc)
    except Exception:  # noqa: BLE001  # logging itself is broken: the last resort is stderr
        # Nowhere left to report if even stderr fails; the caller must go on regardless.
        with contextlib.suppress(Exception):
            sys.stderr.write(f"callmetrics: {what} failed ({type(exc).__name__}: {exc})\n")


class _AlwaysStale(dict[Any, Any]):
    """Stand-in cache for loggers without ``_cache``: every lookup misses."""

    def __getitem__(self, key: Any) -> Any:
        raise KeyError(key)


class CallLogger:
    """Writes the per-call lines of one ``Analytics`` instance."""

    __slots__ = ("analytics", "cache", "capacity", "console", "error", "long_max")

    def __init__(self, loggers: LoggerContainer, long_max: float, capacity: int) -> None:
        """Use ``loggers``; successful calls above ``long_max`` seconds log at INFO.

        ``capacity`` is the buffer length at which a wrapper drains when successful
        calls are not logged (the cached limit; 0 while they are).
        """
        self.capacity = capacity
        self.analytics = loggers.analytics
        self.console = loggers.console
        self.error = loggers.error
        self.long_max = long_max
        # The cached decision depends on both the analytics and the console logger, so it
        # lives in a private logger's level cache, one per pair: logging clears every
        # registered logger's cache on any level change, and two instances sharing an
        # analytics logger with different console loggers must not share the decision.
        pair = ".".join(
            name.replace("%", "%25").replace(".", "%2E")
            for name in (self.analytics.name, self.console.name)
        )
        manager = getattr(self.analytics, "manager", logging.Logger.manager)
        cache = getattr(manager.getLogger(f"callmetrics.levels.{pair}"), "_cache", None)
        self.cache: dict[Any, Any] = cache if isinstance(cache, dict) else _AlwaysStale()

    def refresh(self) -> int:
        """Recompute whether successful calls may log at all; cache and return the limit."""
        logs = self.analytics.isEnabledFor(logging.INFO) or self.console.isEnabledFor(
            logging.INFO
        )
        limit = 0 if logs else self.capacity
        self.cache[CACHE_KEY] = limit
        return limit

    def success(self, name: str, event_type: str, duration: float) -> None:
        """Log a successful call: DEBUG, or INFO when slower than ``long_max``."""
        try:
            level = logging.INFO if duration > self.long_max else logging.DEBUG
            to_analytics = self.analytics.isEnabledFor(level)
            to_console = not CONSOLE_SUPPRESSED.get() and self.console.isEnabledFor(level)
            if not (to_analytics or to_console):
                return  # build no part of a message nobody will see
            args = ("OK", name, event_type, format_duration(duration))
            if to_analytics:
                self.analytics.log(level, _LINE, *args)
            if to_console:
                self.console.log(level, _LINE, *args)
        except Exception as exc:  # noqa: BLE001  # a broken handler must not break the call
            report_internal_error("per-call logging", exc)

    def failure(self, name: str, event_type: str, duration: float,
                exc: BaseException) -> None:
        """Log a failed call: DEBUG to analytics, WARNING to console, ERROR with the exception."""
        if FAILURES_LOGGED_BY_CALLER.get():
            return
        try:
            to_analytics = self.analytics.isEnabledFor(logging.DEBUG)
            to_console = not CONSOLE_SUPPRESSED.get() and self.console.isEnabledFor(
                logging.WARNING
            )
            to_error = self.error.isEnabledFor(logging.ERROR)
            if not (to_analytics or to_console or to_error):
                return  # build no part of a message nobody will see
            args = (f"FAILED ({type(exc).__name__})", name, event_type,
                    format_duration(duration))
            if to_analytics:
                self.analytics.debug(_LINE, *args)
            if to_console:
                self.console.warning(_LINE, *args)
            if to_error:
                self.error.error(_LINE, *args, exc_info=exc)
        except Exception as err:  # noqa: BLE001  # a broken handler must not break the call
            report_internal_error("per-call logging", err)
