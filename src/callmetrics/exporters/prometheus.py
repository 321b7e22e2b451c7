"""Prometheus export: a custom collector, the ``/metrics`` endpoint and Pushgateway pushes.

``CallmetricsCollector(source)`` exposes an ``Analytics`` instance, or a SQLite store
written by any number of processes.  In the default naming (``naming="callmetrics"``):

- ``callmetrics_calls_total`` and ``callmetrics_failures_total``: counters, exact;
  failures by exception type (``error_type``, the qualified type name), adding up
  to the function's failures;
- ``callmetrics_call_duration_seconds``: a histogram with exact ``_sum`` and
  ``_count``; its classic buckets come from each function's duration sketch, over
  bounds derived from the data by default (:mod:`callmetrics.exporters.buckets`); a
  scraper asking for the protobuf exposition also gets it as a native histogram
  built from the sketch (schema 6, within ~1.5 %: :mod:`callmetrics.exporters.native`);
  in OpenMetrics its buckets carry exemplars when calls are traced;
- ``callmetrics_self_seconds_total``: self time, where recorded;
- ``callmetrics_decorator_overhead_seconds_total``: seconds the decorator added;
- ``callmetrics_functions_overflowed``: 1 once the source reached ``max_functions``
  distinct names, after which new names are counted together in the series
  ``function="<other functions>"`` (``event_type="mixed"``); 0 otherwise;
- ``callmetrics_calls_in_progress``: a gauge of the calls started and not yet ended,
  from a live instance made with ``track_concurrency=True`` (a store has none);
- ``callmetrics_build_info`` (``version``, ``hot_path``) and ``callmetrics_source_up``:
  1 when the source was read, 0 when reading it failed.

Function series carry ``function``, ``module`` and ``event_type``.  With
``naming="autometrics"`` the names and labels are autometrics v1.0.0's instead (see
:mod:`callmetrics.exporters.model`).  The collector reads aggregates when Prometheus
scrapes; tracked calls pay nothing for it.

For a server with several worker processes, let every worker write one store
(``Analytics(store=PATH)``) and serve that store from one process
(``callmetrics serve-metrics PATH --port N``): each worker's calls are counted once.

Counters only grow, with two exceptions an operator sees as counter resets: an
instance emptied by ``merge_with`` (its series restart from zero, as after a process
restart), and store runs deleted by ``callmetrics prune``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

try:
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import default_handler
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Exemplar as ClientExemplar
    from prometheus_client.utils import floatToGoString
except ImportError as exc:
    raise ImportError(
        "callmetrics.exporters.prometheus needs prometheus-client: "
        "pip install 'callmetrics[prometheus]' (from a checkout: pip install '.[prometheus]')"
    ) from exc

from callmetrics._analytics import Analytics
from callmetrics._engine.logs import report_internal_error
from callmetrics._load import read_view
from callmetrics.exporters.buckets import DEFAULT_BUCKETS, check_buckets
from callmetrics.exporters.exemplars import store_for
from callmetrics.exporters.model import (
    Family,
    Histogram,
    Naming,
    check_naming,
    families,
    service_name,
)
from callmetrics.exporters.push import push_families
from callmetrics.exporters.server import MetricsServer, start
from callmetrics.exporters.wsgi import metrics_app as _metrics_app

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from callmetrics._engine.state import FunctionSnapshot

__all__ = [
    "DEFAULT_BUCKETS",
    "CallmetricsCollector",
    "MetricsServer",
    "Source",
    "metrics_app",
    "push_metrics",
    "serve_metrics",
]

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


def _up(value: int) -> Family:
    return Family("callmetrics_source_up", "gauge",
                  "1 when the callmetrics source was read, 0 when it failed.", [((), value)])


class CallmetricsCollector:
    """A prometheus_client custom collector exposing a callmetrics source.

    Register it with a ``CollectorRegistry`` (or the default ``REGISTRY``); every
    scrape reads the source's aggregates afresh.
    """

    def __init__(self, source: Source, *, buckets: Iterable[float] | None = None,
                 naming: Naming = "callmetrics", service: str | None = None) -> None:
        """Expose ``source``.

        Args:
            source: an ``Analytics`` instance, or the path of a store (read through
                its aggregates on each scrape, so every process that wrote to
                it is counted once).
            buckets: upper bounds in seconds of the classic buckets, strictly
                increasing (``+Inf`` is added); None (the default) derives them
                from the data, ten per decade over the range the calls span.
            naming: ``"callmetrics"`` or ``"autometrics"`` (v1.0.0 names and labels).
            service: autometrics' ``service_name``; by default from
                ``AUTOMETRICS_SERVICE_NAME``, ``OTEL_SERVICE_NAME``, else the store's
                or program's name.

        Raises:
            TypeError, ValueError: for a bad argument, naming it.

        """
        self._source = _check_source(source)
        self.buckets = check_buckets(buckets)
        self.naming = check_naming(naming)
        if service is not None and not isinstance(service, str):
            raise TypeError(f"service must be a str, got {type(service).__name__}")
        self.service = service_name(service, self._source)

    @property
    def source(self) -> Analytics | Path:
        """The instance, or the store's path, this collector reads."""
        return self._source

    def families(self) -> list[Family]:
        """Read the source and return its metric families, format-neutral.

        A source that cannot be read (a missing or broken store) is logged once and
        reported as ``callmetrics_source_up 0``, so one bad store never breaks the
        rest of a scrape.
        """
        try:
            snapshots = _read(self._source)
        except Exception as exc:  # noqa: BLE001  # surfaced as callmetrics_source_up 0
            report_internal_error(f"reading {self._source} for Prometheus", exc)
            return [_up(0)]
        live = self._source if isinstance(self._source, Analytics) else None
        store = store_for(live) if live is not None else None
        found = families(snapshots, naming=self.naming, buckets=self.buckets,
                         service=self.service,
                         exemplars=store.read() if store is not None else None,
                         in_progress=live.calls_in_progress() if live is not None else None)
        return [*found, _up(1)]

    def describe(self) -> list[Metric]:
        """Return nothing: registering must not read the source."""
        return []

    def collect(self) -> list[Metric]:
        """Read the source and return prometheus_client metric families."""
        return [_to_client(family) for family in self.families() if family.series]


def _to_client(family: Family) -> Metric:
    base = family.name.removesuffix("_total") if family.kind == "counter" else family.name
    metric = Metric(base, family.help, family.kind)
    for labels, value in family.series:
        named = dict(labels)
        if not isinstance(value, Histogram):
            metric.add_sample(family.name, named, float(value))
            continue
        exemplars = value.exemplars
        bounds = [*(_go_float(b) for b in value.bounds), "+Inf"]
        counts = [*value.cumulative, value.count]
        for i, (le, count) in enumerate(zip(bounds, counts, strict=True)):
            exemplar = exemplars[i] if exemplars else None
            metric.add_sample(
                f"{base}_bucket", {**named, "le": le}, count,
                exemplar=None if exemplar is None else ClientExemplar(
                    {"trace_id": exemplar.trace_id, "span_id": exemplar.span_id},
                    exemplar.value, exemplar.timestamp))
        metric.add_sample(f"{base}_count", named, value.count)
        metric.add_sample(f"{base}_sum", named, value.total)
    return metric


def _registry(collector: CallmetricsCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def metrics_app(source: Source, *, buckets: Iterable[float] | None = None,
                naming: Naming = "callmetrics", service: str | None = None,
                ) -> WSGIApplication:
    """Return a WSGI app answering ``/metrics`` in the format the scraper asks for.

    The protobuf exposition (native histograms, classic buckets alongside) when the
    ``Accept`` header asks for it, as Prometheus does with
    ``--enable-feature=native-histograms``; OpenMetrics (with exemplars) when asked;
    the text format otherwise.  ``/`` links to ``/metrics``; other paths are 404.
    Arguments as for :class:`CallmetricsCollector`.
    """
    collector = CallmetricsCollector(source, buckets=buckets, naming=naming, service=service)
    return _metrics_app(collector.families, _registry(collector))


def serve_metrics(source: Source, port: int, addr: str = "127.0.0.1", *,
                  buckets: Iterable[float] | None = None, naming: Naming = "callmetrics",
                  service: str | None = None) -> MetricsServer:
    """Serve ``source`` on the standard ``/metrics`` endpoint, in a background thread.

    Only ``/metrics`` answers with the metrics; ``/`` links to it and every other path
    is 404, so a scanner probing paths learns nothing more.

    Args:
        source: an ``Analytics`` instance or a store path.
        port: the TCP port (0 picks a free one; see ``MetricsServer.port``).
        addr: the address to listen on; the loopback by default, ``"0.0.0.0"`` to
            let a Prometheus on another machine scrape it.
        buckets: classic bucket bounds (see :class:`CallmetricsCollector`).
        naming: ``"callmetrics"`` or ``"autometrics"``.
        service: autometrics' ``service_name``.

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
    collector = CallmetricsCollector(source, buckets=buckets, naming=naming, service=service)
    registry = _registry(collector)
    server, thread = start(_metrics_app(collector.families, registry), addr, port)
    return MetricsServer(server, thread, registry)


def push_metrics(source: Source, gateway: str, job: str, *,
                 grouping_key: Mapping[str, str] | None = None,
                 buckets: Iterable[float] | None = None, naming: Naming = "callmetrics",
                 service: str | None = None, native: bool = True,
                 timeout: float | None = 30.0,
                 handler: Callable[..., Callable[[], None]] = default_handler) -> None:
    """Push ``source``'s metrics to a Pushgateway, replacing the group's previous push.

    Meant for batch jobs: push once at the end (or now and then), and let Prometheus
    scrape the gateway.

    Args:
        source: an ``Analytics`` instance or a store path.
        gateway: the gateway's address, ``"host:port"`` or ``"http://host:port"``.
        job: the ``job`` label of the pushed group.
        grouping_key: further labels identifying the group (e.g. ``{"instance": host}``).
        buckets: classic bucket bounds (see :class:`CallmetricsCollector`).
        naming: ``"callmetrics"`` or ``"autometrics"``.
        service: autometrics' ``service_name``.
        native: push the protobuf exposition, native histograms included (the
            Pushgateway takes it since 1.5, and serves native histograms to a
            Prometheus scraping it with them on); False pushes the text format.
        timeout: seconds to wait for the gateway (None: no limit).
        handler: prometheus_client's push handler, e.g. ``basic_auth_handler``.

    Raises:
        OSError: when the gateway cannot be reached or refuses the push.

    """
    for what, value in (("gateway", gateway), ("job", job)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{what} must be a non-empty str, got {value!r}")
    collector = CallmetricsCollector(source, buckets=buckets, naming=naming, service=service)
    push_families(gateway, job, dict(grouping_key) if grouping_key else {},
                  collector.families, _registry(collector), native=native,
                  timeout=timeout, handler=handler)
