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

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import compress

from callmetrics._engine.sketch import DurationSketch
from callmetrics.exporters.keys import ZERO_KEYS, dense, native_indexes

__all__ = ["SCHEMA", "ZERO_THRESHOLD", "NativeHistogram", "native_histogram"]

SCHEMA = 6
# Values at most this count as zero: the sketch's smallest normal float32 bucket starts here.
ZERO_THRESHOLD = 2.0 ** -126
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
    counts = dense(sketch)
    offset, values = counts.offset, counts.counts
    below = max(min(ZERO_KEYS - offset, len(values)), 0)  # keys counted as zero
    zero = counts.zeros + sum(values[:below])
    values = values[below:]
    table = native_indexes(SCHEMA)
    first = offset + below
    indexes = compress(table[first:first + len(values)], values)  # of non-empty keys only
    merged: list[tuple[int, int]] = []
    last_index = None
    held = 0
    for index, count in zip(indexes, compress(values, values), strict=False):
        if index == last_index:
            held += count
            continue
        if last_index is not None:
            merged.append((last_index, held))
        last_index, held = index, count
    if last_index is not None:
        merged.append((last_index, held))
    return NativeHistogram(zero, tuple(merged))
