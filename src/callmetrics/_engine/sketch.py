"""A bounded, mergeable quantile sketch for durations.

Values are counted in log-linear buckets, 128 per power of two, so that a bucket's
midpoint is within 0.4 % of any value in it (see :mod:`callmetrics._engine.sketch_keys`).

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
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from itertools import accumulate, compress, count, repeat
from operator import gt

from callmetrics._engine.sketch_counts import BucketCounts
from callmetrics._engine.sketch_keys import (
    bounds_table,
    bucket_bounds,
    bucket_keys,
    code_for,
    read,
    representative,
)

__all__ = ["DurationSketch", "bucket_bounds", "bucket_keys"]


class DurationSketch(BucketCounts):
    """A bounded-memory, mergeable sketch that answers duration quantiles.

    The ``q``-quantile is the sample at rank ``floor(q * (n - 1))`` (counting from 0)
    of the ``n`` samples sorted ascending: ``quantile(0)`` is the exact minimum,
    ``quantile(1)`` the exact maximum, and any other answer is within 1 % (0.4 % by
    construction) of that sample, clamped to ``[min, max]``, for any number of
    samples from nanoseconds to hours.  Merging two sketches gives exactly the
    sketch of the union of their samples.
    """

    __slots__ = ()

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
        table = bounds_table()
        if self._zeros:
            yield table[0], table[1], self._zeros
        counts, offset = self._counts, self._offset
        for at in compress(count(), counts):
            key = offset + at
            yield table[key], table[key + 1], counts[at]

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
