"""A bounded, mergeable quantile sketch for durations.

Values are counted in log-linear buckets, 128 per power of two, so that a bucket's
midpoint is within 0.4 % of any value in it (see :mod:`callmetrics._sketch_keys`).

The counts live in one dense ``array`` covering the buckets from the smallest
value's to the largest's, grown on demand, whose item size grows with the number
of values (one byte per bucket below 256 values, up to eight), so a sketch costs
a few hundred bytes once called and a few kilobytes for millions of spread values.
Positive float32 values have at most 2**15 buckets, so memory is bounded whatever
the input; real durations (nanoseconds to hours) span at most about 5,400.

Counting, merging and quantiles run over the arrays with C-level iterators
(``map``, ``accumulate``, ``bisect``) and big-integer additions instead of a Python
loop per value or bucket: see :meth:`DurationSketch.add_sorted`, which is what the
tracker calls when it drains a buffer.  A sketch is not thread-safe: its owner
serialises changes.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate, chain, compress, count, repeat
from operator import gt, setitem, sub

from callmetrics._accel import count_values as _count_values_in_c
from callmetrics._sketch_keys import (
    ABOVE_ZERO,
    CAPACITY,
    F32_PACK,
    MAX_F32,
    U32_UNPACK,
    bucket_bounds,
    bucket_keys,
    code_for,
    key_of,
    read,
    representative,
    splits,
    widen,
)

__all__ = ["DurationSketch", "bucket_bounds", "bucket_keys"]

# A batch spanning fewer buckets than its values / _PER_BUCKET is counted by one
# bisection per bucket; a wider one value by value (both in C).  Measured with
# benchmarks/sketch.py: a bisection costs about as much as counting 4 values.
_PER_BUCKET = 4


class DurationSketch:
    """A bounded-memory, mergeable sketch that answers duration quantiles.

    The ``q``-quantile is the sample at rank ``floor(q * (n - 1))`` (counting from 0)
    of the ``n`` samples sorted ascending: ``quantile(0)`` is the exact minimum,
    ``quantile(1)`` the exact maximum, and any other answer is within 1 % (0.4 % by
    construction) of that sample, clamped to ``[min, max]``, for any number of
    samples from nanoseconds to hours.  Merging two sketches gives exactly the
    sketch of the union of their samples.
    """

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

    def merge(self, other: DurationSketch) -> None:
        """Add every value of ``other`` to this sketch."""
        if not isinstance(other, DurationSketch):
            raise TypeError(f"can only merge a DurationSketch, got {type(other).__name__}")
        # Read ``other`` once, and size from what its counts hold: a read nested in
        # a drain of ``other`` on the same thread (a signal handler) may find the
        # counts added but ``_count`` not yet, and must neither overflow nor raise.
        theirs, offset, zeros = other._counts, other._offset, other._zeros
        count = max(other._count, sum(theirs) + zeros)
        if count == 0:
            return
        self._reserve(self._count + count)
        if theirs:
            self._cover(offset, offset + len(theirs) - 1)
            self._add_counts(offset - self._offset, theirs)
        self._zeros += zeros
        self._count += count
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def copy(self) -> DurationSketch:
        """Return an independent copy."""
        twin = DurationSketch()
        twin._counts = array(self._counts.typecode, self._counts)
        twin._offset = self._offset
        twin._zeros = self._zeros
        twin._count = self._count
        twin._min = self._min
        twin._max = self._max
        return twin

    # -- reading ----------------------------------------------------------------------

    def _rank(self, q: float) -> int:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be between 0 and 1, got {q!r}")
        return math.floor(q * (self._count - 1))

    def _answer(self, key: int) -> float:
        return min(max(representative(key), self._min), self._max)

    def quantile(self, q: float) -> float | None:
        """Return the ``q``-quantile in seconds, or None when the sketch is empty.

        One C-level scan of the counts, from whichever end is nearer the rank.

        Args:
            q: a number between 0 and 1.

        """
        rank = self._rank(q)
        if self._count == 0:
            return None
        if rank == 0:
            return self._min
        if rank == self._count - 1:
            return self._max
        if rank < self._zeros:
            return self._answer(0)
        rank -= self._zeros
        counts = self._counts
        positive = self._count - self._zeros
        if rank < positive // 2:
            at = next(compress(count(), map(gt, accumulate(counts), repeat(rank))))
        else:
            above = positive - 1 - rank  # how many values come after the one wanted
            at = len(counts) - 1 - next(
                compress(count(), map(gt, accumulate(reversed(counts)), repeat(above))))
        return self._answer(self._offset + at)

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Return several quantiles at once (one pass over the buckets)."""
        ranks = [self._rank(q) for q in qs]
        if self._count == 0:
            return [None] * len(ranks)
        last = self._count - 1
        totals: list[int] = []  # running counts of the positive buckets, made once
        answers: list[float | None] = []
        for rank in ranks:
            if rank == 0:
                answers.append(self._min)
            elif rank == last:
                answers.append(self._max)
            elif rank < self._zeros:
                answers.append(self._answer(0))
            else:
                if not totals:
                    totals = list(accumulate(self._counts))
                at = bisect_right(totals, rank - self._zeros)
                answers.append(self._answer(self._offset + at))
        return answers

    def summary(self) -> dict[str, float | None]:
        """Return ``min_duration``, ``max_duration`` (0.0 when empty) and ``p50`` to ``p99``.

        These are the sketch-derived keys shared by ``get_stats()`` and ``to_dict()``.
        """
        p50, p90, p95, p99 = self.quantiles((0.50, 0.90, 0.95, 0.99))
        return {
            "min_duration": self.min or 0.0,
            "max_duration": self.max or 0.0,
            "p50": p50,
            "p90": p90,
            "p95": p95,
            "p99": p99,
        }

    def _keyed(self) -> Iterator[tuple[int, int]]:
        """Yield ``(key, count)`` for each non-empty bucket, in increasing order."""
        if self._zeros:
            yield 0, self._zeros
        counts, offset = self._counts, self._offset
        for at in compress(count(), counts):
            yield offset + at, counts[at]

    def buckets(self) -> Iterator[tuple[float, float, int]]:
        """Yield ``(low, high, count)`` for each non-empty bucket, in increasing order."""
        for key, n in self._keyed():
            low, high = bucket_bounds(key)
            yield low, high, n

    # -- serialisation ----------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready form that :meth:`from_dict` reads back (version 2).

        ``counts`` are the counts of the buckets ``offset``, ``offset + 1``, ... up
        to the largest value's; ``zeros`` is the count of bucket 0.
        """
        return {
            "version": 2,
            "count": self._count,
            "min": self.min,
            "max": self.max,
            "zeros": self._zeros,
            "offset": self._offset if self._counts else 0,
            "counts": self._counts.tolist(),
        }

    @classmethod
    def from_dict(cls, data: object) -> DurationSketch:
        """Rebuild a sketch from :meth:`to_dict` output, of this version or the first.

        The first version (no ``version`` field) is ``{"count", "min", "max",
        "buckets": {"<key>": <count>, ...}}``; stores written with it load exactly.

        Raises:
            ValueError: naming the field, when the data is malformed or inconsistent.

        """
        sketch = cls()
        count_, zeros, offset, counts, low, high = read(data)
        sketch._count, sketch._zeros, sketch._offset = count_, zeros, offset
        sketch._counts = array(code_for(count_), counts)
        if count_:
            sketch._min, sketch._max = low, high
        return sketch

    # -- the rest ---------------------------------------------------------------------

    def __len__(self) -> int:
        """Return the number of non-empty buckets."""
        return (self._zeros > 0) + len(self._counts) - self._counts.count(0)

    def __sizeof__(self) -> int:
        """Return the bytes the sketch holds, its count array included."""
        return object.__sizeof__(self) + sys.getsizeof(self._counts)

    def __eq__(self, other: object) -> bool:
        """Two sketches are equal when they hold the same values' buckets."""
        if not isinstance(other, DurationSketch):
            return NotImplemented
        return (
            self._count == other._count
            and self._zeros == other._zeros
            and self.min == other.min
            and self.max == other.max
            and (not self._counts or self._offset == other._offset)
            and self._counts == other._counts
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable like a list

    def __repr__(self) -> str:
        """Show the count and the median."""
        return f"DurationSketch(count={self._count}, p50={self.quantile(0.5)})"
