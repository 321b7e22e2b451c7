"""OpenTelemetry export: an instance's aggregates as metrics, and optionally calls as spans.

``instrument(analytics)`` registers observable instruments on the ``callmetrics``
meter of a given or the global ``MeterProvider``; the SDK's reader calls them when
it collects, and they read the instance's aggregates, so tracked calls pay nothing
for metrics.  Each series carries the semantic conventions' ``code.function.name``
(the function's module and name) and ``callmetrics.event_type``:

- ``callmetrics.calls`` (``{call}``): counter, exact; the failed calls' series also
  carries ``error.type``, one series per exception type (the qualified type name;
  ``_OTHER`` for types past the engine's cap of 20 per function, or never recorded);
- ``callmetrics.failures`` (``{call}``): counter, exact;
- ``callmetrics.call.time`` (``s``): total seconds spent in calls, exact;
- ``callmetrics.decorator.overhead`` (``s``): seconds the decorator added;
- ``callmetrics.functions.overflowed`` (no attributes): 1 once an instrumented
  instance reached ``max_functions`` distinct names, after which its new names are
  counted together in the series ``<overflow>.<other functions>``; 0 otherwise.

The durations go out as real histograms, ``callmetrics.call.duration`` (a Histogram
with explicit bounds) and ``callmetrics.call.duration.exponential`` (an
ExponentialHistogram at scale 6), built from the sketches by a callmetrics reader:
use :class:`HistogramReader` (any SDK exporter, e.g. OTLP) in place of the SDK's
``PeriodicExportingMetricReader`` (see :mod:`callmetrics.exporters.otel_points`).
Other readers get the counters only.

``spans=True`` also makes a span of each tracked call (:mod:`.otel_spans`: ``code.*``
attributes, ``error.type`` on failure), and keeps recent traced calls as exemplars
for the Prometheus exporter.  That costs one span per call, in the caller's thread.

The counters only grow, with one exception: an instance emptied by ``merge_with``, or
uninstrumented, no longer counts, so the series it fed drop (or vanish) and a backend
takes that for a counter reset, as after a process restart.

Configuration is OpenTelemetry's: pass providers, or configure the global ones (the
SDK honours the standard ``OTEL_*`` environment variables, e.g. under
``opentelemetry-instrument``).  Configure the global providers before calling
``instrument()``.
"""

from __future__ import annotations

from collections.abc import Iterable

try:
    from opentelemetry import trace
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from callmetrics.exporters.otel_points import HistogramReader, InMemoryHistogramReader
except ImportError as exc:
    raise ImportError(
        # The extra brings the SDK too, which the histogram readers need.
        "callmetrics.exporters.otel needs opentelemetry-api: pip install 'callmetrics[otel]' "
        "(from a checkout: pip install '.[otel]')"
    ) from exc

from callmetrics._analytics import Analytics
from callmetrics._version import __version__
from callmetrics.exporters.buckets import check_buckets
from callmetrics.exporters.exemplars import store_for
from callmetrics.exporters.otel_instruments import SCOPE, Instruments, instruments_for
from callmetrics.exporters.otel_spans import SpanObserver

__all__ = ["HistogramReader", "InMemoryHistogramReader", "Instrumentation", "instrument"]


class Instrumentation:
    """What :func:`instrument` set up; ``uninstrument()`` (or leaving ``with``) undoes it."""

    def __init__(self, analytics: Analytics, instruments: Instruments,
                 observer: SpanObserver | None) -> None:
        """Hold the parts to remove later."""
        self.analytics: Analytics | None = analytics
        self._instruments = instruments
        self._observer = observer

    @property
    def spans(self) -> bool:
        """Whether tracked calls become spans."""
        return self._observer is not None

    def uninstrument(self) -> None:
        """Stop reporting the instance and stop making spans; safe to call twice.

        The instruments stay on the meter (the API cannot remove them) but no longer
        report this instance.
        """
        analytics, self.analytics = self.analytics, None
        if analytics is None:
            return
        self._instruments.remove(analytics)
        if self._observer is not None:
            analytics.remove_observer(self._observer)

    def __enter__(self) -> Instrumentation:
        """Return self; leaving the block uninstruments."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Uninstrument."""
        self.uninstrument()


def instrument(analytics: Analytics, meter_provider: MeterProvider | None = None, *,
               spans: bool = False, tracer_provider: TracerProvider | None = None,
               buckets: Iterable[float] | None = None) -> Instrumentation:
    """Report ``analytics`` through OpenTelemetry.

    Args:
        analytics: the instance to report.
        meter_provider: where the metrics go; None uses the global provider.
        spans: also make a span of every tracked call.  Instrumenting an instance
            again replaces its span observer: spans=False then stops the spans.
        tracer_provider: where spans go when ``spans``; None uses the global provider.
        buckets: bounds in seconds of the ``callmetrics.call.duration`` histogram;
            None (the default) derives them from the data, as for Prometheus.

    Returns:
        A handle whose ``uninstrument()`` stops the reporting.

    Raises:
        TypeError, ValueError: for a bad argument, naming it.

    """
    if not isinstance(analytics, Analytics):
        raise TypeError(f"analytics must be an Analytics instance, got "
                        f"{type(analytics).__name__}")
    bounds = check_buckets(buckets)
    instruments = instruments_for(meter_provider)
    instruments.add(analytics, bounds)
    observer = None
    # Like the metrics, instrumenting again replaces: one span per call, not two, and
    # none when spans are no longer asked for.
    for previous in [o for o in analytics.observers if isinstance(o, SpanObserver)]:
        analytics.remove_observer(previous)
    if spans:
        observer = SpanObserver(trace.get_tracer(SCOPE, __version__,
                                                 tracer_provider=tracer_provider),
                                store_for(analytics, create=True))
        analytics.add_observer(observer)
    return Instrumentation(analytics, instruments, observer)
