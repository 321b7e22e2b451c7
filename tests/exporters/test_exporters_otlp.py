"""OpenTelemetry histograms through the SDK's own OTLP/HTTP exporter, to a real receiver.

A real HTTP server in the test receives what ``OTLPMetricExporter`` sends and decodes
it with the ``opentelemetry-proto`` package: the Histogram and ExponentialHistogram
points' counts and sums equal the calls made, with the semantic-convention attributes.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conftest import make_calls, missing_module

try:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
except ImportError as exc:
    missing_module(exc, "the OTLP test exports with the SDK's exporter and decodes the request")

from callmetrics import Analytics
from callmetrics.exporters.otel import HistogramReader, instrument


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP metrics endpoint keeping every request it decodes."""

    def __init__(self) -> None:
        """Listen on a free loopback port."""
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[Any] = []
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    """Decode POST /v1/metrics bodies (protobuf, maybe gzipped)."""

    server: Receiver

    def do_POST(self) -> None:  # http.server's naming
        """Keep the decoded request and answer 200 with an empty response."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        with self.server.lock:
            self.server.requests.append((self.path, self.headers["Content-Type"], request))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        """Stay quiet."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def attributes_of(point: Any) -> dict[str, str]:
    return {item.key: item.value.string_value for item in point.attributes}


def test_otlp_receives_histograms_equal_to_the_calls_made(receiver: Receiver) -> None:
    """Histogram and ExponentialHistogram points: counts and sums of the calls, semconv names."""
    port = receiver.server_address[1]
    exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}/v1/metrics", timeout=10)
    reader = HistogramReader(exporter, export_interval_millis=3_600_000)  # we flush ourselves
    provider = MeterProvider(metric_readers=[reader],
                             resource=Resource.create({"service.name": "checkout"}))
    analytics = Analytics()
    instrument(analytics, provider)
    make_calls(analytics, ok=250, failing=17)
    total = analytics.get_stats()["total_time"]
    assert provider.force_flush(timeout_millis=10_000)
    provider.shutdown()

    assert receiver.requests
    path, content_type, request = receiver.requests[0]
    assert path == "/v1/metrics"
    assert content_type == "application/x-protobuf"
    [resource] = request.resource_metrics
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "checkout"
    metrics = {metric.name: metric for scope in resource.scope_metrics
               if scope.scope.name == "callmetrics" for metric in scope.metrics}
    expected = {"code.function.name": "conftest.work", "callmetrics.event_type": "unit"}

    [explicit] = metrics["callmetrics.call.duration"].histogram.data_points
    assert attributes_of(explicit) == expected
    assert explicit.count == 267
    assert sum(explicit.bucket_counts) == 267
    assert len(explicit.bucket_counts) == len(explicit.explicit_bounds) + 1
    assert explicit.sum == pytest.approx(total)
    assert metrics["callmetrics.call.duration"].unit == "s"

    [exponential] = metrics["callmetrics.call.duration.exponential"].exponential_histogram \
        .data_points
    assert attributes_of(exponential) == expected
    assert exponential.count == 267
    assert exponential.zero_count + sum(exponential.positive.bucket_counts) == 267
    assert exponential.sum == pytest.approx(total)
    assert exponential.scale == 6
    assert exponential.min <= exponential.max

    calls = {tuple(sorted(attributes_of(p).items())): p.as_int
             for p in metrics["callmetrics.calls"].sum.data_points}
    assert calls == {tuple(sorted(expected.items())): 250,
                     tuple(sorted({**expected, "error.type": "ValueError"}.items())): 17}
