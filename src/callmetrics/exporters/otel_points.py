"""Histogram and ExponentialHistogram points built from the sketches, in the SDK's data model.

The metrics API has no observable histogram, and feeding a synchronous one would
cost a ``record()`` per call.  Instead a callmetrics reader (:class:`HistogramReader`,
a ``PeriodicExportingMetricReader`` for any SDK exporter, OTLP included, or
:class:`InMemoryHistogramReader`) adds to each collection, next to the SDK's own
metrics, two points per function built from its duration sketch:

- ``callmetrics.call.duration`` (``s``): a Histogram with explicit bounds (derived
  from the data as for Prometheus, or the ``buckets`` given to ``instrument``),
  exact count, sum, min and max;
- ``callmetrics.call.duration.exponential`` (``s``): an ExponentialHistogram at
  scale 6 (64 buckets per power of two), its buckets mapped from the sketch's as
  :mod:`callmetrics.exporters.native` describes (within ~1.5 %).

Both are cumulative, with the attributes ``code.function.name`` (module and name)
and ``callmetrics.event_type``, in the ``callmetrics`` scope of the collection's
resource.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from callmetrics._engine.logs import report_internal_error
from callmetrics._version import __version__
from callmetrics.exporters.buckets import cumulative_counts, derived_bounds
from callmetrics.exporters.native import SCHEMA, native_histogram
from callmetrics.exporters.otel_instruments import SCOPE, Instruments, attributes, on_provider

__all__ = ["HistogramReader", "InMemoryHistogramReader", "histogram_metrics"]


def histogram_metrics(instruments: Sequence[Instruments], now_ns: int) -> list[Metric]:
    """Return the two histogram metrics of every function the instruments report."""
    explicit: list[HistogramDataPoint] = []
    exponential: list[ExponentialHistogramDataPoint] = []
    for owner in instruments:
        sources = owner.sources()
        if not sources:
            continue
        since = min(source.since_ns for source in sources)
        given = next((s.bounds for s in sources if s.bounds is not None), None)
        totals = owner.totals()
        bounds = given if given is not None else derived_bounds(
            t.sketch for t in totals.values())
        for key, total in totals.items():
            if not total.calls:
                continue
            sketch = total.sketch
            running = cumulative_counts(sketch, bounds, total.calls)
            counts = [b - a for a, b in zip([0, *running], [*running, total.calls],
                                            strict=True)]
            shared: dict[str, Any] = {
                "attributes": attributes(key), "start_time_unix_nano": since,
                "time_unix_nano": now_ns, "count": total.calls, "sum": total.total,
                "min": sketch.min or 0.0, "max": sketch.max or 0.0}
            explicit.append(HistogramDataPoint(bucket_counts=counts,
                                               explicit_bounds=list(bounds), **shared))
            native = native_histogram(sketch)
            dense: list[int] = []
            offset = 0
            if native.buckets:
                # OpenTelemetry's bucket i is (base**i, base**(i+1)]: Prometheus's i + 1.
                offset = native.buckets[0][0] - 1
                dense = [0] * (native.buckets[-1][0] - native.buckets[0][0] + 1)
                for index, count in native.buckets:
                    dense[index - native.buckets[0][0]] = count
            exponential.append(ExponentialHistogramDataPoint(
                scale=SCHEMA, zero_count=native.zero_count, positive=Buckets(offset, dense),
                negative=Buckets(0, []), flags=0, **shared))
    if not explicit:
        return []
    cumulative = AggregationTemporality.CUMULATIVE
    return [
        Metric("callmetrics.call.duration", "Call durations: buckets from the sketch, "
               "count, sum, min and max exact.", "s", Histogram(explicit, cumulative)),
        Metric("callmetrics.call.duration.exponential", "Call durations at scale 6 "
               "(within ~1.5%), from the sketch; count, sum, min and max exact.", "s",
               ExponentialHistogram(exponential, cumulative)),
    ]


def _with_histograms(data: MetricsData, added: list[Metric]) -> MetricsData:
    if not added:
        return data
    resources = list(data.resource_metrics)
    if not resources:
        return data
    first = resources[0]
    scopes = list(first.scope_metrics)
    for i, scope in enumerate(scopes):
        if scope.scope.name == SCOPE:
            scopes[i] = ScopeMetrics(scope.scope, [*scope.metrics, *added], scope.schema_url)
            break
    else:
        scopes.append(ScopeMetrics(InstrumentationScope(SCOPE, __version__), added, ""))
    resources[0] = ResourceMetrics(first.resource, scopes, first.schema_url)
    return MetricsData(resources)


class _Histograms:
    """Adds the sketch histograms to what the reader receives (a mixin for SDK readers)."""

    _callmetrics_provider: Any = None

    def _set_meter_provider(self, meter_provider: Any) -> None:
        self._callmetrics_provider = meter_provider
        super()._set_meter_provider(meter_provider)  # type: ignore[misc]  # the SDK reader's

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
                         **kwargs: Any) -> None:
        try:
            added = histogram_metrics(on_provider(self._callmetrics_provider), time.time_ns())
            metrics_data = _with_histograms(metrics_data, added)
        except Exception as exc:  # noqa: BLE001  # the SDK's own metrics must still go out
            report_internal_error("building OpenTelemetry histograms", exc)
        super()._receive_metrics(  # type: ignore[misc]  # the SDK reader's
            metrics_data, timeout_millis=timeout_millis, **kwargs)


class HistogramReader(_Histograms, PeriodicExportingMetricReader):
    """A ``PeriodicExportingMetricReader`` that also exports callmetrics' histograms.

    Use it in place of the SDK's, with any metric exporter::

        reader = HistogramReader(OTLPMetricExporter(), export_interval_millis=60_000)
        provider = MeterProvider(metric_readers=[reader])
        instrument(analytics, provider)
    """


class InMemoryHistogramReader(_Histograms, InMemoryMetricReader):
    """An ``InMemoryMetricReader`` that also holds callmetrics' histograms (for tests)."""
