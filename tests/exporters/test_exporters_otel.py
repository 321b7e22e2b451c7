from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from callmetrics import Analytics, DurationSketch, FunctionSnapshot
from callmetrics.exporters.native import SCHEMA
from callmetrics.exporters.otel import InMemoryHistogramReader, instrument
from conftest import make_calls


class Sdk(NamedTuple):
    """A meter provider and the in-memory reader it feeds."""

    provider: MeterProvider
    reader: InMemoryMetricReader


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    """An in-memory reader (with callmetrics' histograms) on its own meter provider."""
    reader = InMemoryHistogramReader()
    provider = MeterProvider(metric_readers=[reader])
    yield Sdk(provider, reader)
    provider.shutdown()


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider exporting every finished span to memory at once."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def points(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], Any]]:
    """Map each callmetrics metric to {sorted attributes: value (or histogram point)}."""
    found: dict[str, dict[tuple[tuple[str, Any], ...], Any]] = {}
    data = reader.get_metrics_data()
    if data is None:  # nothing was observed
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            if scope.scope.name != "callmetrics":
                continue
            for metric in scope.metrics:
                into = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    key = tuple(sorted((point.attributes or {}).items()))
                    if isinstance(point, NumberDataPoint):
                        into[key] = point.value
                    else:
                        assert isinstance(point, HistogramDataPoint
                                          | ExponentialHistogramDataPoint)
                        into[key] = point
    return found


def attrs(function: str, event_type: str, module: str = "conftest",
          **more: str) -> tuple[tuple[str, Any], ...]:
    """The semantic-convention attributes of a function's series."""
    return tuple(sorted({"code.function.name": f"{module}.{function}",
                         "callmetrics.event_type": event_type, **more}.items()))


def failed(function: str, event_type: str, module: str = "conftest",
           error: str = "ValueError") -> tuple[tuple[str, Any], ...]:
    """The attributes of a function's failed calls of one exception type."""
    return attrs(function, event_type, module, **{"error.type": error})


def test_counts_equal_the_calls_made(sdk: Sdk) -> None:
    """Calls and failures read back through the SDK equal the calls made, exactly."""
    analytics = Analytics()
    instrument(analytics, sdk.provider)
    make_calls(analytics, ok=5000, failing=37)  # more than a drain chunk
    got = points(sdk.reader)
    key = attrs("work", "unit")
    assert got["callmetrics.calls"] == {key: 5000, failed("work", "unit"): 37}
    assert got["callmetrics.failures"] == {key: 37}
    histogram = got["callmetrics.call.duration"][key]
    assert histogram.count == 5037
    assert sum(histogram.bucket_counts) == 5037
    exponential = got["callmetrics.call.duration.exponential"][key]
    assert exponential.count == 5037
    assert exponential.zero_count + sum(exponential.positive.bucket_counts) == 5037
    assert exponential.scale == SCHEMA
    assert histogram.sum == exponential.sum == pytest.approx(analytics.get_stats()["total_time"])
    assert got["callmetrics.call.time"][key] == pytest.approx(
        analytics.get_stats()["total_time"])
    assert got["callmetrics.decorator.overhead"][key] > 0


def test_counters_follow_later_calls(sdk: Sdk) -> None:
    """Each collection reports the cumulative count at that moment."""
    analytics = Analytics()
    instrument(analytics, sdk.provider)
    make_calls(analytics, ok=3, failing=0)
    assert points(sdk.reader)["callmetrics.calls"] == {attrs("work", "unit"): 3}
    make_calls(analytics, ok=4, failing=1)
    assert points(sdk.reader)["callmetrics.calls"] == {attrs("work", "unit"): 7,
                                                       failed("work", "unit"): 1}


def test_histograms_follow_the_sketch(sdk: Sdk) -> None:
    """The explicit histogram counts per bucket from the sketch; min and max are exact."""
    analytics = Analytics()
    instrument(analytics, sdk.provider, buckets=[0.001, 0.01, 0.1])
    for duration, count in ((0.0005, 3), (0.005, 5), (0.05, 2), (0.5, 1)):
        for _ in range(count):
            add_call(analytics, duration)
    histogram = points(sdk.reader)["callmetrics.call.duration"][attrs("job", "batch", "m")]
    assert list(histogram.explicit_bounds) == [0.001, 0.01, 0.1]
    assert list(histogram.bucket_counts) == [3, 5, 2, 1]
    assert histogram.min == 0.0005
    assert histogram.max == 0.5


def test_exponential_buckets_hold_their_values(sdk: Sdk) -> None:
    """Each value lands in OpenTelemetry's bucket (base**i, base**(i+1)] holding it (±0.4%)."""
    analytics = Analytics()
    instrument(analytics, sdk.provider)
    for duration in (3e-6, 0.02):
        add_call(analytics, duration)
    point = points(sdk.reader)["callmetrics.call.duration.exponential"][
        attrs("job", "batch", "m")]
    base = 2 ** (2 ** -point.scale)
    filled = [point.positive.offset + i for i, n in enumerate(point.positive.bucket_counts) if n]
    assert len(filled) == 2
    for index, duration in zip(filled, (3e-6, 0.02), strict=True):
        assert base ** index / 1.004 < duration <= base ** (index + 1) * 1.004


def test_the_sdks_plain_reader_gets_the_counters(sdk: Sdk) -> None:
    """A reader that is not callmetrics' still gets every counter (no histogram)."""
    plain = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[plain])
    analytics = Analytics()
    instrument(analytics, provider)
    make_calls(analytics, ok=2, failing=0)
    got = points(plain)
    assert got["callmetrics.calls"] == {attrs("work", "unit"): 2}
    assert "callmetrics.call.duration" not in got
    provider.shutdown()


def add_call(analytics: Analytics, duration: float) -> None:
    """Add one successful call of ``duration`` seconds to function "job" (as a store load does)."""
    sketch = DurationSketch()
    sketch.add(duration)
    analytics.restore([FunctionSnapshot(
        name="job", event_type="batch", module="m", calls=1, successes=1, total=duration,
        fast=1, medium=0, slow=0, overhead=0.0, sketch=sketch, slowest=None, fastest=None)], [])


def test_histogram_counts_never_decrease_when_slower_calls_arrive(sdk: Sdk) -> None:
    """A call counted in a bucket stays counted there after slower calls come (cumulative)."""
    analytics = Analytics()
    instrument(analytics, sdk.provider, buckets=[0.5, 1.0, 2.5])
    add_call(analytics, 1.0)  # exactly a bound, and for now the slowest call
    key = attrs("job", "batch", "m")
    before = points(sdk.reader)["callmetrics.call.duration"][key]
    add_call(analytics, 2.0)
    after = points(sdk.reader)["callmetrics.call.duration"][key]
    assert after.count == 2
    assert all(a >= b for a, b in zip(after.bucket_counts, before.bucket_counts, strict=True))


def test_functions_are_reported_separately(sdk: Sdk) -> None:
    """Each function and event type gets its own series."""
    analytics = Analytics()
    instrument(analytics, sdk.provider)

    @analytics.track("db")
    def query() -> None:
        """Stand in for a query."""

    @analytics.track("api")
    async def fetch() -> None:
        """Stand in for a request."""

    for _ in range(3):
        query()
    asyncio.run(fetch())
    calls = points(sdk.reader)["callmetrics.calls"]
    module = "test_exporters_otel"
    assert calls == {attrs("test_functions_are_reported_separately.query", "db", module): 3,
                     attrs("test_functions_are_reported_separately.fetch", "api", module): 1}


def test_two_instances_on_one_provider_add_up(sdk: Sdk) -> None:
    """Two instances instrumented on one provider both report; the same function adds up."""
    first, second = Analytics(), Analytics()
    instrument(first, sdk.provider)
    instrument(second, sdk.provider)
    make_calls(first, ok=2, failing=0)
    make_calls(second, ok=5, failing=1)
    assert points(sdk.reader)["callmetrics.calls"] == {attrs("work", "unit"): 7,
                                                       failed("work", "unit"): 1}


def test_instrumenting_twice_does_not_double_count(sdk: Sdk) -> None:
    """Instrumenting the same instance again replaces its registration."""
    analytics = Analytics()
    instrument(analytics, sdk.provider)
    instrument(analytics, sdk.provider)
    make_calls(analytics, ok=4, failing=0)
    assert points(sdk.reader)["callmetrics.calls"] == {attrs("work", "unit"): 4}


def test_instrumenting_twice_makes_one_span_per_call(
        spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    """Instrumenting the same instance with spans again does not double the spans."""
    tracer_provider, exporter = spans
    analytics = Analytics()
    instrument(analytics, MeterProvider(), spans=True, tracer_provider=tracer_provider)
    instrument(analytics, MeterProvider(), spans=True, tracer_provider=tracer_provider)
    make_calls(analytics, ok=3, failing=0)
    assert len(exporter.get_finished_spans()) == 3


def test_instrumenting_again_without_spans_stops_the_spans(
        sdk: Sdk, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    """Instrumenting again with spans=False stops the spans; uninstrument leaves no observer."""
    tracer_provider, exporter = spans
    analytics = Analytics()
    instrument(analytics, sdk.provider, spans=True, tracer_provider=tracer_provider)
    handle = instrument(analytics, sdk.provider)
    assert not handle.spans
    make_calls(analytics, ok=3, failing=0)
    assert exporter.get_finished_spans() == ()
    handle.uninstrument()
    assert analytics.observers == []


def test_uninstrument_stops_reporting(sdk: Sdk,
                                      spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    """After uninstrument() the instance is no longer reported and makes no spans."""
    tracer_provider, exporter = spans
    analytics = Analytics()
    with instrument(analytics, sdk.provider, spans=True,
                    tracer_provider=tracer_provider) as handle:
        assert handle.spans
        make_calls(analytics, ok=2, failing=0)
    assert analytics.observers == []
    make_calls(analytics, ok=2, failing=0)
    assert points(sdk.reader).get("callmetrics.calls", {}) == {}
    assert len(exporter.get_finished_spans()) == 2
    handle.uninstrument()  # a second call is harmless


GLOBAL_SCRIPT = """
import json, sys
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from callmetrics import Analytics, DurationSketch, FunctionSnapshot
from callmetrics.exporters.otel import instrument

analytics = Analytics()
instrument(analytics)  # before the global provider is set: the API's proxy forwards later
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
work = analytics.track("unit", name="work")(lambda: None)
for _ in range(7):
    work()
out = {}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            if m.name == "callmetrics.calls":
                out["calls"] = [p.value for p in m.data.data_points]
                out["service"] = rm.resource.attributes["service.name"]
print(json.dumps(out))
"""


def test_global_provider_and_otel_env_are_honoured() -> None:
    """Without a provider the global one is used, and the SDK reads OTEL_* variables."""
    env = {**os.environ, "OTEL_SERVICE_NAME": "checkout"}
    done = subprocess.run([sys.executable, "-c", GLOBAL_SCRIPT], capture_output=True,
                          text=True, env=env, timeout=60, check=True)
    assert json.loads(done.stdout) == {"calls": [7], "service": "checkout"}


BEFORE_AND_AFTER_SCRIPT = """
import json
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from callmetrics import Analytics
from callmetrics.exporters.otel import instrument

early, late, explicit = Analytics(), Analytics(), Analytics()
instrument(early)  # through the API's proxy, before the global provider is set
reader = InMemoryMetricReader()
provider = MeterProvider(metric_readers=[reader])
metrics.set_meter_provider(provider)
instrument(late)  # the global provider itself, now
instrument(explicit, provider)  # the same provider, passed in
for analytics, name, calls in ((early, "early", 3), (late, "late", 5), (explicit, "explicit", 2)):
    work = analytics.track("unit", name=name)(lambda: None)
    for _ in range(calls):
        work()
found = {}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            if m.name == "callmetrics.calls":
                for p in m.data.data_points:
                    name = p.attributes["code.function.name"].rpartition(".")[2]
                    found[name] = found.get(name, 0) + p.value
print(json.dumps(found, sort_keys=True))
"""


def test_instances_instrumented_before_and_after_the_global_provider_is_set() -> None:
    """Instances instrumented before and after the global provider is set are each reported."""
    done = subprocess.run([sys.executable, "-c", BEFORE_AND_AFTER_SCRIPT], capture_output=True,
                          text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == {"early": 3, "explicit": 2, "late": 5}


def test_bad_arguments_fail_early() -> None:
    """A wrong analytics or bucket list fails at once, naming the field."""
    with pytest.raises(TypeError, match="analytics"):
        instrument("not analytics", MeterProvider())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="buckets"):
        instrument(Analytics(), MeterProvider(), buckets=[1.0, 0.5])


def test_names_past_max_functions_are_one_series_and_say_so(sdk: Sdk) -> None:
    """Past the cap, new names share the '<other functions>' series; the gauge reads 1."""
    analytics = Analytics({"max_functions": 2})
    instrument(analytics, sdk.provider)
    for name in ("f0", "f1"):
        make_calls(analytics, ok=3, failing=1, name=name)
    assert points(sdk.reader)["callmetrics.functions.overflowed"] == {(): 0}
    for name in ("f2", "f3", "f4"):
        make_calls(analytics, ok=3, failing=1, name=name)
    got = points(sdk.reader)
    assert got["callmetrics.functions.overflowed"] == {(): 1}
    other = attrs("<other functions>", "mixed", "<overflow>")
    assert got["callmetrics.calls"] == {
        attrs("f0", "unit"): 3, failed("f0", "unit"): 1, attrs("f1", "unit"): 3,
        failed("f1", "unit"): 1, other: 9, failed("<other functions>", "mixed", "<overflow>"): 3}
    assert got["callmetrics.failures"][other] == 3
    assert got["callmetrics.call.duration"][other].count == 12
