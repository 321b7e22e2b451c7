"""The classic histogram's bucket bounds: validated, fixed, or derived from the data.

Classic (``le``) buckets are only as good as their bounds.  By default they are
derived from the data: ten bounds per decade (the ISO R10 preferred numbers 1, 1.25,
1.6, 2, 2.5, 3.15, 4, 5, 6.3, 8 times a power of ten, each about 26 % above the
previous), over the whole decades the calls of every function span plus one decade
of margin each side (calls from 100 ns to 1 s get 10 ns to 10 s: 91 bounds).  The
bounds are points of one fixed grid, shared by every function (so ``sum by (le)``
across functions works), and only ever added to: a bound once exposed keeps its
meaning and its count only grows.  Bounds are added when calls come ten times
faster or slower than any before; a ``rate()`` window over that scrape undercounts
the new buckets (a new series has no earlier sample), so the first minutes of a
program, while its range settles, read coarser than the rest.  Within a bucket
``histogram_quantile`` interpolates linearly; over a 26 % wide bucket that is within
about 1 % of the truth for smoothly spread durations.  ``DEFAULT_BUCKETS`` (1 µs to
10 s, 1-2.5-5 per decade) is the fixed
alternative, and any explicit list works as before.

Counts come from the duration sketch: a sketch bucket counts under a bound when its
midpoint is at most the bound (within 0.4 % of every value in it).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from functools import lru_cache

from callmetrics._engine.sketch import DurationSketch
from callmetrics.exporters.keys import dense, midpoints

__all__ = ["DEFAULT_BUCKETS", "R10", "check_buckets", "cumulative_counts", "derived_bounds"]

# A fixed alternative to the derived bounds: one microsecond to ten seconds.
DEFAULT_BUCKETS: tuple[float, ...] = (
    *(float(f"{mantissa}e{exponent}")
      for exponent in range(-6, 1) for mantissa in ("1", "2.5", "5")),
    10.0,
)

# The mantissas of the derived grid (ISO 3 R10), written so each bound prints short.
R10 = ("1", "1.25", "1.6", "2", "2.5", "3.15", "4", "5", "6.3", "8")
# The grid's reach: a nanosecond to a little over a day (nothing real lies outside).
_LOWEST_EXPONENT, _HIGHEST_EXPONENT = -9, 5
_GRID: tuple[float, ...] = tuple(
    float(f"{mantissa}e{exponent}")
    for exponent in range(_LOWEST_EXPONENT, _HIGHEST_EXPONENT) for mantissa in R10)


def check_buckets(buckets: Iterable[float] | None) -> tuple[float, ...] | None:
    """Return validated bucket bounds (+Inf left out), or None to derive them from the data.

    Raises:
        TypeError, ValueError: naming the bad bound.

    """
    if buckets is None:
        return None
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


def derived_bounds(sketches: Iterable[DurationSketch]) -> tuple[float, ...]:
    """Return the grid's bounds spanning every non-zero duration the sketches hold.

    From the largest grid point at most the fastest call to the smallest at least the
    slowest (both clamped to the grid's nanosecond-to-a-day reach); empty when there
    is no non-zero duration.
    """
    low = math.inf
    high = 0.0
    for sketch in sketches:
        # The midpoint of the first bucket above zero: a value the sketch counts as
        # zero must not move the bounds, whatever order calls come in.
        smallest = next(((b[0] + b[1]) / 2 for b in sketch.buckets() if b[0] > 0.0), None)
        if smallest is None:
            continue
        low = min(low, smallest)
        high = max(high, sketch.max or 0.0)
    if math.isinf(low):
        return ()
    # Whole decades, and one more each side: the bounds change only when calls come
    # ten times faster or slower than any before, not as each new extreme arrives.
    bottom = float(f"1e{math.floor(math.log10(low)) - 1}")
    top = float(f"1e{math.ceil(math.log10(high)) + 1}") if high > 0 else bottom
    first = max(bisect_right(_GRID, bottom) - 1, 0)
    last = min(bisect_left(_GRID, top), len(_GRID) - 1)
    return _GRID[first:last + 1]


@lru_cache(maxsize=8)
def _thresholds(bounds: tuple[float, ...]) -> list[int]:
    """For each bound, how many keys have a midpoint at most the bound."""
    table = midpoints()
    return [bisect_right(table, bound) for bound in bounds]


def cumulative_counts(sketch: DurationSketch, bounds: Sequence[float], calls: int) -> list[int]:
    """Return, for each bound, how many calls took at most that long (from the sketch).

    A sketch bucket counts under a bound when its midpoint is at most the bound,
    whatever else the sketch holds (no shortcut through the slowest call, which a
    later, slower call would undo): so each count only grows as calls are added, as
    a Prometheus bucket or an OpenTelemetry counter must.
    """
    if not bounds:
        return []
    counts = dense(sketch)
    running = counts.running()
    size = len(running)
    out: list[int] = []
    for keys_below in _thresholds(tuple(bounds)):
        at = min(keys_below - counts.offset, size)
        out.append(min(counts.zeros + (running[at - 1] if at > 0 else 0), calls))
    return out
