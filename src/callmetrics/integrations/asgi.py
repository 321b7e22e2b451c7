"""ASGI middleware: each HTTP request recorded as one call named ``GET /users/{id}``.

Starlette and FastAPI (also the app a ``Mount`` holds) are routed here the way their
router routes (first full match, else first partial match, e.g. a wrong method), so
the name is the route template, never the raw path.  Other apps name their requests
with ``route=``, a function of the scope returning the template (or None).

Starlette / FastAPI::

    app.add_middleware(CallmetricsMiddleware, analytics=analytics)

Any ASGI app::

    app = CallmetricsMiddleware(app, analytics)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from callmetrics.integrations import (
    ClientDisconnected,
    FailedStatus,
    FailureRule,
    Recorder,
    RequestLog,
    check_arguments,
    check_log_level,
    default_failure,
    disconnected_note,
    end_request,
    fail_on,
    request_name,
)

__all__ = ["CallmetricsMiddleware", "starlette_route"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RouteOf = Callable[[Scope], "str | None"]

_FULL, _PARTIAL = 2, 1  # starlette.routing.Match values, compared by value
# ``{id:int}`` is shown as ``{id}``: the convertor is not part of the name.
_CONVERTOR = re.compile(r"\{([^{}:]+):[^{}]+\}")


def _match(routes: list[Any], scope: Scope, prefix: str) -> tuple[int, str | None]:
    partial: str | None = None
    for route in routes:
        try:
            found, child = route.matches(scope)
        except Exception:  # noqa: BLE001, S112  # a route we cannot ask: the router decides
            continue
        kind = getattr(found, "value", found)
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        if kind == _FULL:
            inner = getattr(route, "routes", None)
            if inner:  # a Mount: route inside it, with the scope it hands down
                sub_kind, sub = _match(list(inner), {**scope, **child}, prefix + path)
                if sub_kind:
                    return sub_kind, sub
                return _FULL, f"{prefix}{path}/{{path}}"
            if inner is not None and hasattr(route, "app") and not hasattr(route, "endpoint"):
                return _FULL, f"{prefix}{path}/{{path}}"  # a Mount of a plain ASGI app
            return _FULL, prefix + path
        if kind == _PARTIAL and partial is None:
            partial = prefix + path
    return (_PARTIAL, partial) if partial is not None else (0, None)


def starlette_route(scope: Scope, app: object = None) -> str | None:
    """Return the route template a Starlette/FastAPI app would route ``scope`` to."""
    routes = getattr(scope.get("app"), "routes", None)
    if routes is None:
        routes = getattr(app, "routes", None)
    if not routes:
        return None
    template = _match(list(routes), scope, "")[1]
    return None if template is None else _CONVERTOR.sub(r"{\1}", template)


class CallmetricsMiddleware:
    """Record every HTTP request as one call of its route template, event type ``http``.

    A request fails when the app raises, or when its status satisfies ``failure``
    (default: 5xx); a failing status is recorded as error ``FailedStatus`` with the
    status line as message, any other as a success whose event's message is the
    status line (``200 OK``).  ``status_counts`` counts responses per name and status.
    WebSocket and lifespan traffic passes through untouched.

    A failing request is logged in one line (logger ``callmetrics.http``, at
    ``failure_log_level``, INFO by default), never with a traceback.  A request whose
    client went away before the response was complete (the app received
    ``http.disconnect``, or sending to the client failed) is a success noted
    ``200 OK; client disconnected``, or with ``disconnect_is_failure=True`` a failure
    of error type ``ClientDisconnected``.
    """

    def __init__(self, app: ASGIApp, analytics: Recorder, *, event_type: str = "http",
                 route: RouteOf | None = None, failure: FailureRule = default_failure,
                 failure_log_level: int = logging.INFO,
                 disconnect_is_failure: bool = False) -> None:
        """Wrap ``app``, recording into ``analytics``.

        Raises:
            TypeError: when ``analytics`` has no ``measure``, ``route``/``failure`` are
                not callable, or ``failure_log_level`` is not a level number.

        """
        check_arguments(analytics, event_type, route, failure, route_of="scope")
        self.failure_log_level = check_log_level(failure_log_level)
        self.disconnect_is_failure = bool(disconnect_is_failure)
        self.app = app
        self.analytics = analytics
        self.event_type = event_type
        self.failure = failure
        self._route = route
        self._log = RequestLog()

    @property
    def status_counts(self) -> dict[tuple[str, int], int]:
        """Exact responses per ``(request name, status code)`` (0: no response started)."""
        return self._log.status_counts

    def _name(self, scope: Scope) -> str:
        try:
            template = (self._route(scope) if self._route is not None
                        else starlette_route(scope, self.app))
        except Exception:  # noqa: BLE001  # an unroutable request is still counted
            template = None
        return request_name(str(scope.get("method", "")), template)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        name = self._name(scope)
        status = 0
        complete = gone = False  # the response sent whole; the client went away before

        async def send_status(message: Message) -> None:
            nonlocal status, complete, gone
            kind = message.get("type")
            if kind == "http.response.start":
                status = int(message.get("status", 0))
            try:
                await send(message)
            except OSError:
                gone = gone or not complete
                raise
            if kind == "http.response.body" and not message.get("more_body", False):
                complete = True

        async def receive_watched() -> Message:
            nonlocal gone
            message = await receive()
            if message.get("type") == "http.disconnect" and not complete:
                gone = True
            return message

        block = self.analytics.measure(name, event_type=self.event_type)
        block.__enter__()
        error: BaseException | None = None
        try:
            await self.app(scope, receive_watched, send_status)
            fail_on(status, self.failure, block)
        except FailedStatus as failed:
            error = failed
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._log.add(name, status)
            if error is None and gone:
                if self.disconnect_is_failure:
                    error = ClientDisconnected(disconnected_note(status))
                else:
                    block.message = disconnected_note(status)
            end_request(block, name, error, self.failure_log_level)
