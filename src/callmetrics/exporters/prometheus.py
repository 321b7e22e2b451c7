"""Prometheus export: a custom collector, the ``/metrics`` endpoint and Pushgateway pushes.

``CallmetricsCollector(source)`` exposes an ``Analytics`` instance, or a SQLite store
written by any number of processes, as:

- ``callmetrics_calls_total`` and ``callmetrics_failures_total``: counters, exact;
- ``callmetrics_call_duration_seconds``: a histogram whose cumulative bucket counts
  come from each function's duration sketch (to its 1% precision), with exact
  ``_sum`` and ``_count``;
- ``callmetrics_decorator_overhead_seconds_total``: seconds the decorator added;
- ``callmetrics_functions_overflowed``: 1 once the source reached ``max_functions``
  distinct names, after which new names are counted together in the series
  ``function="<other functions>"`` (``event_type="mixed"``); 0 otherwise;
- ``callmetrics_source_up``: 1 when the source was read, 0 when reading it failed.

Every series but the last two carries the labels ``function`` and ``event_type``.  The
collector reads aggregates when Prometheus scrapes; tracked calls pay nothing for it.

For a server with several worker processes, let every worker write one store
(``Analytics(store=PATH)``) and serve that store from one process
(``callmetrics serve-metrics PATH --port N``): each worker's calls are counted once,
without prometheus_client's multiprocess directory.

Counters only grow, with two exceptions an operator sees as counter resets: an
instance emptied by ``merge_with`` (its series restart from zero, as after a process
restart), and store runs deleted by ``callmetrics prune`` (the totals drop by
those runs' calls; ``rate()`` over a window spanning the prune then overstates once).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

try:
    from prometheus_client import CollectorRegistry, make_wsgi_app, push_to_gateway
    from prometheus_client.exposition import default_handler
    from prometheus_client.metrics_core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.utils import floatToGoString
except ImportError as exc:
    raise ImportError(
        "callmetrics.exporters.prometheus needs prometheus-client: "
        "pip install 'callmetrics[prometheus]' (from a checkout: pip install '.[prometheus]')"
    ) from exc

from callmetrics._analytics import Analytics
from callmetrics._engine.logs import report_internal_error
from callmetrics._engine.recorder import OVERFLOW_NAME
from callmetrics._load import read_view
from callmetrics.exporters import DEFAULT_BUCKETS, _check_buckets, _cumulative_counts

if TYPE_CHECKING:
    from collections.abc import Iterator
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from callmetrics._engine.state import FunctionSnapshot

__all__ = [
    "DEFAULT_BUCKETS",
    "CallmetricsCollector",
    "MetricsServer",
    "Source",
    "push_metrics",
    "serve_metrics",
]

LABELS = ("function", "event_type")

# The library's own float formatting for ``le`` (untyped upstream, hence the annotation).
_go_float: Callable[[float], str] = floatToGoString

# What can be exported: a live instance, or the path of a store to read on each scrape.
Source = Analytics | str | os.PathLike[str]


def _check_source(source: object) -> Analytics | Path:
    if isinstance(source, Analytics):
        return source
    if isinstance(source, str | os.PathLike):
        if not str(os.fspath(source)).strip():
            raise ValueError("source must not be an empty path")
        return Path(source)
    raise TypeError(f"source must be an Analytics instance or a store path, "
                    f"got {type(source).__name__}")


def _read(source: Analytics | Path) -> list[FunctionSnapshot]:
    if isinstance(source, Analytics):
        return source.snapshot()
    # Aggregates only: a scrape must not read every stored event.
    return read_view(source, events=False).snapshot()


class CallmetricsCollector:
    """A prometheus_client custom collector exposing a callmetrics source.

    Register it with a ``CollectorRegistry`` (or the default ``REGISTRY``); every
    scrape reads the source's aggregates afresh.
    """

    def __init__(self, source: Source, *, buckets: Iterable[float] | None = None) -> None:
        """Expose ``source``.

        Args:
            source: an ``Analytics`` instance, or the path of a store (read through
                its aggregates on each scrape, so every process that wrote to
                it is counted once).
            buckets: upper bounds in seconds of the duration histogram's buckets,
                strictly increasing; ``+Inf`` is added.  Defaults to
                :data:`DEFAULT_BUCKETS`.

        Raises:
            TypeError, ValueError: for a bad ``source`` or ``buckets``, naming it.

        """
        self._source = _check_source(source)
        self.buckets = _check_buckets(buckets)
        self._le = [_go_float(b) for b in self.buckets]

    @property
    def source(self) -> Analytics | Path:
        """The instance, or the store's path, this collector reads."""
        return self._source

    def describe(self) -> list[Metric]:
        """Return the metric families without samples (so registering reads nothing)."""
        return list(self._families())

    def collect(self) -> list[Metric]:
        """Read the source and return its metric families.

        A source that cannot be read (a missing or broken store) is logged once and
        reported as ``callmetrics_source_up 0``, so one bad store never breaks the
        rest of a registry's scrape.
        """
        calls, failures, duration, overhead, overflowed, up = self._families()
        try:
            snapshots = _read(self._source)
        except Exception as exc:  # noqa: BLE001  # surfaced as callmetrics_source_up 0
            report_internal_error(f"reading {self._source} for Prometheus", exc)
            up.add_metric([], 0)
            return [up]
        for snap in snapshots:
            labels = [snap.name, snap.event_type]
            calls.add_metric(labels, snap.calls)
            failures.add_metric(labels, snap.failures)
            overhead.add_metric(labels, snap.overhead)
            duration.add_metric(labels, self._histogram(snap), sum_value=snap.total)
        # The cap's overflow entry is one more series above; this says it exists.
        overflowed.add_metric([], int(any(snap.name == OVERFLOW_NAME for snap in snapshots)))
        up.add_metric([], 1)
        return [calls, failures, duration, overhead, overflowed, up]

    def _histogram(self, snap: FunctionSnapshot) -> list[tuple[str, float]]:
        # Cumulative counts; +Inf (hence _count) is the exact call count.
        counts = _cumulative_counts(snap.sketch, self.buckets, snap.calls)
        return [*zip(self._le, counts, strict=True), ("+Inf", snap.calls)]

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, HistogramMetricFamily,
                             CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily("callmetrics_calls_total",
                                "Calls of each tracked function, exact.", labels=LABELS),
            CounterMetricFamily("callmetrics_failures_total",
                                "Calls that raised, exact.", labels=LABELS),
            HistogramMetricFamily(
                "callmetrics_call_duration_seconds",
                "Call durations; bucket counts from the sketch (1% precision), "
                "sum and count exact.", labels=LABELS),
            CounterMetricFamily("callmetrics_decorator_overhead_seconds_total",
                                "Seconds the callmetrics decorator added to the calls.",
                                labels=LABELS),
            GaugeMetricFamily("callmetrics_functions_overflowed",
                              f"1 once max_functions distinct names were reached: new names "
                              f"are then counted together as function=\"{OVERFLOW_NAME}\"."),
            GaugeMetricFamily("callmetrics_source_up",
                              "1 when the callmetrics source was read, 0 when it failed."),
        )


def _registry(source: Source, buckets: Iterable[float] | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(CallmetricsCollector(source, buckets=buckets))
    return registry


_INDEX = (b'<!doctype html><meta charset="utf-8"><title>callmetrics</title>'
          b'<p>callmetrics: the metrics are at <a href="/metrics">/metrics</a>.</p>\n')
_NOT_FOUND = b"Not found: callmetrics serves its metrics at /metrics only.\n"


def _routed(registry: CollectorRegistry) -> WSGIApplication:
    """Answer ``/metrics`` with the registry, ``/`` with a link to it, anything else 404."""
    metrics = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            yield from metrics(environ, start_response)
            return
        found = path == "/"
        body = _INDEX if found else _NOT_FOUND
        kind = "text/html" if found else "text/plain"
        start_response("200 OK" if found else "404 Not Found",
                       [("Content-Type", f"{kind}; charset=utf-8"),
                        ("Content-Length", str(len(body)))])
        yield body

    return app


class _QuietHandler(WSGIRequestHandler):
    """Serves requests without printing a line for each on stderr."""

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        """Say nothing: a scrape every few seconds must not fill the terminal."""


def _start(registry: CollectorRegistry, addr: str, port: int) -> tuple[WSGIServer,
                                                                        threading.Thread]:
    family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM,
                                flags=socket.AI_PASSIVE)[0][0]

    class Server(ThreadingMixIn, WSGIServer):
        """One thread per request (a slow scrape never blocks the next), IPv4 or IPv6."""

        daemon_threads = True
        address_family = family

    server = make_server(addr, port, _routed(registry), Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="callmetrics-metrics",
                              daemon=True)
    thread.start()
    return server, thread


class MetricsServer:
    """A running ``/metrics`` endpoint; ``close()`` (or leaving ``with``) stops it.

    It answers ``/metrics`` only (``/`` links to it; any other path is 404).
    """

    def __init__(self, server: WSGIServer, thread: threading.Thread,
                 registry: CollectorRegistry) -> None:
        """Wrap the running server, its thread and the registry it serves."""
        self._server = server
        self._thread = thread
        self.registry = registry

    @property
    def addr(self) -> str:
        """The address the endpoint listens on."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port the endpoint listens on (the real one when 0 was asked for)."""
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """The endpoint's ``http://addr:port/metrics`` address."""
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        """Return self; leaving the block stops the server."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.close()

    def __repr__(self) -> str:
        """Show where it serves."""
        return f"MetricsServer({self.url})"


def serve_metrics(source: Source, port: int, addr: str = "127.0.0.1", *,
                  buckets: Iterable[float] | None = None) -> MetricsServer:
    """Serve ``source`` on the standard ``/metrics`` endpoint, in a background thread.

    Only ``/metrics`` answers with the metrics; ``/`` links to it and every other path
    is 404, so a scanner probing paths learns nothing more.

    Args:
        source: an ``Analytics`` instance or a store path.
        port: the TCP port (0 picks a free one; see ``MetricsServer.port``).
        addr: the address to listen on; the loopback by default, ``"0.0.0.0"`` to
            let a Prometheus on another machine scrape it.
        buckets: the duration histogram's bucket bounds (see ``CallmetricsCollector``).

    Returns:
        The running server; call ``close()`` to stop it.

    """
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, got {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port}")
    if not isinstance(addr, str):
        raise TypeError(f"addr must be a str, got {type(addr).__name__}")
    if not addr.strip():
        raise ValueError("addr must not be empty")
    registry = _registry(source, buckets)
    server, thread = _start(registry, addr, port)
    return MetricsServer(server, thread, registry)


def push_metrics(source: Source, gateway: str, job: str, *,
                 grouping_key: Mapping[str, str] | None = None,
                 buckets: Iterable[float] | None = None, timeout: float | None = 30.0,
                 handler: Callable[..., Callable[[], None]] = default_handler) -> None:
    """Push ``source``'s metrics to a Pushgateway, replacing the group's previous push.

    Meant for batch jobs: push once at the end (or now and then), and let Prometheus
    scrape the gateway.

    Args:
        source: an ``Analytics`` instance or a store path.
        gateway: the gateway's address, ``"host:port"`` or ``"http://host:port"``.
        job: the ``job`` label of the pushed group.
        grouping_key: further labels identifying the group (e.g. ``{"instance": host}``).
        buckets: the duration histogram's bucket bounds (see ``CallmetricsCollector``).
        timeout: seconds to wait for the gateway (None: no limit).
        handler: prometheus_client's push handler, e.g. ``basic_auth_handler``.

    Raises:
        OSError: when the gateway cannot be reached or refuses the push.

    """
    for what, value in (("gateway", gateway), ("job", job)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{what} must be a non-empty str, got {value!r}")
    push_to_gateway(gateway, job=job, registry=_registry(source, buckets),
                    grouping_key=dict(grouping_key) if grouping_key else None,
                    timeout=timeout, handler=handler)

