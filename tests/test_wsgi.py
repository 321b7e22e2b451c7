"""The WSGI middleware under real servers on 127.0.0.1: waitress in a thread, gunicorn -w 2."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import flask
import httpx
import pytest
import waitress

from callmetrics import Analytics, load
from callmetrics._load import list_runs
from callmetrics.integrations.wsgi import CallmetricsMiddleware


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
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}", analytics, middleware
    server.close()
    thread.join(timeout=30)


def _send(url: str, requests: list[tuple[str, str]]) -> Counter[int]:
    with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda r: client.request(*r), requests))
    return Counter(r.status_code for r in responses)


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
    statuses = _send(url, requests)
    assert statuses == {200: 50 + 5 + 3, 404: 10 + 9, 500: 4, 503: 6, 405: 2}
    assert analytics.call_counts == {
        "GET /users/{uid}": 60,
        "POST /orders": 5,
        "GET /boom": 4,
        "GET /unavailable": 6,
        "GET /stream": 3,
        "GET <unmatched>": 9,
        "DELETE <unmatched>": 2,  # werkzeug names no rule for a wrong method
    }
    successes = analytics.success_counts
    assert successes["GET /unavailable"] == 0
    assert successes["GET /boom"] == 0  # Flask answered 500 for the exception
    assert successes["GET /users/{uid}"] == 60
    by_status = middleware.status_counts
    assert by_status[("GET /users/{uid}", 404)] == 10
    assert by_status[("GET /boom", 500)] == 4
    assert by_status[("GET /stream", 200)] == 3
    errors = Counter(call.error for call in analytics.retained() if call.error)
    assert errors == {"FailedStatus": 10}


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


GUNICORN_APP = """
    import os
    import flask
    from callmetrics import Analytics
    from callmetrics.integrations.wsgi import CallmetricsMiddleware

    analytics = Analytics(store=os.environ["STORE"])  # in each worker: one run per worker

    app = flask.Flask(__name__)

    @app.get("/users/<int:uid>")
    def user(uid):
        return f"{uid} from {os.getpid()}"

    app.wsgi_app = CallmetricsMiddleware(app.wsgi_app, analytics)
"""


def test_gunicorn_with_two_workers_writes_one_store_read_back_exactly(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(GUNICORN_APP))
    store = tmp_path / "web.db"
    env = {**os.environ, "STORE": str(store), "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:0",
                             "--log-level", "info", "app:app"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    try:
        port = booted = None
        for line in proc.stderr:  # gunicorn logs the port, then each worker booting
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found[1])
            booted = (booted or 0) + ("Booting worker" in line)
            if port and booted == 2:
                break
        assert port, "gunicorn did not start"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client, \
                ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(lambda i: client.get(f"/users/{i}").text, range(300)))
        pids = {body.split(" from ")[1] for body in bodies}
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful: each worker writes its last calls
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    view = load(store)
    assert view.call_counts == {"GET /users/{uid}": 300}
    writers = {run.pid for run in list_runs(store) if run.calls}
    assert writers == {int(pid) for pid in pids}
    assert len(pids) <= 2
