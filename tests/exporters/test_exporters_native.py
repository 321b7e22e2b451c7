"""Native histograms and the protobuf exposition, decoded with the real protobuf package."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmetrics import Analytics, DurationSketch, FunctionSnapshot
from callmetrics.exporters.native import SCHEMA, native_histogram
from callmetrics.exporters.negotiate import choose
from callmetrics.exporters.prometheus import CallmetricsCollector, metrics_app
from callmetrics.exporters.protobuf import CONTENT_TYPE, encode
from exporter_helpers import (
    decode_delimited,
    exact_quantile,
    labels_of,
    native_buckets,
    native_quantile,
)

PROMETHEUS_ACCEPT = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                     "encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")


def snapshot_of(durations: list[float], name: str = "job", failures: int = 0,
                **more: Any) -> FunctionSnapshot:
    sketch = DurationSketch()
    sketch.add_sorted(sorted(durations))
    return FunctionSnapshot(
        name=name, event_type="batch", module="pkg.mod", calls=len(durations),
        successes=len(durations) - failures, total=sum(durations), fast=len(durations),
        medium=0, slow=0, overhead=0.0, sketch=sketch, slowest=None, fastest=None, **more)


def restored(*snapshots: FunctionSnapshot) -> Analytics:
    analytics = Analytics()
    analytics.restore(list(snapshots), [])
    return analytics


def log_uniform(n: int, seed: int = 7) -> list[float]:
    """Durations spread evenly in log from 100 ns to 1 s."""
    rng = random.Random(seed)
    return [10 ** rng.uniform(-7, 0) for _ in range(n)]


def scrape(app: Any, accept: str) -> tuple[str, bytes]:
    got: list[Any] = []
    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics",
                         "HTTP_ACCEPT": accept}, lambda _status, headers: got.append(headers)))
    return dict(got[0])["Content-Type"], body


@pytest.mark.parametrize(("accept", "expected"), [
    (PROMETHEUS_ACCEPT, "protobuf"),
    ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", "openmetrics"),
    ("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5", "text"),
    (("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
     "encoding=text"), "text"),  # the protobuf text encoding is not offered
    (("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
     "encoding=delimited;q=0"), "text"),
    (None, "text"),
    ("", "text"),
    ("image/png", "text"),
])
def test_the_format_follows_the_accept_header(accept: str | None, expected: str) -> None:
    """The highest-q format we offer wins; the text format is the fallback."""
    assert choose(accept) == expected


def test_prometheus_native_scrape_gets_protobuf_with_native_and_classic() -> None:
    """The protobuf answer holds exact counters and a histogram with both bucket kinds."""
    values = log_uniform(5000)
    app = metrics_app(restored(snapshot_of(values, failures=7)))
    content_type, body = scrape(app, PROMETHEUS_ACCEPT)
    assert content_type == CONTENT_TYPE
    families = decode_delimited(body)
    calls = families["callmetrics_calls_total"]
    assert calls.type == 0  # COUNTER
    assert labels_of(calls.metric[0]) == {"function": "job", "module": "pkg.mod",
                                          "event_type": "batch"}
    assert calls.metric[0].counter.value == 5000
    assert families["callmetrics_failures_total"].metric[0].counter.value == 7
    histogram = families["callmetrics_call_duration_seconds"].metric[0].histogram
    assert families["callmetrics_call_duration_seconds"].type == 4  # HISTOGRAM
    assert histogram.sample_count == 5000
    assert histogram.sample_sum == pytest.approx(sum(values))
    assert histogram.schema == SCHEMA
    assert histogram.zero_count + sum(native_buckets(histogram).values()) == 5000
    classic = [(b.upper_bound, b.cumulative_count) for b in histogram.bucket]
    assert classic[0][0] <= min(values)
    assert classic[-1][0] >= max(values)
    assert [count for _, count in classic] == sorted(count for _, count in classic)
    assert classic[-1][1] == 5000
    assert families["callmetrics_source_up"].metric[0].gauge.value == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1e-8, 1e3), min_size=1, max_size=300),
       st.sampled_from([0.5, 0.9, 0.99]))
def test_native_quantiles_are_within_one_and_a_half_percent(values: list[float],
                                                            q: float) -> None:
    """Prometheus's estimate from the native buckets is within 1.5% of the exact quantile."""
    snapshot = snapshot_of(values)
    families = decode_delimited(encode(
        CallmetricsCollector(restored(snapshot)).families()))
    histogram = families["callmetrics_call_duration_seconds"].metric[0].histogram
    buckets = native_buckets(histogram)
    estimate = native_quantile(q, histogram.schema, histogram.zero_count, buckets)
    truth = exact_quantile(q, values)
    assert estimate == pytest.approx(truth, rel=0.015)


def test_native_buckets_only_grow_as_calls_arrive() -> None:
    """Each sketch bucket always maps to the same native bucket: counts never drop."""
    sketch = DurationSketch()
    previous: dict[int, int] = {}
    rng = random.Random(3)
    for _ in range(20):
        sketch.add_sorted(sorted(10 ** rng.uniform(-7, 1) for _ in range(200)))
        now = dict(native_histogram(sketch).buckets)
        assert all(now.get(index, 0) >= count for index, count in previous.items())
        previous = now
    assert sum(previous.values()) == 4000


def test_native_bucket_boundaries_hold_their_values() -> None:
    """A value lands in the schema-6 bucket (base**(i-1), base**i] holding it, within 0.4%."""
    base = 2 ** (2 ** -SCHEMA)
    for value in (1e-7, 3.3e-6, 0.001, 0.25, 1.0, 7.77, 1234.5):
        sketch = DurationSketch()
        sketch.add(value)
        [(index, count)] = native_histogram(sketch).buckets
        assert count == 1
        assert base ** (index - 1) / 1.004 < value <= base ** index * 1.004


def test_zero_durations_go_to_the_zero_bucket() -> None:
    """Calls the sketch cannot tell from zero are counted in the zero bucket."""
    native = native_histogram(snapshot_of([0.0, 0.0, 1e-3]).sketch)
    assert native.zero_count == 2
    assert sum(count for _, count in native.buckets) == 1


def test_spans_bridge_short_gaps_only() -> None:
    """Runs of up to two empty buckets stay inside a span; longer gaps start a new one."""
    base = 2 ** (2 ** -SCHEMA)
    sketch = DurationSketch()
    for exponent in (0, 1, 4, 40):  # buckets 1, 2, 5 apart, then far away
        sketch.add(base ** exponent * 1.005)  # inside bucket exponent + 1, by more than 0.4%
    spans = list(native_histogram(sketch).spans())
    assert [(first, len(counts)) for first, counts in spans] == [(1, 5), (41, 1)]
    assert spans[0][1] == [1, 1, 0, 0, 1]
    assert sum(sum(counts) for _, counts in spans) == 4


def test_an_empty_source_is_still_valid_protobuf() -> None:
    """No function yet: the answer decodes and holds build info and source up."""
    families = decode_delimited(encode(CallmetricsCollector(Analytics()).families()))
    assert "callmetrics_call_duration_seconds" not in families
    assert families["callmetrics_source_up"].metric[0].gauge.value == 1
    assert math.isclose(families["callmetrics_build_info"].metric[0].gauge.value, 1.0)
