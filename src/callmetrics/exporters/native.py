"""A duration sketch as an exponential ("native") histogram: Prometheus's and OpenTelemetry's.

Both formats put bucket boundaries at powers of ``base = 2 ** (2 ** -schema)``.  We
use schema 6 (OpenTelemetry calls it scale 6): 64 buckets per power of two, each
1.09 % wider than the previous, so any value is within 1.09 % of either boundary of
its bucket, and ``histogram_quantile``'s interpolation within a bucket stays within
about 1 % of the truth.

The sketch counts values in 128 *linear* buckets per power of two (the top 7 mantissa
bits of the float32); their edges are not powers of ``base``, so a sketch bucket can
straddle a native boundary.  Each sketch bucket's count goes, whole, to the native
bucket holding its midpoint.  The midpoint is within 1/256 (0.4 %) of every value of
its bucket, so a value can land at most 0.4 % beyond the native bucket it belongs in:
a quantile read from the native histogram is within about 1.5 % (1.09 % + 0.4 %) of
the exact one.  The mapping of a sketch bucket never changes, so native bucket counts
only grow as calls are added.

Values the sketch cannot tell from zero (below 2**-126 s) go to the zero bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from callmetrics._engine.sketch import DurationSketch

__all__ = ["SCHEMA", "ZERO_THRESHOLD", "NativeHistogram", "native_histogram"]

SCHEMA = 6
_PER_OCTAVE = 1 << SCHEMA
# Values at most this count as zero: the sketch's smallest normal float32 bucket starts here.
ZERO_THRESHOLD = 2.0 ** -126
# The native index of each sketch bucket, by the bucket's lower bound (at most 2**15).
_INDEX: dict[float, int] = {}


def _native_index(low: float, high: float) -> int:
    """Return the index of the native bucket ``(base**(i-1), base**i]`` holding the midpoint."""
    found = _INDEX.get(low)
    if found is None:
        fraction, exponent = math.frexp((low + high) / 2)  # midpoint = fraction * 2**exponent
        # log2(midpoint) * 64, rounded up: fraction is in [0.5, 1), so its log2 in [-1, 0).
        found = exponent * _PER_OCTAVE + math.ceil(math.log2(fraction) * _PER_OCTAVE)
        _INDEX[low] = found
    return found


@dataclass(frozen=True, slots=True)
class NativeHistogram:
    """A sketch's counts in schema-6 exponential buckets."""

    zero_count: int
    """Values of at most ``ZERO_THRESHOLD`` seconds."""
    buckets: tuple[tuple[int, int], ...]
    """``(index, count)`` of each non-empty bucket, increasing; bucket ``i`` holds the
    values in ``(2 ** ((i - 1) / 64), 2 ** (i / 64)]`` (Prometheus's numbering;
    OpenTelemetry's index of the same bucket is ``i - 1``)."""

    def spans(self, gap: int = 2) -> Iterator[tuple[int, list[int]]]:
        """Yield ``(first index, counts)`` runs, bridging up to ``gap`` empty buckets.

        Prometheus sends buckets as spans of consecutive indexes; a short run of empty
        buckets costs less as zeros inside one span than as a new span.
        """
        start = 0
        run: list[int] = []
        for index, count in self.buckets:
            if run and index - (start + len(run)) <= gap:
                run.extend([0] * (index - start - len(run)))
                run.append(count)
                continue
            if run:
                yield start, run
            start, run = index, [count]
        if run:
            yield start, run


def native_histogram(sketch: DurationSketch) -> NativeHistogram:
    """Return the sketch's counts in schema-6 buckets (see the module's note on error)."""
    zero = 0
    merged: list[list[int]] = []  # [index, count], increasing
    for low, high, count in sketch.buckets():
        if (low + high) / 2 <= ZERO_THRESHOLD:
            zero += count
            continue
        index = _native_index(low, high)
        if merged and merged[-1][0] == index:
            merged[-1][1] += count
        else:
            merged.append([index, count])
    return NativeHistogram(zero, tuple((index, count) for index, count in merged))
