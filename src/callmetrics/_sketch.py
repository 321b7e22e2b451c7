"""A bounded, mergeable quantile sketch for durations.

Each value is stored as the top 16 bits of its IEEE-754 single-precision form:
8 exponent bits and 7 mantissa bits, i.e. 128 log-linear buckets per power of two.
A bucket's upper bound is at most 1/128 above its lower bound, so answering with
the bucket's midpoint is within 1/256 (0.4 %) of any value in it.  Positive
float32 values have at most 2**15 such keys, so memory is bounded whatever the
input; real durations (nanoseconds to hours) touch about 5,400 of them.

Bucket keys are computed for whole batches with C-level array conversions, which
is what lets the hot path stay cheap: see ``FunctionStats.drain``.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping

__all__ = ["DurationSketch", "bucket_bounds", "bucket_keys"]

_F32 = struct.Struct("=f")
_U32 = struct.Struct("=I")
# In a native-order array('H') view of float32 values, the high half comes second on
# little-endian machines.
_HIGH = 1 if sys.byteorder == "little" else 0
_MAX_F32 = 3.4028234663852886e38


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


_SPLITS: dict[int, float] = {}


def _split(key: int) -> float:
    """Return the smallest double whose float32 rounding falls in a bucket above ``key``.

    That is the midpoint between the bucket's upper bound and the float32 just below
    it (ties round to the bound, whose low mantissa bits are even).  Memoised: there
    are at most 2**16 keys.
    """
    found = _SPLITS.get(key)
    if found is None:
        top = (key + 1) << 16
        found = _SPLITS[key] = (_F32.unpack(_U32.pack(top))[0]
                                + _F32.unpack(_U32.pack(top - 1))[0]) / 2
    return float(found)


def bucket_bounds(key: int) -> tuple[float, float]:
    """Return the ``[low, high)`` range of seconds that a bucket key covers."""
    return _bound(key), _bound(key + 1)


def _representative(key: int) -> float:
    if key == 0:
        return 0.0
    low, high = bucket_bounds(key)
    return (low + high) / 2


class DurationSketch:
    """A bounded-memory, mergeable sketch that answers duration quantiles.

    Quantiles are within 1 % relative error of the exact sample at index
    ``floor(q * (n - 1))`` of the sorted samples (0.4 % by construction), for any
    number of samples from nanoseconds to hours.  Merging two sketches gives
    exactly the sketch of the union of their samples.
    """

    __slots__ = ("_buckets", "_count", "_max", "_min")

    def __init__(self) -> None:
        """Create an empty sketch."""
        self._buckets: Counter[int] = Counter()
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
        self._buckets[_key(value)] += 1
        self._count += 1
        self._min = min(self._min, value)
        self._max = max(self._max, value)

    def add_sorted(self, values: list[float]) -> None:
        """Add many durations, sorted ascending and known to be valid (the tracker's path).

        A batch whose values fall in few buckets is counted with one bisection per
        bucket; a widely spread one is counted value by value, in bulk.
        """
        n = len(values)
        if not n:
            return
        low, high = values[0], values[-1]
        buckets = self._buckets
        # Estimate how many buckets the middle 80 % spans (128 per power of two).
        inner_low, inner_high = values[n // 10], values[n - 1 - n // 10]
        spread = 128 * math.log2(inner_high / inner_low) if inner_low > 0 else math.inf
        if spread * 8 > n:
            buckets.update(bucket_keys(values))
        else:
            i = 0
            while i < n:
                key = _key(values[i])
                j = bisect_left(values, _split(key), i)
                buckets[key] += j - i
                i = j
        self._count += n
        self._min = min(self._min, low)
        self._max = max(self._max, high)

    def merge(self, other: DurationSketch) -> None:
        """Add every value of ``other`` to this sketch."""
        if not isinstance(other, DurationSketch):
            raise TypeError(f"can only merge a DurationSketch, got {type(other).__name__}")
        if other._count == 0:
            return
        self._buckets.update(other._buckets)
        self._count += other._count
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def copy(self) -> DurationSketch:
        """Return an independent copy."""
        twin = DurationSketch()
        twin.merge(self)
        return twin

    def quantile(self, q: float) -> float | None:
        """Return the ``q``-quantile in seconds, or None when the sketch is empty.

        Args:
            q: a number between 0 and 1.

        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be between 0 and 1, got {q!r}")
        if self._count == 0:
            return None
        rank = math.floor(q * (self._count - 1))
        if rank == 0:
            return self._min
        if rank == self._count - 1:
            return self._max
        seen = 0
        for key in sorted(self._buckets):
            seen += self._buckets[key]
            if seen > rank:
                return min(max(_representative(key), self._min), self._max)
        return self._max  # unreachable while counts are consistent

    def summary(self) -> dict[str, float | None]:
        """Return ``min_duration``, ``max_duration`` (0.0 when empty) and ``p50`` to ``p99``.

        These are the sketch-derived keys shared by ``get_stats()`` and ``to_dict()``.
        """
        return {
            "min_duration": self.min or 0.0,
            "max_duration": self.max or 0.0,
            "p50": self.quantile(0.50),
            "p90": self.quantile(0.90),
            "p95": self.quantile(0.95),
            "p99": self.quantile(0.99),
        }

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Return several quantiles at once (one pass over the buckets)."""
        return [self.quantile(q) for q in qs]

    def buckets(self) -> Iterator[tuple[float, float, int]]:
        """Yield ``(low, high, count)`` for each non-empty bucket, in increasing order."""
        for key in sorted(self._buckets):
            low, high = bucket_bounds(key)
            yield low, high, self._buckets[key]

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready form that :meth:`from_dict` reads back."""
        return {
            "count": self._count,
            "min": self.min,
            "max": self.max,
            "buckets": {str(key): n for key, n in sorted(self._buckets.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> DurationSketch:
        """Rebuild a sketch from :meth:`to_dict` output.

        Raises:
            TypeError: when the data has the wrong shape.
            ValueError: when the data is inconsistent.

        """
        sketch = cls()
        raw = data.get("buckets")
        if not isinstance(raw, Mapping):
            raise TypeError("sketch data needs a 'buckets' mapping")
        for key, n in raw.items():
            try:
                k = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"bad sketch bucket key {key!r}") from None
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= k < 1 << 16 or n <= 0:
                raise ValueError(f"bad sketch bucket {key!r}: {n!r}")
            sketch._buckets[k] = n
        sketch._count = sum(sketch._buckets.values())
        if sketch._count != data.get("count"):
            raise ValueError("sketch count does not match its buckets")
        if sketch._count:
            low, high = data.get("min"), data.get("max")
            if not isinstance(low, int | float) or not isinstance(high, int | float):
                raise ValueError("sketch data needs numeric 'min' and 'max'")
            if not 0.0 <= low <= high <= _MAX_F32:  # also rejects NaN
                raise ValueError(f"sketch min and max must satisfy 0 <= min <= max, got "
                                 f"{low!r} and {high!r}")
            sketch._min, sketch._max = float(low), float(high)
        return sketch

    def __len__(self) -> int:
        """Return the number of non-empty buckets (the memory the sketch holds)."""
        return len(self._buckets)

    def __eq__(self, other: object) -> bool:
        """Two sketches are equal when they hold the same values' buckets."""
        if not isinstance(other, DurationSketch):
            return NotImplemented
        return (
            self._buckets == other._buckets
            and self._count == other._count
            and self.min == other.min
            and self.max == other.max
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable like a list

    def __repr__(self) -> str:
        """Show the count and the median."""
        return f"DurationSketch(count={self._count}, p50={self.quantile(0.5)})"
