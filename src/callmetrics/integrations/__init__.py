"""Web integrations: each request recorded as one call named by its route template.

``callmetrics.integrations.asgi`` (Starlette, FastAPI, any ASGI app) and
``callmetrics.integrations.wsgi`` (Flask, Django, any WSGI app) share what is here:
the bounded request names, the failure rule, the status line every request's event
carries and the per-status counts.  Neither imports a web framework; both record
through ``Analytics.measure``.
"""

from __future__ import annotations

import http
import logging
import threading
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from callmetrics._engine.logs import FAILURES_LOGGED_BY_CALLER, report_internal_error
from callmetrics._format import printable

__all__ = [
    "DISCONNECTED",
    "UNMATCHED",
    "Block",
    "ClientDisconnected",
    "FailedStatus",
    "Recorder",
    "RequestLog",
    "check_arguments",
    "check_event_type",
    "check_log_level",
    "default_failure",
    "disconnected_note",
    "end_request",
    "fail_on",
    "request_name",
    "status_line",
]

UNMATCHED = "<unmatched>"
# Methods outside the standard ones fold into one name, so that names stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
                      "CONNECT"})


class Block(Protocol):
    """What ``measure()`` returns: a context manager whose ``message`` notes a success."""

    message: object

    def __enter__(self) -> Block:
        """Start timing."""

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Record the block."""


class Recorder(Protocol):
    """What the middlewares need of an ``Analytics``: its public ``measure``."""

    def measure(self, name: str, *, event_type: str = ...) -> Block:
        """Time a block recorded as one call of ``name``."""


def status_line(status: int) -> str:
    """Return ``"200 OK"``: the code and its standard phrase (``Unknown Status`` if none)."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown Status"
    return f"{status} {phrase}"


class FailedStatus(Exception):  # noqa: N818  # recorded as the call's error type: reads as the status
    """Raised (and caught) inside the measured block for a response counted as a failure.

    The call's error type is then ``FailedStatus`` and its message the status line,
    e.g. ``503 Service Unavailable``: the status code is kept on the failed event.
    """

    def __init__(self, status: int) -> None:
        """Describe ``status`` with its standard phrase (:func:`status_line`)."""
        super().__init__(status_line(status))
        self.status = status


def fail_on(status: int, failure: Callable[[int], bool], block: Block | None = None) -> None:
    """Raise ``FailedStatus`` when a response with ``status`` counts as a failure.

    Otherwise note the status line on ``block`` (when given and a response started),
    so that a successful request's event carries it too.
    """
    if status and failure(status):
        raise FailedStatus(status)
    if status and block is not None:
        block.message = status_line(status)


def check_event_type(event_type: object) -> None:
    """Fail early for an event type that ``measure`` would refuse on the first request."""
    if not isinstance(event_type, str) or not event_type.strip():
        raise TypeError(f"event_type must be a non-empty str, got {event_type!r}")


def check_arguments(analytics: object, event_type: object, route: object, failure: object,
                    *, route_of: str) -> None:
    """Check a middleware's arguments at once, naming the one at fault.

    ``route_of`` names what ``route`` is called with (the ASGI scope, the WSGI environ).
    """
    if not callable(getattr(analytics, "measure", None)):
        raise TypeError("analytics must be an Analytics (it has no measure())")
    if route is not None and not callable(route):
        raise TypeError(f"route must be a function of the {route_of}")
    if not callable(failure):
        raise TypeError("failure must be a function of the status code")
    check_event_type(event_type)


def default_failure(status: int) -> bool:
    """The default rule: a 5xx response is a failure."""
    return 500 <= status <= 599


def request_name(method: str, template: str | None) -> str:
    """Return ``"GET /users/{id}"``; unknown methods and unmatched paths fold into one name."""
    method = method.upper() if method.upper() in _METHODS else "OTHER"
    return f"{method} {template if template is not None else UNMATCHED}"


class RequestLog:
    """Exact response counts per request name and status code, safe across threads.

    Read ``status_counts`` for ``{(name, status): count}``; requests that ended
    with an exception before a response started count under status 0.
    """

    def __init__(self) -> None:
        """Start with no requests."""
        self._counts: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def add(self, name: str, status: int) -> None:
        """Count one response."""
        with self._lock:
            self._counts[name, status] += 1

    @property
    def status_counts(self) -> dict[tuple[str, int], int]:
        """A copy of the counts, ``{(name, status): responses}``."""
        with self._lock:
            return dict(self._counts)


FailureRule = Callable[[int], bool]

_log = logging.getLogger("callmetrics.http")

# What a request whose client went away is noted with (after its status line).
DISCONNECTED = "client disconnected"


class ClientDisconnected(Exception):  # noqa: N818  # recorded as the call's error type
    """The error recorded for a request whose client went away, if that is a failure.

    Only with ``disconnect_is_failure=True``; never raised to the app.
    """


def check_log_level(level: object) -> int:
    """Fail early for a ``failure_log_level`` that is not a logging level number."""
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        raise TypeError(f"failure_log_level must be a logging level (an int), got {level!r}")
    return level


def end_request(block: Block, name: str, error: BaseException | None, level: int) -> None:
    """Exit a request's block; a failure is logged here, in one line at ``level``.

    The per-call failure lines (and their traceback) are left out; the app's own
    exception propagates untouched, for the server or framework to log.
    """
    if error is None:
        block.__exit__(None, None, None)
        return
    token = FAILURES_LOGGED_BY_CALLER.set(True)
    try:
        block.__exit__(type(error), error, error.__traceback__)
    finally:
        FAILURES_LOGGED_BY_CALLER.reset(token)
    try:
        if _log.isEnabledFor(level):
            text = str(error) if isinstance(error, FailedStatus | ClientDisconnected) else (
                f"{type(error).__name__}: {str(error)[:200]}")
            _log.log(level, "callmetrics: %s failed (%s)", name, printable(text))
    except Exception as exc:  # noqa: BLE001  # a broken handler or __str__: never the request's
        report_internal_error("logging a failed request", exc)


def disconnected_note(status: int) -> str:
    """The note of a request whose client went away: ``200 OK; client disconnected``."""
    return f"{status_line(status)}; {DISCONNECTED}" if status else DISCONNECTED
