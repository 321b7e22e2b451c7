"""How requests end in the middlewares: quiet failures and client disconnects (ASGI, WSGI)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from callmetrics import Analytics
from callmetrics.integrations.asgi import CallmetricsMiddleware as AsgiMiddleware
from callmetrics.integrations.asgi import Message, Receive, Scope, Send
from callmetrics.integrations.wsgi import CallmetricsMiddleware as WsgiMiddleware

ENVIRON = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}
SCOPE = {"type": "http", "method": "GET", "path": "/x"}


def _wsgi_failing(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ.get("PATH_INFO") == "/raise":
        raise KeyError("missing")
    start_response("503 Service Unavailable", [])
    return [b"busy"]


def _library_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("callmetrics", "test."))]


def test_wsgi_failures_log_one_line_each_without_a_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    """200 failing responses: 200 lines at INFO, none with a traceback, none at ERROR."""
    analytics = Analytics()
    middleware = WsgiMiddleware(_wsgi_failing, analytics, route=lambda _: "/x")
    with caplog.at_level(logging.DEBUG):
        for _ in range(200):
            body = middleware(dict(ENVIRON), lambda *_: None)
            list(body)
            body.close()  # type: ignore[attr-defined]  # the server closes it
    records = _library_records(caplog)
    assert len(records) == 200
    assert {r.levelno for r in records} == {logging.INFO}
    assert all(r.exc_info is None for r in records)
    assert "GET /x failed (503 Service Unavailable)" in records[0].getMessage()
    assert analytics.get_stats()["total_success"] == 0


def test_wsgi_an_app_exception_logs_one_line_and_propagates(
        caplog: pytest.LogCaptureFixture) -> None:
    """The app's own exception propagates untouched; callmetrics adds one line at the level."""
    analytics = Analytics()
    middleware = WsgiMiddleware(_wsgi_failing, analytics, route=lambda _: "/raise",
                                failure_log_level=logging.WARNING)
    with caplog.at_level(logging.DEBUG), pytest.raises(KeyError, match="missing"):
        middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/raise"}, lambda *_: None)
    (record,) = _library_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "KeyError" in record.getMessage()


def test_asgi_failures_log_one_line_each_without_a_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    """A 503 and a raising app, through ASGI: one line each, no traceback."""
    analytics = Analytics()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/raise":
            raise RuntimeError("broken")
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        return None

    middleware = AsgiMiddleware(app, analytics, route=lambda _: "/x")
    with caplog.at_level(logging.DEBUG):
        asyncio.run(middleware(dict(SCOPE), receive, send))
        with pytest.raises(RuntimeError, match="broken"):
            asyncio.run(middleware({**SCOPE, "path": "/raise"}, receive, send))
    records = _library_records(caplog)
    assert [r.levelno for r in records] == [logging.INFO, logging.INFO]
    assert all(r.exc_info is None for r in records)
    assert analytics.call_counts == {"GET /x": 2}


def test_a_bad_failure_log_level_fails_at_once() -> None:
    with pytest.raises(TypeError, match="failure_log_level"):
        WsgiMiddleware(_wsgi_failing, Analytics(), failure_log_level="loud")  # type: ignore[arg-type]  # on purpose


def _streaming(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [])
    yield from (b"a", b"b", b"c")


@pytest.mark.parametrize("as_failure", [False, True], ids=["noted", "failure"])
def test_wsgi_a_client_gone_mid_body_is_recorded_as_a_disconnect(as_failure: bool) -> None:
    """The server closes the body part way (its write failed): noted, or a failure if asked."""
    analytics = Analytics()
    middleware = WsgiMiddleware(_streaming, analytics, route=lambda _: "/x",
                                disconnect_is_failure=as_failure)
    body = middleware(dict(ENVIRON), lambda *_: None)
    chunks = iter(body)
    next(chunks)
    body.close()  # type: ignore[attr-defined]  # what a server does on a broken pipe
    (event,) = analytics.events
    if as_failure:
        assert (event.success, event.error, event.message) == (
            False, "ClientDisconnected", "200 OK; client disconnected")
    else:
        assert (event.success, event.message) == (True, "200 OK; client disconnected")
    # A body sent to its end is no disconnect.
    analytics.reset()
    body = middleware(dict(ENVIRON), lambda *_: None)
    assert list(body) == [b"a", b"b", b"c"]
    body.close()  # type: ignore[attr-defined]  # the server closes it
    assert [(e.success, e.message) for e in analytics.events] == [(True, "200 OK")]


@pytest.mark.parametrize("as_failure", [False, True], ids=["noted", "failure"])
def test_asgi_a_client_gone_before_the_end_is_recorded_as_a_disconnect(as_failure: bool) -> None:
    """The app receives http.disconnect before its response is complete."""
    analytics = Analytics()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        if (await receive())["type"] == "http.disconnect":
            return  # a streaming response stops when the client has left
        await send({"type": "http.response.body", "body": b"b"})

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        return None

    middleware = AsgiMiddleware(app, analytics, route=lambda _: "/x",
                                disconnect_is_failure=as_failure)
    asyncio.run(middleware(dict(SCOPE), receive, send))
    (event,) = analytics.events
    if as_failure:
        assert (event.success, event.error, event.message) == (
            False, "ClientDisconnected", "200 OK; client disconnected")
    else:
        assert (event.success, event.message) == (True, "200 OK; client disconnected")


def test_asgi_a_failed_send_is_a_disconnect_and_propagates() -> None:
    """Sending to a client that left raises in the app (it propagates): recorded as such."""
    analytics = Analytics()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.body", "body": b"a"})
        except OSError:
            return  # the app gives up quietly

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise BrokenPipeError("client went away")

    middleware = AsgiMiddleware(app, analytics, route=lambda _: "/x")
    asyncio.run(middleware(dict(SCOPE), receive, send))
    assert [(e.success, e.message) for e in analytics.events] == [
        (True, "200 OK; client disconnected")]
