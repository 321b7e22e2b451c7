"""Exporters to monitoring systems: ``callmetrics.exporters.prometheus`` and ``.otel``.

Each needs its extra (``pip install 'callmetrics[prometheus]'`` or
``'callmetrics[otel]'``); this package itself imports neither, so ``import
callmetrics`` works without them.
"""

import math
from collections.abc import Iterable

from callmetrics._engine.sketch import DurationSketch

__all__ = ["DEFAULT_BUCKETS"]

# Upper bounds (seconds) of the duration histogram's buckets, +Inf excluded:
# prometheus_client's own defaults, familiar to operators, and they include
# callmetrics' default 2/5/10 s thresholds.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)


def _check_buckets(buckets: Iterable[float] | None) -> tuple[float, ...]:
    """Return validated bucket bounds (DEFAULT_BUCKETS for None), +Inf left out."""
    if buckets is None:
        return DEFAULT_BUCKETS
    if isinstance(buckets, str | bytes) or not isinstance(buckets, Iterable):
        raise TypeError(f"buckets must be an iterable of numbers, got {type(buckets).__name__}")
    bounds: list[float] = []
    for bound in buckets:
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise TypeError(f"buckets must hold numbers, got {bound!r}")
        if math.isnan(bound) or bound < 0:
            raise ValueError(f"buckets must be >= 0, got {bound!r}")
        if bounds and bound <= bounds[-1]:
            raise ValueError(f"buckets must be strictly increasing, got {bound!r} after "
                             f"{bounds[-1]!r}")
        bounds.append(float(bound))
    if bounds and math.isinf(bounds[-1]):
        bounds.pop()  # +Inf is always the last bucket; accept it spelled out
    return tuple(bounds)


def _cumulative_counts(sketch: DurationSketch, bounds: tuple[float, ...],
                       calls: int) -> list[int]:
    """Return, for each bound, how many calls took at most that long (from the sketch).

    A sketch bucket counts under a bound when its midpoint is at most the bound,
    whatever else the sketch holds (no shortcut through the slowest call, which a
    later, slower call would undo): so each count only grows as calls are added, as
    a Prometheus bucket or an OpenTelemetry counter must.
    """
    counts: list[int] = []
    seen = 0
    pending = iter(sketch.buckets())  # increasing, so one pass serves every bound
    bucket = next(pending, None)
    for bound in bounds:
        while bucket is not None and (
                0.0 if bucket[0] == 0.0 else (bucket[0] + bucket[1]) / 2) <= bound:
            seen += bucket[2]
            bucket = next(pending, None)
        counts.append(min(seen, calls))
    return counts
