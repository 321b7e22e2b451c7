"""Real servers on 127.0.0.1 for the web tests, and requests sent to them at once.

``waitress_serving`` serves a WSGI app in a thread; ``workers_serving`` runs a server
program with several worker processes (gunicorn, uvicorn).  Imported by the web tests
inside their ``try`` (waitress and httpx are test extras).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import waitress

from callmetrics import load
from callmetrics._store.runs import list_runs
from readme_examples import printed_as_commented, readme_example

__all__ = ["Workers", "printed_as_commented", "readme_example", "send_at_once",
           "waitress_serving", "workers_serving"]


@contextmanager
def waitress_serving(app: Callable[..., Any]) -> Iterator[str]:
    """Serve ``app`` with waitress (8 threads) in a thread; yield its base URL."""
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Closed by the server's own loop (a thunk it runs when woken), so that no
        # socket is closed under its select(); the loop ends with its last connection.
        server.trigger.pull_trigger(server.close)
        thread.join(timeout=30)
        server.task_dispatcher.shutdown()


def send_at_once(url: str, requests: list[tuple[str, str]]) -> Counter[int]:
    """Send ``(method, path)`` requests from 8 threads; return how many got each status.

    One connection per request: a server may close a connection whose app raised,
    while the client sends its next request on it.
    """
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=url, timeout=30, limits=limits) as client, \
            ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda r: client.request(*r), requests))
    return Counter(r.status_code for r in responses)


def recorded(analytics: Any, requests: int, timeout: float = 30.0) -> None:
    """Wait until ``analytics`` holds ``requests`` calls (at most ``timeout`` seconds).

    A WSGI server sends the response before it closes the body, and the middleware
    ends the call at that close: a client can hold every response a moment before the
    last call is recorded.
    """
    deadline = time.monotonic() + timeout
    while sum(analytics.call_counts.values()) < requests and time.monotonic() < deadline:
        time.sleep(0.01)


@dataclass
class Workers:
    """A server program running with several workers: its URL, its process, their pids."""

    url: str
    process: subprocess.Popen[str]
    pids: set[int] = field(default_factory=set)
    log: list[str] = field(default_factory=list)


def assert_one_run_per_worker(store: Path, server: Workers, name: str, requests: int) -> None:
    """The store holds every request under ``name``, in one run per worker that served.

    Each request answered ``200 OK``: every stored event carries that status line.
    """
    view = load(store)
    assert view.call_counts == {name: requests}
    assert view.success_counts == {name: requests}
    assert Counter((e.function, e.success, e.message) for e in view.events) == {
        (name, True, "200 OK"): requests}
    runs = [run for run in list_runs(store) if run.calls]
    assert {run.pid for run in runs} <= server.pids  # each worker wrote its own run
    assert len(runs) == len({run.pid for run in runs})
    assert sum(run.calls for run in runs) == requests


@contextmanager
def workers_serving(command: list[str], cwd: Path, worker_started: str,
                    workers: int) -> Iterator[Workers]:
    """Run ``command`` (a server on 127.0.0.1 port 0) in ``cwd``; yield once it is ready.

    Ready means its log (stderr) named the port and ``workers`` lines matched
    ``worker_started``, whose group is a worker's pid.  On leaving, the server gets
    SIGTERM (a graceful stop) and is waited for; ``process.returncode`` is then set.
    """
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH")]))}
    env.pop("CALLMETRICS_RUN_LABEL", None)
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    stream = process.stderr
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:  # all along, so that the server never blocks on a full pipe
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    server = Workers("", process)
    deadline = time.monotonic() + 60
    try:
        while not server.url or len(server.pids) < workers:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError("the server was not ready within a minute: "
                                     + "".join(server.log)) from None
            assert line is not None, "the server stopped: " + "".join(server.log)
            server.log.append(line)
            port = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if port:
                server.url = f"http://127.0.0.1:{port[1]}"
            started = re.search(worker_started, line)
            if started:
                server.pids.add(int(started[1]))
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
