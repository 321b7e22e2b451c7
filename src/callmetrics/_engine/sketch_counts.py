"""The counts behind ``DurationSketch``: dense log-linear buckets, and adding values.

``BucketCounts`` holds the sketch's state (one dense ``array`` of bucket counts from
the smallest value's bucket to the largest's, grown on demand and widened as counts
grow, plus the exact count, minimum and maximum) and every way of adding values to
it, one at a time or a drained chunk in bulk; ``sketch.DurationSketch`` adds
merging, quantiles and serialisation on top.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Sequence
from itertools import chain, repeat
from operator import setitem, sub

from callmetrics._engine.accel import count_values as _count_values_in_c
from callmetrics._engine.sketch_keys import (
    ABOVE_ZERO,
    CAPACITY,
    F32_PACK,
    MAX_F32,
    U32_UNPACK,
    bucket_keys,
    code_for,
    key_of,
    splits,
    widen,
)

__all__ = ["BucketCounts"]

# A batch spanning fewer buckets than its values / _PER_BUCKET is counted by one
# bisection per bucket; a wider one value by value (both in C).  Measured with
# benchmarks/sketch.py: a bisection costs about as much as counting 4 values.
_PER_BUCKET = 4


class BucketCounts:
    """A sketch's bucket counts, exact count, minimum and maximum, and adding to them."""

    __slots__ = ("_count", "_counts", "_max", "_min", "_offset", "_zeros")

    def __init__(self) -> None:
        """Create an empty sketch."""
        self._counts: array[int] = array("B")  # buckets _offset, _offset + 1, ...
        self._offset = 0
        self._zeros = 0  # the count of bucket 0, kept apart so the array starts near min
        self._count = 0
        self._min = math.inf
        self._max = 0.0

    @property
    def count(self) -> int:
        """The number of values added, merges included."""
        return self._count

    @property
    def min(self) -> float | None:
        """The smallest value added, exactly, or None when empty."""
        return self._min if self._count else None

    @property
    def max(self) -> float | None:
        """The largest value added, exactly, or None when empty."""
        return self._max if self._count else None

    # -- storage ----------------------------------------------------------------------

    def _reserve(self, total: int) -> None:
        """Widen the count array's items so that they can hold ``total``."""
        if total > CAPACITY[self._counts.itemsize]:
            self._counts = widen(self._counts, code_for(total))

    def _cover(self, low: int, high: int) -> None:
        """Grow the count array to cover the keys from ``low`` to ``high`` (both >= 1)."""
        counts = self._counts
        size = len(counts)
        width = counts.itemsize
        if not size:
            self._offset = low
            counts.frombytes(bytes((high - low + 1) * width))
            return
        if high >= self._offset + size:
            counts.frombytes(bytes((high - self._offset - size + 1) * width))
        if low < self._offset:
            counts[0:0] = array(counts.typecode, bytes((self._offset - low) * width))
            self._offset = low

    # -- adding -----------------------------------------------------------------------

    def add(self, seconds: float) -> None:
        """Add one duration.

        Args:
            seconds: a finite, non-negative number of seconds.

        Raises:
            TypeError: for something that is not a number.
            ValueError: for a negative, infinite or NaN value.

        """
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"seconds must be a number, got {type(seconds).__name__}")
        value = float(seconds)
        if not 0.0 <= value <= MAX_F32:
            raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
        self.add_one(value)

    def add_sorted(self, values: list[float]) -> None:
        """Add many durations, sorted ascending and known to be valid (the tracker's path).

        A batch spanning few buckets for its size is counted with one C-level
        bisection per bucket; a widely spread one is converted to keys and counted
        value by value, in bulk.  No Python code runs per value either way.
        """
        n = len(values)
        if not n:
            return
        low, high = values[0], values[-1]
        self._reserve(self._count + n)
        start = bisect_left(values, ABOVE_ZERO) if low < ABOVE_ZERO else 0
        self._zeros += start
        if start < n:
            first, last = key_of(values[start]), key_of(high)
            self._cover(first, last)
            if first == last:
                self._counts[first - self._offset] += n - start
            elif (last - first + 1) * _PER_BUCKET <= n - start:
                self._count_by_bucket(values, start, first, last)
            else:
                self._count_by_value(values, start, first, last)
        self._count += n
        self._min = min(self._min, low)
        self._max = max(self._max, high)

    def add_one(self, value: float) -> None:
        """Add one duration known to be valid: ``add_sorted([value])``, without a list.

        ``add`` once the value is checked, and the drain's path for a function met once
        in a chunk (many functions called in turn), where the per-batch work of
        ``add_sorted`` would dominate: so the common case (a bucket already covered,
        items wide enough) runs here inline, with no further call.
        """
        count = self._count + 1
        counts = self._counts
        if count > CAPACITY[counts.itemsize]:
            self._reserve(count)
            counts = self._counts
        if value < ABOVE_ZERO:
            self._zeros += 1
        else:
            key = U32_UNPACK(F32_PACK(value))[0] >> 16  # key_of(value), inline
            at = key - self._offset
            if 0 <= at < len(counts):
                counts[at] += 1
            else:
                self._cover(key, key)
                self._counts[key - self._offset] += 1
        self._count = count
        if value < self._min:  # noqa: PLR1730  # min() is a call per value: 18% of a fold
            self._min = value
        if value > self._max:  # noqa: PLR1730  # as above
            self._max = value

    def add_unsorted(self, values: Sequence[float], low: float, high: float) -> None:
        """Add many durations in any order, known to be valid, with their min and max.

        The drain's path when nothing else needs them sorted: bucket keys computed and
        counted in C by the accelerator (``values`` a list of floats or an
        ``array('d')``), else computed in bulk and counted by ``Counter``; no
        per-value Python code and no sort.  A drain folds a chunk's functions one
        after another through here, so the common case runs inline.
        """
        if not values:
            return
        # Keys grow with values: the extremes' keys bound them all (key_of, inline).
        first = U32_UNPACK(F32_PACK(low))[0] >> 16
        last = U32_UNPACK(F32_PACK(high))[0] >> 16
        if first == 0:  # zero-length calls (a coarse clock): the sorted path sets them apart
            self.add_sorted(sorted(values))
            return
        n = len(values)
        count = self._count + n
        if count > CAPACITY[self._counts.itemsize]:
            self._reserve(count)
        if first < self._offset or last >= self._offset + len(self._counts):
            self._cover(first, last)
        if first == last:
            self._counts[first - self._offset] += n
        else:
            self._count_values(values, first, last)
        self._count = count
        self._min = min(self._min, low)
        self._max = max(self._max, high)

    def _add_counts(self, at: int, theirs: array[int]) -> None:
        """Add ``theirs`` to the counts from index ``at`` on, as two big integers.

        Each count fits its item and so does their sum (``_reserve`` made the items
        wide enough for the whole count), so no carry crosses from one item to the
        next: one C-level addition adds every bucket.
        """
        counts = self._counts
        if theirs.itemsize < counts.itemsize:
            theirs = widen(theirs, counts.typecode)  # type: ignore[arg-type]  # one of ours
        elif theirs.itemsize > counts.itemsize:
            # Wider items than their sum needs: a sketch read in the middle of its own
            # add (a read nested in a drain, on the same thread), widened before counting.
            self._counts = counts = widen(counts, theirs.typecode)  # type: ignore[arg-type]  # one of ours
        width = counts.itemsize
        order = sys.byteorder
        with memoryview(counts) as view, view.cast("B") as raw:
            low, high = at * width, (at + len(theirs)) * width
            total = int.from_bytes(raw[low:high], order) + int.from_bytes(theirs, order)
            raw[low:high] = total.to_bytes(high - low, order)

    def _count_by_bucket(self, values: list[float], start: int, first: int, last: int) -> None:
        """Count ``values[start:]`` (keys ``first`` to ``last``) by bisecting at each bound."""
        cuts = list(map(bisect_left, repeat(values), splits(first, last), repeat(start)))
        cuts.append(len(values))
        tallies = map(sub, cuts, chain((start,), cuts))  # the gaps between the cuts
        self._add_counts(first - self._offset, array(self._counts.typecode, tallies))

    def _count_by_value(self, values: list[float], start: int, first: int, last: int) -> None:
        """Count ``values[start:]`` (keys ``first`` to ``last``) key by key, in bulk."""
        self._count_values(values[start:] if start else values, first, last)

    def _count_values(self, values: Sequence[float], first: int, last: int) -> None:
        """Add ``values`` (keys ``first`` to ``last``) to the counts, in bulk.

        With the accelerator, keys are computed and counted in C straight from the
        values; else computed in bulk (``bucket_keys``) and counted by ``Counter``.
        """
        if _count_values_in_c is not None:
            # Straight into the counts: they cover first..last, their items are wide
            # enough for the new total, and C runs no Python code meanwhile (nothing
            # reads the sketch half counted).
            _count_values_in_c(values, self._counts, self._offset)
            return
        tally = Counter(bucket_keys(values))
        # A zeroed array indexed by key itself (at most 2**15 items, freed at once) saves
        # a subtraction per bucket; operator.setitem is the cheapest call map can make.
        dense = array(self._counts.typecode, bytes((last + 1) * self._counts.itemsize))
        deque(map(setitem, repeat(dense), tally, tally.values()), maxlen=0)
        self._add_counts(first - self._offset, dense[first:])
