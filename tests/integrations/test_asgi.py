"""The ASGI middleware under a real uvicorn on 127.0.0.1, driven by httpx concurrently."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from callmetrics import Analytics
from callmetrics.integrations import request_name, status_line
from callmetrics.integrations.asgi import CallmetricsMiddleware, Message, Receive, Scope, Send
from conftest import missing_module

try:
    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Mount, Route

    from web_helpers import (
        assert_one_run_per_worker,
        printed_as_commented,
        readme_example,
        workers_serving,
    )
except ImportError as exc:
    missing_module(exc, "the ASGI tests serve a Starlette app with uvicorn")


async def user(request: Request) -> Response:
    uid = request.path_params["id"]
    return PlainTextResponse(f"user {uid}", status_code=200 if uid < 50 else 404)


async def boom(request: Request) -> Response:
    raise RuntimeError("endpoint failed")


async def unavailable(request: Request) -> Response:
    return PlainTextResponse("down", status_code=503)


async def item(request: Request) -> Response:
    return PlainTextResponse(request.path_params["name"])


def make_app(analytics: Analytics) -> Starlette:
    app = Starlette(routes=[
        Route("/users/{id:int}", user, methods=["GET", "POST"]),
        Route("/boom", boom),
        Route("/unavailable", unavailable),
        Mount("/api", routes=[Route("/items/{name}", item)]),
    ])
    app.add_middleware(CallmetricsMiddleware, analytics=analytics)
    return app


@pytest.fixture
def served() -> Iterator[tuple[str, Analytics, CallmetricsMiddleware]]:
    """A Starlette app with the middleware, under uvicorn in a thread; yields its URL."""
    analytics = Analytics()
    app = make_app(analytics)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(600):  # bounded wait for start-up: at most a minute
        if server.started:
            started.set()
            break
        started.wait(0.1)
    assert server.started, "uvicorn did not start"
    # The middleware instance Starlette built: reach it through the app's stack.
    asyncio.run(_touch(f"http://127.0.0.1:{port}"))
    stack = app.middleware_stack
    while stack is not None and not isinstance(stack, CallmetricsMiddleware):
        stack = getattr(stack, "app", None)
    assert isinstance(stack, CallmetricsMiddleware)
    yield f"http://127.0.0.1:{port}", analytics, stack
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


async def _touch(url: str) -> None:
    async with httpx.AsyncClient() as client:
        await client.get(url + "/users/0")


async def _send(url: str, requests: list[tuple[str, str]]) -> Counter[int]:
    # No keep-alive: uvicorn closes a connection whose app raised (after the 500 is
    # sent), and a request the client sent on it meanwhile would fail to be read.
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(*(client.request(m, p) for m, p in requests))
    return Counter(r.status_code for r in responses)


def test_each_request_is_one_call_named_by_its_route(
        served: tuple[str, Analytics, CallmetricsMiddleware]) -> None:
    url, analytics, middleware = served
    requests = (
        [("GET", f"/users/{i}") for i in range(60)]  # 50 x 200, 10 x 404
        + [("POST", "/users/7")] * 5
        + [("GET", "/boom")] * 4
        + [("GET", "/unavailable")] * 6
        + [("GET", f"/api/items/n{i}") for i in range(7)]
        + [("GET", f"/nowhere/{i}") for i in range(9)]  # raw paths must not become names
        + [("DELETE", "/users/3")] * 2  # a wrong method: 405, named by the route
    )
    statuses = asyncio.run(_send(url, requests))
    assert statuses == {200: 50 + 5 + 7, 404: 10 + 9, 500: 4, 503: 6, 405: 2}
    counts = analytics.call_counts
    successes = analytics.success_counts
    assert counts == {
        "GET /users/{id}": 61,  # with the start-up request
        "POST /users/{id}": 5,
        "GET /boom": 4,
        "GET /unavailable": 6,
        "GET /api/items/{name}": 7,
        "GET <unmatched>": 9,
        "DELETE /users/{id}": 2,
    }
    assert successes["GET /boom"] == 0  # the exception
    assert successes["GET /unavailable"] == 0  # a 5xx
    assert successes["GET /users/{id}"] == 61  # a 404 is not a failure by default
    by_status = middleware.status_counts
    assert by_status[("GET /users/{id}", 200)] == 51
    assert by_status[("GET /users/{id}", 404)] == 10
    assert by_status[("GET /unavailable", 503)] == 6
    assert by_status[("GET /boom", 0)] == 4  # raised before any response started
    assert by_status[("DELETE /users/{id}", 405)] == 2
    calls = analytics.retained()
    errors = Counter((call.name, call.error) for call in calls if call.error)
    assert errors == {("GET /boom", "RuntimeError"): 4, ("GET /unavailable", "FailedStatus"): 6}
    assert {call.event_type for call in calls} == {"http"}
    # Every request that got a response carries its status line, successes included.
    assert len(calls) == sum(counts.values())
    answered = Counter((call.name, call.message) for call in calls if call.error != "RuntimeError")
    assert answered == {(name, status_line(status)): n for (name, status), n in by_status.items()
                        if status}
    assert Counter(call.message for call in calls if call.error is None) == {
        "200 OK": 51 + 5 + 7, "404 Not Found": 10 + 9, "405 Method Not Allowed": 2}
    assert {call.message for call in calls if call.error == "RuntimeError"} == {"endpoint failed"}


def test_failure_rule_is_configurable() -> None:
    analytics = Analytics()
    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        seen.append(0)

    async def receive() -> Message:
        return {"type": "http.request"}

    middleware = CallmetricsMiddleware(app, analytics, failure=lambda status: status >= 400,
                                       route=lambda _: "/thing")
    asyncio.run(middleware({"type": "http", "method": "GET", "path": "/thing/1"}, receive,
                           send))
    assert analytics.call_counts == {"GET /thing": 1}
    assert analytics.success_counts == {"GET /thing": 0}
    assert [(e.error, e.message) for e in analytics.events] == [("FailedStatus", "404 Not Found")]


def test_an_app_that_never_answers_leaves_a_success_without_status() -> None:
    analytics = Analytics()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        return None

    middleware = CallmetricsMiddleware(app, analytics, route=lambda _: "/quiet")
    asyncio.run(middleware({"type": "http", "method": "GET", "path": "/quiet"}, receive, send))
    assert [(e.success, e.message) for e in analytics.events] == [(True, None)]
    assert middleware.status_counts == {("GET /quiet", 0): 1}


def test_names_stay_bounded() -> None:
    assert request_name("get", None) == "GET <unmatched>"
    assert request_name("BREW", "/pot") == "OTHER /pot"


@pytest.mark.parametrize("kwargs", [{"route": 3}, {"failure": None}, {"event_type": ""}])
def test_bad_arguments_fail_at_once(kwargs: dict[str, object]) -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        return None

    with pytest.raises(TypeError, match=next(iter(kwargs))):
        CallmetricsMiddleware(app, Analytics(), **kwargs)  # type: ignore[arg-type]


def test_websocket_and_lifespan_traffic_passes_through_untouched() -> None:
    analytics = Analytics()
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {}

    async def send(message: Message) -> None:
        return None

    middleware = CallmetricsMiddleware(app, analytics)
    for kind in ("lifespan", "websocket"):
        asyncio.run(middleware({"type": kind, "path": "/ws"}, receive, send))
    assert seen == ["lifespan", "websocket"]
    assert analytics.call_counts == {}


def test_the_readme_uvicorn_app_writes_one_store_read_back_exactly(tmp_path: Path) -> None:
    """``uvicorn --workers 2 main:app``: 300 concurrent requests, all in the store."""
    source = readme_example("# main.py")
    assert "uvicorn --workers 2 main:app" in source
    (tmp_path / "main.py").write_text(source)
    command = [sys.executable, "-m", "uvicorn", "--workers", "2", "--host", "127.0.0.1",
               "--port", "0", "main:app"]

    async def send_all(url: str) -> list[str]:
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            responses = await asyncio.gather(*(client.get(f"/users/{i}") for i in range(300)))
        return [r.text for r in responses]

    with workers_serving(command, tmp_path, r"Started server process \[(\d+)\]", 2) as server:
        bodies = asyncio.run(send_all(server.url))
    assert server.process.returncode == 0
    assert bodies == [f"user {i}" for i in range(300)]
    assert_one_run_per_worker(tmp_path / "callmetrics.sqlite", server, "GET /users/{uid}", 300)


def test_the_readme_starlette_example_prints_what_it_says() -> None:
    printed, promised = printed_as_commented(readme_example("# Starlette", "## Web applications"))
    assert printed == promised
    assert len(promised) == 1
