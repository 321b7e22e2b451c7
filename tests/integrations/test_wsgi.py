"""The WSGI middleware under real servers on 127.0.0.1: waitress in a thread, gunicorn -w 2."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from callmetrics import Analytics
from callmetrics.integrations import status_line
from callmetrics.integrations.wsgi import CallmetricsMiddleware
from conftest import missing_module

try:
    import flask
    import httpx

    from web_helpers import (
        assert_one_run_per_worker,
        printed_as_commented,
        readme_example,
        recorded,
        send_at_once,
        waitress_serving,
        workers_serving,
    )
except ImportError as exc:
    missing_module(exc, "the WSGI tests serve a Flask app with waitress and gunicorn")


def make_app() -> flask.Flask:
    app = flask.Flask("shop")

    @app.get("/users/<int:uid>")
    def user(uid: int) -> tuple[str, int]:
        return f"user {uid}", 200 if uid < 50 else 404

    @app.post("/orders")
    def order() -> str:
        return "ok"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("endpoint failed")

    @app.get("/unavailable")
    def unavailable() -> tuple[str, int]:
        return "down", 503

    @app.get("/stream")
    def stream() -> flask.Response:
        def chunks() -> Iterator[str]:
            yield "a"
            yield "b"

        return flask.Response(chunks())

    return app


@pytest.fixture
def served() -> Iterator[tuple[str, Analytics, CallmetricsMiddleware]]:
    """The Flask app, its wsgi_app wrapped, under waitress in a thread."""
    analytics = Analytics()
    app = make_app()
    middleware = CallmetricsMiddleware(app.wsgi_app, analytics)
    app.wsgi_app = middleware  # type: ignore[method-assign]  # Flask's documented way
    with waitress_serving(app) as url:
        yield url, analytics, middleware


def test_each_request_is_one_call_named_by_its_flask_rule(
        served: tuple[str, Analytics, CallmetricsMiddleware]) -> None:
    url, analytics, middleware = served
    requests = (
        [("GET", f"/users/{i}") for i in range(60)]
        + [("POST", "/orders")] * 5
        + [("GET", "/boom")] * 4
        + [("GET", "/unavailable")] * 6
        + [("GET", "/stream")] * 3
        + [("GET", f"/nowhere/{i}") for i in range(9)]
        + [("DELETE", "/orders")] * 2
    )
    statuses = send_at_once(url, requests)
    recorded(analytics, len(requests))
    assert statuses == {200: 50 + 5 + 3, 404: 10 + 9, 500: 4, 503: 6, 405: 2}
    assert analytics.call_counts == {
        "GET /users/{uid}": 60,
        "POST /orders": 5,
        "GET /boom": 4,
        "GET /unavailable": 6,
        "GET /stream": 3,
        "GET <unmatched>": 9,
        "DELETE /orders": 2,  # a wrong method (405) is named by its path's rule
    }
    successes = analytics.success_counts
    assert successes["GET /unavailable"] == 0
    assert successes["GET /boom"] == 0  # Flask answered 500 for the exception
    assert successes["GET /users/{uid}"] == 60
    assert middleware.status_counts == {
        ("GET /users/{uid}", 200): 50,
        ("GET /users/{uid}", 404): 10,
        ("POST /orders", 200): 5,
        ("GET /boom", 500): 4,  # Flask answered 500 for the exception
        ("GET /unavailable", 503): 6,
        ("GET /stream", 200): 3,
        ("GET <unmatched>", 404): 9,
        ("DELETE /orders", 405): 2,
    }
    calls = analytics.retained()
    failed = Counter((call.name, call.error, call.message) for call in calls if call.error)
    assert failed == {("GET /boom", "FailedStatus", "500 Internal Server Error"): 4,
                      ("GET /unavailable", "FailedStatus", "503 Service Unavailable"): 6}
    assert {call.event_type for call in calls} == {"http"}
    # Every event carries its status line, successes included: the counts agree.
    assert Counter((call.name, call.message) for call in calls) == {
        (name, status_line(status)): n for (name, status), n in middleware.status_counts.items()}
    assert Counter(call.message for call in calls if call.error is None) == {
        "200 OK": 50 + 5 + 3, "404 Not Found": 10 + 9, "405 Method Not Allowed": 2}


def test_the_failure_rule_is_configurable(tmp_path: Path) -> None:
    analytics = Analytics()
    app = make_app()
    app.wsgi_app = CallmetricsMiddleware(  # type: ignore[method-assign]  # Flask's way
        app.wsgi_app, analytics, failure=lambda status: status >= 400)
    with waitress_serving(app) as url:
        statuses = send_at_once(url, [("GET", "/users/7"), ("GET", "/users/70")])
        recorded(analytics, 2)
    assert statuses == {200: 1, 404: 1}
    assert analytics.call_counts == {"GET /users/{uid}": 2}
    assert analytics.success_counts == {"GET /users/{uid}": 1}
    assert Counter((e.error, e.message) for e in analytics.events) == {
        (None, "200 OK"): 1, ("FailedStatus", "404 Not Found"): 1}


def test_an_exception_while_streaming_is_a_failure() -> None:
    analytics = Analytics()

    def app(environ: dict[str, object], start_response: object) -> Iterator[bytes]:
        assert callable(start_response)
        start_response("200 OK", [])
        yield b"first"
        raise ConnectionError("backend went away")

    middleware = CallmetricsMiddleware(app, analytics, route=lambda _: "/feed")
    body = middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/feed"}, lambda *_: None)
    chunks = iter(body)
    assert next(chunks) == b"first"
    with pytest.raises(ConnectionError):
        next(chunks)
    body.close()  # type: ignore[attr-defined]  # the server closes it: recorded once
    assert analytics.call_counts == {"GET /feed": 1}
    assert analytics.success_counts == {"GET /feed": 0}
    # The exception's message, not the status line: the request failed after answering.
    assert [(e.error, e.message) for e in analytics.events] == [
        ("ConnectionError", "backend went away")]


def test_a_body_dropped_unfinished_ends_the_call_once_as_a_success() -> None:
    """A server that stops iterating early (the client left): a success noted as a disconnect."""
    analytics = Analytics()
    closed: list[int] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield from (b"a", b"b", b"c")

        def close(self) -> None:
            closed.append(1)

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> Body:
        start_response("200 OK", [])
        return Body()

    middleware = CallmetricsMiddleware(app, analytics, route=lambda _: "/feed")
    body = middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/feed"}, lambda *_: None)
    chunks = iter(body)
    assert next(chunks) == b"a"
    chunks.close()  # type: ignore[attr-defined]  # the iterator is a generator: dropped
    body.close()  # type: ignore[attr-defined]  # then the server closes the response
    assert closed == [1]
    assert analytics.call_counts == {"GET /feed": 1}
    assert analytics.success_counts == {"GET /feed": 1}
    assert middleware.status_counts == {("GET /feed", 200): 1}
    assert [(e.success, e.message) for e in analytics.events] == [
        (True, "200 OK; client disconnected")]




def test_the_readme_gunicorn_app_writes_one_store_read_back_exactly(tmp_path: Path) -> None:
    """``gunicorn -w 2 app:app``: 300 concurrent requests, all in the store, one run a worker."""
    if importlib.util.find_spec("gunicorn") is None:
        missing_module(ImportError("no gunicorn", name="gunicorn"),
                       "the multi-worker example runs under gunicorn")
    source = readme_example("# app.py")
    assert "gunicorn -w 2 app:app" in source
    (tmp_path / "app.py").write_text(source)
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:0",
               "--log-level", "info", "app:app"]
    with workers_serving(command, tmp_path, r"Booting worker with pid: (\d+)", 2) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client, \
            ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda i: client.get(f"/users/{i}").text, range(300)))
    assert server.process.returncode == 0  # SIGTERM: a graceful stop
    assert bodies == [f"user {i}" for i in range(300)]
    assert_one_run_per_worker(tmp_path / "callmetrics.sqlite", server, "GET /users/{uid}", 300)


def test_the_readme_flask_example_prints_what_it_says() -> None:
    printed, promised = printed_as_commented(readme_example("# Flask", "## Web applications"))
    assert printed == promised
    assert len(promised) == 3
