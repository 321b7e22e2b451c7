"""A bounded, mergeable quantile sketch for durations.

Each value is put in the bucket named by the top 16 bits of its IEEE-754
single-precision form: 8 exponent bits and 7 mantissa bits, i.e. 128 log-linear
buckets per power of two.  A bucket's upper bound is at most 1/128 above its lower
bound, so answering with the bucket's midpoint is within 1/256 (0.4 %) of any value
in it.  Bucket 0 holds zero (and values below 2**-133 s, which float32 cannot tell
from it).

The counts live in one dense ``array`` covering the buckets from the smallest
value's to the largest's, grown on demand, whose item size grows with the number
of values (one byte per bucket below 256 values, up to eight), so a sketch costs
a few hundred bytes once called and a few kilobytes for millions of spread values.
Positive float32 values have at most 2**15 buckets, so memory is bounded whatever
the input; real durations (nanoseconds to hours) span at most about 5,400.

Counting, merging and quantiles run over the arrays with C-level iterators
(``map``, ``accumulate``, ``bisect``) instead of a Python loop per value or bucket:
see :meth:`DurationSketch.add_sorted`, which is what the tracker calls when it
drains a buffer.  A sketch is not thread-safe: its owner serialises changes.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from itertools import accumulate, chain, compress, count, repeat
from operator import add, gt, mul, sub
from typing import Literal

__all__ = ["DurationSketch", "bucket_bounds", "bucket_keys"]

_F32 = struct.Struct("=f")
_U32 = struct.Struct("=I")
# In a native-order array('H') view of float32 values, the high half comes second on
# little-endian machines.
_HIGH = 1 if sys.byteorder == "little" else 0
_MAX_F32 = 3.4028234663852886e38
_MAX_KEY = 0x7F7F  # the bucket of the largest finite float32
_WORD: Literal["I", "L"] = "I" if array("I").itemsize == 4 else "L"

_Code = Literal["B", "H", "I", "L", "Q"]
# Count arrays by item size: the smallest whose items hold a sketch's whole count
# can hold any of its buckets.
_CODES: tuple[tuple[int, _Code], ...] = (
    (0xFF, "B"), (0xFFFF, "H"), (0xFFFF_FFFF, _WORD), (0xFFFF_FFFF_FFFF_FFFF, "Q"))
_MAX_COUNT = _CODES[-1][0]
_CAPACITY = {array(code).itemsize: most for most, code in _CODES}

# A batch spanning fewer buckets than its values / _PER_BUCKET is counted by one
# bisection per bucket; a wider one value by value (both in C).  Measured with
# benchmarks/sketch.py: a bisection costs about as much as counting 2 values.
_PER_BUCKET = 2


def _key(value: float) -> int:
    return int(_U32.unpack(_F32.pack(value))[0]) >> 16


def bucket_keys(values: Iterable[float]) -> array[int]:
    """Return the bucket key of every value, computed in bulk.

    Args:
        values: non-negative finite durations in seconds.

    """
    halves = array("H")
    halves.frombytes(array("f", values).tobytes())
    return halves[_HIGH::2]


def _bound(key: int) -> float:
    return float(_F32.unpack(_U32.pack(key << 16))[0])


def bucket_bounds(key: int) -> tuple[float, float]:
    """Return the ``[low, high)`` range of seconds that a bucket key covers."""
    return _bound(key), _bound(key + 1)


def _representative(key: int) -> float:
    if key == 0:
        return 0.0
    low, high = bucket_bounds(key)
    return (low + high) / 2


def _splits(low: int, high: int) -> Iterator[float]:
    """Yield, for each key from ``low`` up to ``high`` excluded, the smallest double above it.

    That is the midpoint between the next bucket's lower bound and the float32 just
    below it: ties round to the bound, whose low mantissa bits are even.  Both are
    float32 values of one binade, so their sum and its half are exact in a double.
    """
    step = 1 << 16
    tops = array("f")
    tops.frombytes(array(_WORD, range((low + 1) << 16, (high << 16) + 1, step)).tobytes())
    belows = array("f")
    belows.frombytes(array(_WORD, range(((low + 1) << 16) - 1, high << 16, step)).tobytes())
    return map(mul, map(add, tops, belows), repeat(0.5))


_ABOVE_ZERO = next(_splits(0, 1))  # the smallest double outside bucket 0


def _code_for(total: int) -> _Code:
    for most, code in _CODES:
        if total <= most:
            return code
    raise OverflowError(f"a sketch holds at most {_MAX_COUNT} values")


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
        if total > _CAPACITY[self._counts.itemsize]:
            self._counts = array(_code_for(total), self._counts)

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
        if not 0.0 <= value <= _MAX_F32:
            raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
        key = _key(value)
        self._reserve(self._count + 1)
        if key:
            self._cover(key, key)
            self._counts[key - self._offset] += 1
        else:
            self._zeros += 1
        self._count += 1
        self._min = min(self._min, value)
        self._max = max(self._max, value)

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
        start = bisect_left(values, _ABOVE_ZERO) if low < _ABOVE_ZERO else 0
        self._zeros += start
        if start < n:
            first, last = _key(values[start]), _key(high)
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

    def _add_counts(self, at: int, theirs: array[int]) -> None:
        """Add ``theirs`` to the counts from index ``at`` on, as two big integers.

        Each count fits its item and so does their sum (``_reserve`` made the items
        wide enough for the whole count), so no carry crosses from one item to the
        next: one C-level addition adds every bucket.
        """
        counts = self._counts
        if theirs.itemsize != counts.itemsize:
            theirs = array(counts.typecode, theirs)
        width = counts.itemsize
        order = sys.byteorder
        with memoryview(counts) as view, view.cast("B") as raw:
            low, high = at * width, (at + len(theirs)) * width
            total = int.from_bytes(raw[low:high], order) + int.from_bytes(theirs, order)
            raw[low:high] = total.to_bytes(high - low, order)

    def _count_by_bucket(self, values: list[float], start: int, first: int, last: int) -> None:
        """Count ``values[start:]`` (keys ``first`` to ``last``) by bisecting at each bound."""
        cuts = list(map(bisect_left, repeat(values), _splits(first, last), repeat(start)))
        cuts.append(len(values))
        tallies = map(sub, cuts, chain((start,), cuts))  # the gaps between the cuts
        self._add_counts(first - self._offset, array(self._counts.typecode, tallies))

    def _count_by_value(self, values: list[float], start: int, first: int, last: int) -> None:
        """Count ``values[start:]`` (keys ``first`` to ``last``) key by key, in C."""
        tally = Counter(bucket_keys(values[start:] if start else values))
        dense = map(tally.get, range(first, last + 1), repeat(0))
        self._add_counts(first - self._offset, array(self._counts.typecode, dense))

    def merge(self, other: DurationSketch) -> None:
        """Add every value of ``other`` to this sketch."""
        if not isinstance(other, DurationSketch):
            raise TypeError(f"can only merge a DurationSketch, got {type(other).__name__}")
        if other._count == 0:
            return
        self._reserve(self._count + other._count)
        if other._counts:
            self._cover(other._offset, other._offset + len(other._counts) - 1)
            self._add_counts(other._offset - self._offset, other._counts)
        self._zeros += other._zeros
        self._count += other._count
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
        return min(max(_representative(key), self._min), self._max)

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
        count_, zeros, offset, counts, low, high = _read(data)
        sketch._count, sketch._zeros, sketch._offset = count_, zeros, offset
        sketch._counts = array(_code_for(count_), counts)
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


# -- reading serialised sketches ---------------------------------------------------------


def _whole(data: Mapping[str, object], field: str, low: int = 0, high: int = _MAX_COUNT) -> int:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"sketch field {field!r} must be a whole number from {low} to {high}, "
                         f"got {value!r}")
    return value


def _number(data: Mapping[str, object], field: str) -> float:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0.0 <= value <= _MAX_F32):  # also rejects NaN
        raise ValueError(f"sketch field {field!r} must be a number from 0 to {_MAX_F32}, "
                         f"got {value!r}")
    return float(value)


def _counts_of(field: str, raw: object) -> list[int]:
    if not isinstance(raw, list):
        raise ValueError(  # noqa: TRY004  # bad data from disk is a ValueError naming the field
            f"sketch field {field!r} must be a list, got {type(raw).__name__}")
    for n in raw:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= _MAX_COUNT:
            raise ValueError(f"sketch field {field!r} must hold whole numbers >= 0, got {n!r}")
    return raw


def _first_version(data: Mapping[str, object]) -> tuple[int, int, list[int]]:
    """Return ``zeros``, ``offset`` and dense counts from version 1's sparse buckets."""
    raw = data.get("buckets")
    if not isinstance(raw, Mapping):
        raise ValueError(  # noqa: TRY004  # bad data from disk is a ValueError naming the field
            f"sketch field 'buckets' must be a mapping, got {type(raw).__name__}")
    sparse: dict[int, int] = {}
    for key, n in raw.items():
        try:
            k = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"sketch field 'buckets' has a bad key {key!r}") from None
        if not 0 <= k <= _MAX_KEY:
            raise ValueError(f"sketch field 'buckets' has a key out of range: {key!r}")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= _MAX_COUNT:
            raise ValueError(f"sketch field 'buckets' must hold counts > 0, got {key!r}: {n!r}")
        sparse[k] = n
    zeros = sparse.pop(0, 0)
    if not sparse:
        return zeros, 0, []
    offset = min(sparse)
    dense = [0] * (max(sparse) - offset + 1)
    for k, n in sparse.items():
        dense[k - offset] = n
    return zeros, offset, dense


def _read(data: object) -> tuple[int, int, int, list[int], float, float]:
    """Validate serialised sketch data; return count, zeros, offset, counts, min and max."""
    if not isinstance(data, Mapping):
        raise ValueError(  # noqa: TRY004  # bad data from disk is a ValueError naming the field
            f"sketch data must be a mapping, got {type(data).__name__}")
    if "version" not in data:
        zeros, offset, counts = _first_version(data)
    else:
        version = data["version"]
        if version != 2 or isinstance(version, bool):
            raise ValueError(f"sketch field 'version' must be 2 or absent, got {version!r}")
        zeros = _whole(data, "zeros")
        counts = _counts_of("counts", data.get("counts"))
        while counts and not counts[-1]:
            counts = counts[:-1]
        offset = _whole(data, "offset", 0, _MAX_KEY)
        skip = next((at for at, n in enumerate(counts) if n), 0)
        counts, offset = counts[skip:], offset + skip
        if counts and (offset == 0 or offset + len(counts) - 1 > _MAX_KEY):
            raise ValueError(f"sketch field 'offset' puts buckets out of range: {offset!r}")
    total = _whole(data, "count")
    if zeros + sum(counts) != total:
        raise ValueError(f"sketch field 'count' is {total!r} but its buckets hold "
                         f"{zeros + sum(counts)}")
    if not total:
        return 0, 0, 0, [], math.inf, 0.0
    low, high = _number(data, "min"), _number(data, "max")
    # min and max were added too, so they lie in the first and last non-empty buckets.
    if not low <= high:
        raise ValueError(f"sketch field 'min' must be at most 'max', got {low!r} > {high!r}")
    first = 0 if zeros else offset
    last = offset + len(counts) - 1 if counts else 0
    for field, value, key in (("min", low, first), ("max", high, last)):
        if _key(value) != key:
            raise ValueError(f"sketch field {field!r} ({value!r}) is not in the "
                             f"{'first' if field == 'min' else 'last'} non-empty bucket")
    return total, zeros, offset, counts, low, high
