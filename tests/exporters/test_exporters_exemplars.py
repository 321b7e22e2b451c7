"""Exemplars: traced calls on the duration buckets of the OpenMetrics exposition."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.openmetrics.parser import text_string_to_metric_families as _parse

from callmetrics import Analytics
from callmetrics.exporters.exemplars import Exemplar, ExemplarStore, pick, store_for
from callmetrics.exporters.otel import instrument
from callmetrics.exporters.prometheus import metrics_app, serve_metrics
from conftest import make_calls
from exporter_helpers import Launcher, get

# The library's OpenMetrics parser (untyped upstream, hence the annotation).
text_string_to_metric_families: Callable[[str], Iterable[Any]] = _parse
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def ignore(*_: Any) -> Any:
    """A WSGI start_response that keeps nothing."""
    return None


def scrape(analytics: Analytics, accept: str) -> str:
    app = metrics_app(analytics)
    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics",
                         "HTTP_ACCEPT": accept}, ignore))
    return body.decode()


def traced() -> tuple[Analytics, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    analytics = Analytics()
    instrument(analytics, MeterProvider(), spans=True, tracer_provider=tracer_provider)
    return analytics, exporter


def test_openmetrics_buckets_carry_the_trace_of_a_recent_call() -> None:
    """With spans on, a bucket's exemplar names a real span of a call that fell in it."""
    analytics, exporter = traced()
    make_calls(analytics, ok=20, failing=0)
    spans = {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}")
             for s in exporter.get_finished_spans()}
    families = {f.name: f for f in text_string_to_metric_families(scrape(analytics, OPENMETRICS))}
    buckets = [s for s in families["callmetrics_call_duration_seconds"].samples
               if s.name.endswith("_bucket")]
    with_exemplar = [s for s in buckets if s.exemplar is not None]
    assert with_exemplar
    for sample in with_exemplar:
        exemplar: Any = sample.exemplar
        assert (exemplar.labels["trace_id"], exemplar.labels["span_id"]) in spans
        assert exemplar.value <= float(sample.labels["le"])
        assert exemplar.timestamp is not None


def test_no_spans_no_exemplars() -> None:
    """Without spans, the exposition carries no exemplar."""
    analytics = Analytics()
    make_calls(analytics, ok=5, failing=0)
    text = scrape(analytics, OPENMETRICS)
    assert "trace_id" not in text
    assert store_for(analytics) is None


def test_the_text_format_has_no_exemplars() -> None:
    """The text format 0.0.4 cannot carry exemplars: none is written."""
    analytics, _ = traced()
    make_calls(analytics, ok=5, failing=0)
    assert "trace_id" not in scrape(analytics, "text/plain")


def test_the_store_keeps_one_call_per_function_and_octave() -> None:
    """Memory is bounded: the latest call of each power-of-two duration range only."""
    store = ExemplarStore()
    for i in range(10_000):
        store.offer(("f", "t"), (0.0011, 0.0015, 0.003)[i % 3], i + 1, i + 1)  # two octaves
    kept = store.read()[("f", "t")]
    assert len(kept) == 2
    assert max(int(e.span_id, 16) for e in kept) == 10_000


def test_pick_takes_the_latest_exemplar_of_each_bucket() -> None:
    """Each bucket (previous bound, bound] gets its newest exemplar; +Inf the ones above."""
    old = Exemplar(0.5, 1.0, "a" * 32, "1" * 16)
    new = Exemplar(0.7, 2.0, "b" * 32, "2" * 16)
    slow = Exemplar(9.0, 1.5, "c" * 32, "3" * 16)
    assert pick([old, new, slow], [0.25, 1.0]) == (None, new, slow)


@pytest.mark.servers
def test_prometheus_stores_the_exemplars_of_traced_calls(tmp_path: Path) -> None:
    """A real Prometheus (exemplar storage on) scrapes OpenMetrics and keeps our trace ids."""
    analytics, exporter = traced()
    make_calls(analytics, ok=30, failing=0)
    traces = {f"{s.context.trace_id:032x}" for s in exporter.get_finished_spans()}
    launch = Launcher(tmp_path)
    try:
        with serve_metrics(analytics, 0) as endpoint:
            prometheus = launch.prometheus([f"127.0.0.1:{endpoint.port}"],
                                           features=("exemplar-storage",))

            def stored() -> list[dict[str, Any]] | None:
                now = time.time()
                url = (f"{prometheus.base_url}/api/v1/query_exemplars?" + urllib.parse.urlencode(
                    {"query": "callmetrics_call_duration_seconds_bucket",
                     "start": now - 600, "end": now + 60}))
                found: list[dict[str, Any]] = json.loads(get(url))["data"]
                return found or None

            found = prometheus.wait_for("exemplars", stored)
    finally:
        launch.stop()
    kept = [exemplar for series in found for exemplar in series["exemplars"]]
    assert kept
    assert {exemplar["labels"]["trace_id"] for exemplar in kept} <= traces
