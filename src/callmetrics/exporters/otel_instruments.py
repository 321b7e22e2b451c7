"""The observable counters of the OpenTelemetry export, and the instances they read.

One set of instruments is made per meter provider (the API can neither remove an
instrument nor add a callback to one); instrumented instances come and go from its
list, and instances sharing a function add up.  The histogram points are not
instruments (the API has no observable histogram): :mod:`.otel_points` builds them
from the same list when a callmetrics reader collects.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from callmetrics._analytics import Analytics
from callmetrics._engine.errors import OTHER_TYPES, UNKNOWN_TYPE
from callmetrics._engine.logs import report_internal_error
from callmetrics._engine.recorder import OVERFLOW_NAME
from callmetrics._engine.sketch import DurationSketch
from callmetrics._version import __version__

__all__ = ["SCOPE", "Instruments", "Totals", "attributes", "instruments_for", "on_provider"]

SCOPE = "callmetrics"
# The semantic conventions' fallback value of error.type: for the failures of types
# past the engine's per-function cap ("(other)") and those of types never recorded
# ("(unknown)": stores written before schema version 4).
UNKNOWN_ERROR = "_OTHER"
_FOLDED = frozenset({OTHER_TYPES, UNKNOWN_TYPE})

_Key = tuple[str, str, str]  # (module, function, event_type)


@dataclass
class Totals:
    """One function's aggregates summed over every instrumented instance."""

    calls: int = 0
    failures: int = 0
    total: float = 0.0
    overhead: float = 0.0
    sketch: DurationSketch = field(default_factory=DurationSketch)
    errors: dict[str, int] = field(default_factory=dict)
    """Failures by ``error.type`` (the qualified type name, or ``_OTHER``)."""


def attributes(key: _Key) -> dict[str, str]:
    """The semantic-convention attributes of a function's series."""
    module, name, event_type = key
    return {"code.function.name": f"{module}.{name}", "callmetrics.event_type": event_type}


@dataclass
class Source:
    """An instrumented instance, its histogram bounds (None: derived), and since when."""

    analytics: Analytics
    bounds: tuple[float, ...] | None
    since_ns: int = field(default_factory=time.time_ns)


class Instruments:
    """The observable counters of one meter, reading every instance registered on it."""

    def __init__(self, meter: Meter) -> None:
        """Create the instruments on ``meter``."""
        self._lock = threading.Lock()
        self._sources: list[Source] = []
        counter = meter.create_observable_counter
        counter("callmetrics.calls", [self._observer(self._calls)], unit="{call}",
                description="Calls of each tracked function, exact; failed calls carry "
                            "error.type.")
        counter("callmetrics.failures", [self._observer(self._sum_of("failures"))],
                unit="{call}", description="Calls that raised, exact.")
        counter("callmetrics.call.time", [self._observer(self._sum_of("total"))], unit="s",
                description="Total seconds spent in the calls, exact.")
        counter("callmetrics.decorator.overhead", [self._observer(self._sum_of("overhead"))],
                unit="s", description="Seconds the callmetrics decorator added to the calls.")
        meter.create_observable_gauge(
            "callmetrics.functions.overflowed", [self._observer(self._overflowed)], unit="1",
            description=f"1 once max_functions distinct names were reached: new names are "
                        f"then counted together as function={OVERFLOW_NAME!r}.")

    def add(self, analytics: Analytics, bounds: tuple[float, ...] | None) -> None:
        """Report ``analytics`` (again: its entry is replaced, never counted twice)."""
        with self._lock:
            self._sources = [s for s in self._sources if s.analytics is not analytics]
            self._sources.append(Source(analytics, bounds))

    def remove(self, analytics: Analytics) -> None:
        """Stop reporting ``analytics``."""
        with self._lock:
            self._sources = [s for s in self._sources if s.analytics is not analytics]

    def sources(self) -> list[Source]:
        """The instances reported now."""
        with self._lock:
            return list(self._sources)

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

    def totals(self) -> dict[_Key, Totals]:
        """Every function's aggregates, summed over the instances."""
        merged: dict[_Key, Totals] = {}
        for source in self.sources():
            for snap in source.analytics.snapshot():
                totals = merged.setdefault((snap.module, snap.name, snap.event_type), Totals())
                totals.calls += snap.calls
                totals.failures += snap.failures
                for name, count in snap.failure_types().items():
                    shown = UNKNOWN_ERROR if name in _FOLDED else name
                    totals.errors[shown] = totals.errors.get(shown, 0) + count
                totals.total += snap.total
                totals.overhead += snap.overhead
                totals.sketch.merge(snap.sketch)
        return merged

    def _calls(self) -> Iterator[Observation]:
        for key, totals in self.totals().items():
            yield Observation(totals.calls - totals.failures, attributes(key))
            for name, count in sorted(totals.errors.items()):
                yield Observation(count, {**attributes(key), "error.type": name})

    def _sum_of(self, name: str) -> Callable[[], Iterator[Observation]]:
        """Return a producer of one summed field (failures, total, ...) per function."""

        def produce() -> Iterator[Observation]:
            for key, totals in self.totals().items():
                yield Observation(getattr(totals, name), attributes(key))

        produce.__name__ = f"_{name}"
        return produce

    def _overflowed(self) -> Iterator[Observation]:
        sources = self.sources()
        if sources:  # like every series here, none while no instance is instrumented
            # call_counts copies no sketch: cheaper than a snapshot for one yes or no.
            yield Observation(int(any(OVERFLOW_NAME in source.analytics.call_counts
                                      for source in sources)))


# One instrument set per meter provider (weakly held: a dropped provider is forgotten).
_by_provider: weakref.WeakKeyDictionary[Any, Instruments] = weakref.WeakKeyDictionary()
# The set first made on the global provider, even when that was still the API's proxy.
_on_global: dict[str, Instruments] = {}
_registry_lock = threading.Lock()


def instruments_for(meter_provider: MeterProvider | None) -> Instruments:
    """Return the instruments of ``meter_provider`` (None: the global one), made once."""
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
            found = Instruments(provider.get_meter(SCOPE, __version__))
        _by_provider[provider] = found
        if provider is global_provider:
            _on_global.setdefault("set", found)
        return found


def on_provider(provider: object | None) -> list[Instruments]:
    """The instrument sets a reader of ``provider`` reports (all of them if unknown)."""
    with _registry_lock:
        if provider is not None:
            found = _by_provider.get(provider)
            if found is None and provider is metrics.get_meter_provider():
                found = _on_global.get("set")
            return [found] if found is not None else []
        return list({id(i): i for i in [*_by_provider.values(), *_on_global.values()]}.values())
