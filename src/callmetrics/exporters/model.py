"""What the exporters expose, independent of any wire format: metric families and series.

:func:`families` turns function snapshots into :class:`Family` objects, in one of two
namings:

- ``"callmetrics"`` (the default): ``callmetrics_calls_total``,
  ``callmetrics_failures_total`` (one series per exception type, labelled
  ``error_type``: the counts add up to the function's failures exactly; a function
  without failures has one series at 0 without it), ``callmetrics_call_duration_seconds``,
  ``callmetrics_self_seconds_total`` (where known), ``callmetrics_decorator_overhead_
  seconds_total``, labelled ``function``, ``module``, ``event_type``; and
  ``callmetrics_functions_overflowed``, ``callmetrics_build_info``, and from a live
  instance tracking concurrency ``callmetrics_calls_in_progress``.
- ``"autometrics"``: the autometrics v1.0.0 names and labels, ``function_calls_total``
  (``function``, ``module``, ``service_name``, ``result`` ok/error, and
  ``caller_function``/``caller_module`` where callers were recorded),
  ``function_calls_duration_seconds``, ``build_info`` and, from a live instance
  tracking concurrency, ``function_calls_concurrent``.  Functions of one name and
  module recorded under several event types are added together.  The specification
  lists the labels each metric may carry, and ``error_type`` is not among them: the
  failures' types are in the default naming only.

The exporters' renderers (text and OpenMetrics through prometheus_client, protobuf in
:mod:`callmetrics.exporters.protobuf`) read these.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from callmetrics._engine.accel import IMPLEMENTATION
from callmetrics._engine.recorder import OVERFLOW_NAME
from callmetrics._engine.sketch import DurationSketch
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._version import __version__
from callmetrics.exporters.buckets import cumulative_counts, derived_bounds
from callmetrics.exporters.exemplars import Exemplar, pick

__all__ = ["NAMINGS", "Family", "Histogram", "Naming", "families", "service_name"]

Naming = Literal["callmetrics", "autometrics"]
NAMINGS: tuple[Naming, ...] = ("callmetrics", "autometrics")
AUTOMETRICS_VERSION = "1.0.0"
AUTOMETRICS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                       7.5, 10.0)

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Histogram:
    """One series of a duration histogram: classic buckets, exact sum and count, the sketch."""

    bounds: tuple[float, ...]
    """Upper bounds of the classic buckets, +Inf left out."""
    cumulative: tuple[int, ...]
    """Calls that took at most each bound (from the sketch)."""
    count: int
    """Calls, exact (the +Inf bucket)."""
    total: float
    """Seconds of all the calls, exact."""
    sketch: DurationSketch
    """The durations' sketch, from which the native histogram is built."""
    exemplars: tuple[Exemplar | None, ...] = ()
    """One per classic bucket and +Inf, or empty: a recent call that fell in it."""


@dataclass(slots=True)
class Family:
    """A metric family: its full name (counters end in ``_total``), kind, help, series."""

    name: str
    kind: Literal["counter", "gauge", "histogram"]
    help: str
    series: list[tuple[Labels, float | Histogram]] = field(default_factory=list)


def check_naming(naming: object) -> Naming:
    """Return ``naming`` if it is one of :data:`NAMINGS`, else raise ValueError naming it."""
    for known in NAMINGS:
        if naming == known:
            return known
    raise ValueError(f"naming must be one of {', '.join(NAMINGS)}, got {naming!r}")


def service_name(setting: str | None = None, source: object = None) -> str:
    """Return the autometrics ``service_name``.

    The setting first, then ``AUTOMETRICS_SERVICE_NAME``, then ``OTEL_SERVICE_NAME``;
    else the store's file name (without suffix) for a store, or the program's name.
    """
    for candidate in (setting, os.environ.get("AUTOMETRICS_SERVICE_NAME"),
                      os.environ.get("OTEL_SERVICE_NAME")):
        if candidate and candidate.strip():
            return candidate.strip()
    if isinstance(source, Path):
        return source.stem or "callmetrics"
    program = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return program or "python"


def _histogram(sketch: DurationSketch, calls: int, total: float, bounds: tuple[float, ...],
               exemplars: Sequence[Exemplar]) -> Histogram:
    chosen = pick(exemplars, bounds) if exemplars else ()
    return Histogram(bounds, tuple(cumulative_counts(sketch, bounds, calls)), calls, total,
                     sketch, chosen)


def families(snapshots: Sequence[FunctionSnapshot], *, naming: Naming = "callmetrics",
             buckets: tuple[float, ...] | None = None, service: str = "",
             exemplars: Mapping[tuple[str, str], Sequence[Exemplar]] | None = None,
             in_progress: Mapping[tuple[str, str, str], int] | None = None,
             ) -> list[Family]:
    """Return the metric families of ``snapshots`` in ``naming``.

    Args:
        snapshots: the functions' aggregates.
        naming: ``"callmetrics"`` or ``"autometrics"``.
        buckets: classic bucket bounds; None derives them from the data
            (:func:`callmetrics.exporters.buckets.derived_bounds`).
        service: the autometrics ``service_name``.
        exemplars: recent traced calls by ``(function, event_type)``.
        in_progress: calls in progress by ``(function, module, event_type)``, from
            a live instance tracking concurrency; None (a store, or not tracked)
            leaves the gauge out.

    """
    bounds = buckets if buckets is not None else derived_bounds(s.sketch for s in snapshots)
    if buckets is None and naming == "autometrics" and bounds:
        # The specification's default bounds too, which its latency objectives name.
        bounds = tuple(sorted({*bounds, *AUTOMETRICS_BUCKETS}))
    found = exemplars or {}
    if naming == "autometrics":
        made = _autometrics(snapshots, bounds, service, found)
    else:
        made = _callmetrics(snapshots, bounds, found)
    if in_progress is not None:
        made.append(_in_progress(snapshots, in_progress, naming, service))
    return made


def _in_progress(snapshots: Sequence[FunctionSnapshot],
                 counts: Mapping[tuple[str, str, str], int], naming: Naming,
                 service: str) -> Family:
    """The calls in progress of every function (0 for those with none)."""
    every = dict.fromkeys(((s.name, s.module, s.event_type) for s in snapshots), 0)
    for key, count in counts.items():
        every[key] = every.get(key, 0) + count
    if naming == "callmetrics":
        return Family("callmetrics_calls_in_progress", "gauge",
                      "Calls started and not yet ended (track_concurrency=True).",
                      [((("function", name), ("module", module), ("event_type", kind)), n)
                       for (name, module, kind), n in every.items()])
    merged: dict[tuple[str, str], int] = {}
    for (name, module, _), count in every.items():  # event types added together
        merged[name, module] = merged.get((name, module), 0) + count
    return Family("function_calls_concurrent", "gauge",
                  "Autometrics gauge for tracking concurrent function calls.",
                  [((("function", name), ("module", module), ("service_name", service)), n)
                   for (name, module), n in merged.items()])


def build_info() -> Family:
    """Return ``callmetrics_build_info``: this package's version and the hot path in use."""
    return Family("callmetrics_build_info", "gauge",
                  "callmetrics' version, and its hot path in the exporting process "
                  "(c: the C accelerator, python: the pure-Python twin); always 1.",
                  [((("version", __version__), ("hot_path", IMPLEMENTATION)), 1.0)])


def _callmetrics(snapshots: Sequence[FunctionSnapshot], bounds: tuple[float, ...],
                 exemplars: Mapping[tuple[str, str], Sequence[Exemplar]]) -> list[Family]:
    calls = Family("callmetrics_calls_total", "counter", "Calls of each tracked function, exact.")
    failures = Family("callmetrics_failures_total", "counter",
                      "Calls that raised, exact, by exception type (error_type).")
    duration = Family("callmetrics_call_duration_seconds", "histogram",
                      "Call durations; buckets from the sketch (native: within 1.5%; "
                      "classic: sketch buckets by midpoint), sum and count exact.")
    own = Family("callmetrics_self_seconds_total", "counter",
                 "Seconds of the calls less the tracked calls they made (self time), "
                 "where recorded.")
    overhead = Family("callmetrics_decorator_overhead_seconds_total", "counter",
                      "Seconds the callmetrics decorator added to the calls.")
    for snap in snapshots:
        labels: Labels = (("function", snap.name), ("module", snap.module),
                          ("event_type", snap.event_type))
        calls.series.append((labels, snap.calls))
        failures.series.extend(_by_type(labels, snap))
        duration.series.append((labels, _histogram(
            snap.sketch, snap.calls, snap.total, bounds,
            exemplars.get((snap.name, snap.event_type), ()))))
        if snap.self_time is not None:
            own.series.append((labels, snap.self_time))
        overhead.series.append((labels, snap.overhead))
    overflowed = Family(
        "callmetrics_functions_overflowed", "gauge",
        f"1 once max_functions distinct names were reached: new names are then counted "
        f"together as function=\"{OVERFLOW_NAME}\".",
        [((), float(any(snap.name == OVERFLOW_NAME for snap in snapshots)))])
    return [calls, failures, duration, own, overhead, overflowed, build_info()]


def _by_type(labels: Labels, snap: FunctionSnapshot) -> list[tuple[Labels, float]]:
    """The failures of one function by ``error_type`` (one series at 0 when there are none).

    A store written before the types were recorded gives ``error_type="(unknown)"``.
    """
    types = snap.failure_types()
    if not types:
        return [(labels, 0)]
    return [((*labels, ("error_type", name)), count) for name, count in sorted(types.items())]


@dataclass(slots=True)
class _Merged:
    calls: int = 0
    failures: int = 0
    total: float = 0.0
    sketch: DurationSketch = field(default_factory=DurationSketch)
    callers: dict[str, int] = field(default_factory=dict)
    exemplars: list[Exemplar] = field(default_factory=list)


def _merge(snapshots: Iterable[FunctionSnapshot],
           exemplars: Mapping[tuple[str, str], Sequence[Exemplar]],
           ) -> dict[tuple[str, str], _Merged]:
    merged: dict[tuple[str, str], _Merged] = {}
    for snap in snapshots:
        entry = merged.get((snap.name, snap.module))
        if entry is None:  # the common case: one event type, the snapshot's own sketch
            entry = merged[snap.name, snap.module] = _Merged(sketch=snap.sketch)
        else:
            entry.sketch = entry.sketch.copy()
            entry.sketch.merge(snap.sketch)
        entry.calls += snap.calls
        entry.failures += snap.failures
        entry.total += snap.total
        for edge in snap.callers:
            entry.callers[edge.name] = entry.callers.get(edge.name, 0) + edge.calls
        entry.exemplars.extend(exemplars.get((snap.name, snap.event_type), ()))
    return merged


def _by_caller(entry: _Merged) -> list[tuple[str, str, int]]:
    """Split the calls by (caller, result) so that both totals are exact.

    Which caller's calls failed is not recorded: failures are put first on the calls
    no tracked function made, then on the callers in name order.  Each caller's total
    and each result's total are exact; only their crossing is an attribution.
    """
    named = sum(entry.callers.values())
    untracked = max(entry.calls - named, 0)
    rows: list[tuple[str, str, int]] = []
    left = entry.failures
    on_untracked = min(left, untracked)
    left -= on_untracked
    rows += [("", "ok", untracked - on_untracked), ("", "error", on_untracked)]
    for caller in sorted(entry.callers):
        calls = entry.callers[caller]
        errors = min(left, calls)
        left -= errors
        rows += [(caller, "ok", calls - errors), (caller, "error", errors)]
    return rows


def _autometrics(snapshots: Sequence[FunctionSnapshot], bounds: tuple[float, ...],
                 service: str, exemplars: Mapping[tuple[str, str], Sequence[Exemplar]],
                 ) -> list[Family]:
    calls = Family("function_calls_total", "counter",
                   "Autometrics counter for tracking function calls (exact).")
    duration = Family("function_calls_duration_seconds", "histogram",
                      "Autometrics histogram for tracking function call duration "
                      "(from callmetrics' sketch; sum and count exact).")
    module_of: dict[str, str] = {}
    for snap in snapshots:
        module_of.setdefault(snap.name, snap.module)
    for (name, module), entry in _merge(snapshots, exemplars).items():
        base: Labels = (("function", name), ("module", module), ("service_name", service))
        for caller, result, count in _by_caller(entry):
            if caller:
                labels = (*base, ("result", result), ("caller_function", caller),
                          ("caller_module", module_of.get(caller, "")))
            else:  # the caller is unknown or untracked: the labels are absent (spec)
                labels = (*base, ("result", result))
            if count or not caller:
                calls.series.append((labels, count))
        duration.series.append((base, _histogram(entry.sketch, entry.calls, entry.total,
                                                 bounds, entry.exemplars)))
    info = Family("build_info", "gauge",
                  "Autometrics info metric for tracking software version and build details.",
                  [((("service_name", service), ("autometrics_version", AUTOMETRICS_VERSION)),
                    1.0)])
    return [calls, duration, info, build_info()]
