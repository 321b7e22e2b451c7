"""OpenTelemetry export: an instance's aggregates as metrics, and optionally calls as spans.

``instrument(analytics)`` registers observable instruments on the ``callmetrics``
meter of a given or the global ``MeterProvider``; the SDK's reader calls them when
it collects, and they read the instance's aggregates, so tracked calls pay nothing
for metrics.  Each series carries the attributes ``function`` and ``event_type``:

- ``callmetrics.calls``, ``callmetrics.failures`` (``{call}``): counters, exact;
- ``callmetrics.call.time`` (``s``): total seconds spent in calls, exact;
- ``callmetrics.call.duration.bucket`` (``{call}``, attribute ``le``): cumulative
  count of calls that took at most ``le`` seconds, from the sketch (1% precision);
  ``le="+Inf"`` is the exact call count.  Counters of every process and machine add
  up, so a backend can aggregate them and compute quantiles from the sum;
- ``callmetrics.call.duration`` (``s``, attribute ``quantile``: ``0``, ``0.5``,
  ``0.9``, ``0.95``, ``0.99``, ``1``): a gauge of this process's percentiles from
  the sketch; 0 and 1 are the exact minimum and maximum.  Percentiles of several
  processes cannot be averaged: aggregate the bucket counters instead;
- ``callmetrics.decorator.overhead`` (``s``): seconds the decorator added;
- ``callmetrics.functions.overflowed`` (no attributes): 1 once an instrumented
  instance reached ``max_functions`` distinct names, after which its new names are
  counted together in the series ``function="<other functions>"``
  (``event_type="mixed"``); 0 otherwise.

Why no OpenTelemetry ``Histogram``: the metrics API has no observable histogram, and
feeding a synchronous one means one ``record()`` per call (a few microseconds each,
more than the decorator itself), which callmetrics never adds to tracked calls.  The
cumulative bucket counters carry the same information, exactly counted, read from
the aggregates.

``spans=True`` also registers a call observer: each tracked call becomes a span named
after the function (attributes ``callmetrics.function``, ``callmetrics.event_type``,
``callmetrics.outcome``; on failure ``error.type``, the exception event and an error
status), started as a child of the current span and made current while the call runs,
so spans the function opens nest under it.  That costs one span per call, in the
caller's thread.

The counters only grow, with one exception: an instance emptied by ``merge_with``, or
uninstrumented, no longer counts, so the series it fed drop (or vanish) and a backend
takes that for a counter reset, as after a process restart.

Configuration is OpenTelemetry's: pass providers, or configure the global ones (the
SDK honours the standard ``OTEL_*`` environment variables, e.g. under
``opentelemetry-instrument``).  Configure the global providers before calling
``instrument()``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextvars import Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.context import Context
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.trace import Span, Status, StatusCode, Tracer, TracerProvider
except ImportError as exc:
    raise ImportError(
        "callmetrics.exporters.otel needs opentelemetry-api: pip install 'callmetrics[otel]' "
        "(from a checkout: pip install '.[otel]')"
    ) from exc

from callmetrics._analytics import Analytics
from callmetrics._engine.logs import report_internal_error
from callmetrics._engine.recorder import OVERFLOW_NAME
from callmetrics._engine.sketch import DurationSketch
from callmetrics._version import __version__
from callmetrics.exporters import _check_buckets, _cumulative_counts

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats

__all__ = ["QUANTILES", "Instrumentation", "instrument"]

SCOPE = "callmetrics"

# The percentiles the duration gauge reports: 0 and 1 are the exact min and max.
QUANTILES: tuple[tuple[str, float], ...] = (
    ("0", 0.0), ("0.5", 0.5), ("0.9", 0.9), ("0.95", 0.95), ("0.99", 0.99), ("1", 1.0),
)

_Key = tuple[str, str]  # (function, event_type)


@dataclass
class _Totals:
    """One function's aggregates summed over every instrumented instance."""

    calls: int = 0
    failures: int = 0
    total: float = 0.0
    overhead: float = 0.0
    sketch: DurationSketch = field(default_factory=DurationSketch)


def _attributes(key: _Key) -> dict[str, str]:
    return {"function": key[0], "event_type": key[1]}


class _Instruments:
    """The observable instruments of one meter, reading every instance registered on it.

    The API cannot remove an instrument or add a callback to an existing one, so one
    set of instruments is made per meter provider and instances come and go from its
    list; instances sharing a function name add up.
    """

    def __init__(self, meter: Meter) -> None:
        self._lock = threading.Lock()
        self._sources: list[tuple[Analytics, tuple[float, ...]]] = []
        counter = meter.create_observable_counter
        counter("callmetrics.calls", [self._observer(self._sum_of("calls"))], unit="{call}",
                description="Calls of each tracked function, exact.")
        counter("callmetrics.failures", [self._observer(self._sum_of("failures"))], unit="{call}",
                description="Calls that raised, exact.")
        counter("callmetrics.call.time", [self._observer(self._sum_of("total"))], unit="s",
                description="Total seconds spent in the calls, exact.")
        counter("callmetrics.call.duration.bucket", [self._observer(self._buckets)],
                unit="{call}",
                description="Calls that took at most `le` seconds (cumulative, from the "
                            "sketch; le=+Inf is exact).")
        meter.create_observable_gauge(
            "callmetrics.call.duration", [self._observer(self._quantiles)], unit="s",
            description="This process's duration percentiles (`quantile`) from the sketch.")
        counter("callmetrics.decorator.overhead", [self._observer(self._sum_of("overhead"))],
                unit="s", description="Seconds the callmetrics decorator added to the calls.")
        meter.create_observable_gauge(
            "callmetrics.functions.overflowed", [self._observer(self._overflowed)], unit="1",
            description=f"1 once max_functions distinct names were reached: new names are "
                        f"then counted together as function={OVERFLOW_NAME!r}.")

    def add(self, analytics: Analytics, bounds: tuple[float, ...]) -> None:
        with self._lock:
            # Instrumenting an instance again replaces its entry: it is never counted twice.
            self._sources = [s for s in self._sources if s[0] is not analytics]
            self._sources.append((analytics, bounds))

    def remove(self, analytics: Analytics) -> None:
        with self._lock:
            for i, (source, _) in enumerate(self._sources):
                if source is analytics:
                    del self._sources[i]
                    return

    @staticmethod
    def _observer(
        produce: Callable[[], Iterator[Observation]],
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            try:
                return list(produce())
            except Exception as exc:  # noqa: BLE001  # a failed read must not break collection
                report_internal_error(f"OpenTelemetry callback {produce.__name__}", exc)
                return []

        return callback

    def _totals(self) -> dict[_Key, _Totals]:
        with self._lock:
            sources = list(self._sources)
        merged: dict[_Key, _Totals] = {}
        for analytics, _ in sources:
            for snap in analytics.snapshot():
                totals = merged.setdefault((snap.name, snap.event_type), _Totals())
                totals.calls += snap.calls
                totals.failures += snap.failures
                totals.total += snap.total
                totals.overhead += snap.overhead
                totals.sketch.merge(snap.sketch)
        return merged

    def _sum_of(self, name: str) -> Callable[[], Iterator[Observation]]:
        """Return a producer of one summed field (calls, failures, ...) per function."""

        def produce() -> Iterator[Observation]:
            for key, totals in self._totals().items():
                yield Observation(getattr(totals, name), _attributes(key))

        produce.__name__ = f"_{name}"
        return produce

    def _quantiles(self) -> Iterator[Observation]:
        for key, totals in self._totals().items():
            values = totals.sketch.quantiles(q for _, q in QUANTILES)  # one pass
            for (label, _), value in zip(QUANTILES, values, strict=True):
                if value is not None:
                    yield Observation(value, {**_attributes(key), "quantile": label})

    def _overflowed(self) -> Iterator[Observation]:
        with self._lock:
            sources = list(self._sources)
        if sources:  # like every series here, none while no instance is instrumented
            # call_counts copies no sketch: cheaper than a snapshot for one yes or no.
            yield Observation(int(any(OVERFLOW_NAME in analytics.call_counts
                                      for analytics, _ in sources)))

    def _buckets(self) -> Iterator[Observation]:
        with self._lock:
            sources = list(self._sources)
        counts: dict[tuple[str, str, str], int] = {}
        for analytics, bounds in sources:
            for snap in analytics.snapshot():
                cumulative = _cumulative_counts(snap.sketch, bounds, snap.calls)
                for bound, count in zip(bounds, cumulative, strict=True):
                    slot = (snap.name, snap.event_type, repr(bound))
                    counts[slot] = counts.get(slot, 0) + count
                slot = (snap.name, snap.event_type, "+Inf")
                counts[slot] = counts.get(slot, 0) + snap.calls
        for (name, event_type, le), count in counts.items():
            yield Observation(count, {"function": name, "event_type": event_type, "le": le})


# One instrument set per meter provider (weakly held: a dropped provider is forgotten).
_by_provider: weakref.WeakKeyDictionary[Any, _Instruments] = weakref.WeakKeyDictionary()
# The set first made on the global provider, even when that was still the API's proxy.
_on_global: dict[str, _Instruments] = {}
_registry_lock = threading.Lock()


def _instruments_for(meter_provider: MeterProvider | None) -> _Instruments:
    with _registry_lock:
        global_provider = metrics.get_meter_provider()
        provider = meter_provider if meter_provider is not None else global_provider
        found = _by_provider.get(provider)
        if found is None and provider is global_provider:
            # Instruments made on the proxy before the global provider was set forward
            # to it; a second set of the same names there would be ignored by the SDK,
            # and the instances registered on it never reported.
            found = _on_global.get("set")
        if found is None:
            found = _Instruments(provider.get_meter(SCOPE, __version__))
        _by_provider[provider] = found
        if provider is global_provider:
            _on_global.setdefault("set", found)
        return found


class _SpanObserver:
    """A call observer that turns each tracked call into a span."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def on_start(self, stats: FunctionStats) -> tuple[Span, Token[Context] | None]:
        span = self._tracer.start_span(stats.name, attributes={
            "callmetrics.function": stats.name,
            "callmetrics.event_type": stats.event_type,
        })
        if stats.kind in ("gen", "agen"):
            # A generator yields to its caller between steps (and an async one may be
            # resumed from another task): making its span current would leak it.
            return span, None
        return span, otel_context.attach(trace.set_span_in_context(span))

    def on_end(self, token: object, stats: FunctionStats,  # noqa: ARG002  # CallObserver's
               duration: float, error: BaseException | None) -> None:  # noqa: ARG002  # signature
        span, attached = cast("tuple[Span, Token[Context] | None]", token)
        if attached is not None:
            otel_context.detach(attached)
        if error is None:
            span.set_attribute("callmetrics.outcome", "success")
        else:
            span.set_attribute("callmetrics.outcome", "failure")
            span.set_attribute("error.type", type(error).__qualname__)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()


class Instrumentation:
    """What :func:`instrument` set up; ``uninstrument()`` (or leaving ``with``) undoes it."""

    def __init__(self, analytics: Analytics, instruments: _Instruments,
                 observer: _SpanObserver | None) -> None:
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
        buckets: upper bounds in seconds for ``callmetrics.call.duration.bucket``;
            defaults to ``callmetrics.exporters.DEFAULT_BUCKETS``.

    Returns:
        A handle whose ``uninstrument()`` stops the reporting.

    Raises:
        TypeError, ValueError: for a bad argument, naming it.

    """
    if not isinstance(analytics, Analytics):
        raise TypeError(f"analytics must be an Analytics instance, got "
                        f"{type(analytics).__name__}")
    bounds = _check_buckets(buckets)
    instruments = _instruments_for(meter_provider)
    instruments.add(analytics, bounds)
    observer = None
    # Like the metrics, instrumenting again replaces: one span per call, not two, and
    # none when spans are no longer asked for.
    for previous in [o for o in analytics.observers if isinstance(o, _SpanObserver)]:
        analytics.remove_observer(previous)
    if spans:
        observer = _SpanObserver(trace.get_tracer(SCOPE, __version__,
                                                  tracer_provider=tracer_provider))
        analytics.add_observer(observer)
    return Instrumentation(analytics, instruments, observer)
