"""WSGI middleware: each request recorded as one call named ``GET /users/{id}``.

Flask apps (also ``app.wsgi_app``) are routed with their own URL map, and Django's
``WSGIHandler`` with its URL resolver, so the name is the route template, never the
raw path.  Other apps name their requests with ``route=``, a function of the WSGI
environ returning the template (or None).

Flask::

    app.wsgi_app = CallmetricsMiddleware(app.wsgi_app, analytics)

Django (``wsgi.py``)::

    application = CallmetricsMiddleware(get_wsgi_application(), analytics)

The call lasts until the server closes the response, so streamed bodies count whole.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
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

__all__ = ["CallmetricsMiddleware", "django_route", "flask_route"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
RouteOf = Callable[[Environ], "str | None"]

# Flask/werkzeug rule variables, ``<int:id>`` or ``<name>``, shown as ``{id}``.
_RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
# A ``re_path`` named group without nested groups, ``(?P<year>[0-9]{4})``, read ``{year}``.
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^()]*\)")


def flask_route(app: Any) -> RouteOf:
    """Return the route function of a Flask app: its URL rule, as ``/users/{id}``.

    The rule is the one Flask's ``request.url_rule`` holds.  A wrong method (405) is
    named by the rule of its path, as the ASGI middleware names it.
    """
    url_map = app.url_map

    def route(environ: Environ) -> str | None:
        try:
            adapter = url_map.bind_to_environ(environ)
            try:
                rule, _ = adapter.match(return_rule=True)
            except Exception as exc:  # MethodNotAllowed knows the path's methods
                methods = getattr(exc, "valid_methods", None)
                if not methods:
                    raise
                rule, _ = adapter.match(method=sorted(methods)[0], return_rule=True)
        except Exception:  # noqa: BLE001  # NotFound, redirects, a broken map: unmatched
            return None
        return _RULE_VARIABLE.sub(r"{\1}", str(rule.rule))

    return route


def django_route(environ: Environ) -> str | None:
    """Return Django's matched route (``resolver_match.route``), as ``/users/{id}``.

    A ``path()`` route's ``<int:id>`` reads ``{id}``; a ``re_path()`` route loses its
    ``^``/``$`` anchors and its named groups read ``{name}``.
    """
    from django.urls import Resolver404, resolve  # noqa: PLC0415  # Django is optional

    try:
        match = resolve(environ.get("PATH_INFO", "/"))
    except Resolver404:
        return None
    route = str(match.route).removeprefix("^").removesuffix("$").removesuffix("\\Z")
    return "/" + _RULE_VARIABLE.sub(r"{\1}", _REGEX_GROUP.sub(r"{\1}", route))


def _detect(app: object) -> RouteOf | None:
    owner = getattr(app, "__self__", app)  # ``app.wsgi_app`` is a bound method of the app
    if hasattr(owner, "url_map") and hasattr(owner.url_map, "bind_to_environ"):
        return flask_route(owner)
    if type(owner).__module__.startswith("django."):
        return django_route
    return None


class _Body:
    """The app's response, passed through; the call ends when the server closes it.

    A body the server stopped sending part way ends the call as a disconnect (what a
    server does when the client went away): fewer bytes than its ``Content-Length``
    were taken, or, without one, it was iterated and dropped or closed before its end.
    """

    def __init__(self, body: Iterable[bytes], finish: Callable[[BaseException | None, bool], None],
                 expected: Callable[[], int | None]) -> None:
        self._body = body
        self._finish = finish
        self._expected = expected  # the response's Content-Length (None: not given)
        self._done = False
        self._sending = False  # iterated, not to its end
        self._sent = 0

    def __iter__(self) -> Iterator[bytes]:
        self._sending = True
        try:
            for chunk in self._body:  # not `yield from`: only close() closes the body, once
                self._sent += len(chunk)
                yield chunk
        except GeneratorExit:  # dropped unfinished (no close() came first): not a failure
            self.close()
            raise
        except BaseException as exc:
            self.close(exc)
            raise
        self._sending = False

    def _cut_short(self) -> bool:
        expected = self._expected()
        if expected is not None:
            return self._sent < expected
        return self._sending

    def close(self, exc: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        disconnected = exc is None and self._cut_short()
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        except BaseException as error:
            self._finish(error, False)
            raise
        self._finish(exc, disconnected)


class CallmetricsMiddleware:
    """Record every request as one call of its route template, event type ``http``.

    A request fails when the app raises (also while its body is produced), or when
    its status satisfies ``failure`` (default: 5xx); a failing status is recorded as
    error ``FailedStatus`` with the status line as message, any other as a success
    whose event's message is the status line (``200 OK``).  ``status_counts`` counts
    responses per name and status.

    A failing request is logged in one line (logger ``callmetrics.http``, at
    ``failure_log_level``, INFO by default), never with a traceback.  A request whose
    client went away (the server stopped sending its body part way) is a success
    noted ``200 OK; client disconnected``, or with ``disconnect_is_failure=True`` a
    failure of error type ``ClientDisconnected``.
    """

    def __init__(self, app: WSGIApp, analytics: Recorder, *, event_type: str = "http",
                 route: RouteOf | None = None, failure: FailureRule = default_failure,
                 failure_log_level: int = logging.INFO,
                 disconnect_is_failure: bool = False) -> None:
        """Wrap ``app``, recording into ``analytics``.

        Raises:
            TypeError: when ``analytics`` has no ``measure``, ``route``/``failure`` are
                not callable, or ``failure_log_level`` is not a level number.

        """
        check_arguments(analytics, event_type, route, failure, route_of="WSGI environ")
        self.failure_log_level = check_log_level(failure_log_level)
        self.disconnect_is_failure = bool(disconnect_is_failure)
        self.app = app
        self.analytics = analytics
        self.event_type = event_type
        self.failure = failure
        self._route = route if route is not None else _detect(app)
        self._log = RequestLog()

    @property
    def status_counts(self) -> dict[tuple[str, int], int]:
        """Exact responses per ``(request name, status code)`` (0: no response started)."""
        return self._log.status_counts

    def _name(self, environ: Environ) -> str:
        template = None
        if self._route is not None:
            try:
                template = self._route(environ)
            except Exception:  # noqa: BLE001  # an unroutable request is still counted
                template = None
        return request_name(str(environ.get("REQUEST_METHOD", "")), template)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request."""
        name = self._name(environ)
        status = 0
        length: int | None = None  # the response's Content-Length, if any

        def start(status_line: str, headers: list[tuple[str, str]],
                  exc_info: Any = None) -> Any:
            nonlocal status, length
            try:
                status = int(status_line.split(None, 1)[0])
            except (ValueError, IndexError):
                status = 0
            length = _content_length(headers)
            return start_response(status_line, headers, exc_info)

        measure = self.analytics.measure(name, event_type=self.event_type)
        measure.__enter__()

        def finish(exc: BaseException | None, disconnected: bool) -> None:
            self._log.add(name, status)
            if exc is None:
                try:
                    fail_on(status, self.failure, measure)
                except FailedStatus as failed:
                    exc = failed
                else:
                    if disconnected and self.disconnect_is_failure:
                        exc = ClientDisconnected(disconnected_note(status))
                    elif disconnected:
                        measure.message = disconnected_note(status)
            end_request(measure, name, exc, self.failure_log_level)

        try:
            body = self.app(environ, start)
        except BaseException as exc:
            finish(exc, False)
            raise
        if environ.get("REQUEST_METHOD") == "HEAD":  # no body to send: never cut short
            return _Body(body, finish, lambda: 0)
        return _Body(body, finish, lambda: length)


def _content_length(headers: object) -> int | None:
    """The ``Content-Length`` of a response's headers (None: absent or unreadable)."""
    try:
        for key, value in headers:  # type: ignore[attr-defined]  # a list of pairs, per PEP 3333
            if str(key).lower() == "content-length":
                return int(value)
    except (TypeError, ValueError):
        return None
    return None
