"""Per-key tables of the sketch's buckets, built once, for reading many sketches fast.

A sketch's buckets are numbered by key (:mod:`callmetrics._engine.sketch_keys`: the
top 16 bits of the float32).  A scrape of a thousand functions reads millions of
buckets, so instead of computing each bucket's bounds as it comes, the exporters
read a sketch in its dense serialised form (``to_dict``: an offset and a list of
counts) and look keys up in these tables: each key's midpoint (what a classic bound
compares) and its native bucket index (:mod:`callmetrics.exporters.native`).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from functools import cache
from itertools import accumulate

from callmetrics._engine.sketch import DurationSketch

__all__ = ["Dense", "dense", "midpoints", "native_indexes"]

_KEYS = 0x7F80  # keys of the finite float32 values, and the one past the largest
ZERO_KEYS = 0x80  # keys below this (zero and subnormals) are below 2**-126 s


@cache
def _lows() -> array[float]:
    """Each key's lower bound, float32 reinterpreted from its top 16 bits (C-level)."""
    words = array("I" if array("I").itemsize == 4 else "L", (k << 16 for k in range(_KEYS + 1)))
    lows = array("f")
    lows.frombytes(words.tobytes())
    return array("d", lows)


@cache
def midpoints() -> list[float]:
    """Each key's midpoint in seconds (0.0 for key 0), increasing."""
    lows = _lows()
    # The last key's upper bound is +inf (the float32 past the largest): its low stands in.
    return [0.0, *((lows[k] + lows[k + 1]) / 2 for k in range(1, _KEYS - 1)), lows[_KEYS - 1]]


@cache
def native_indexes(schema: int) -> list[int]:
    """Each key's native bucket index: ``ceil(log2(midpoint) * 2**schema)``; 0 below 2**-126."""
    per_octave = 1 << schema
    indexes = [0] * ZERO_KEYS
    for midpoint in midpoints()[ZERO_KEYS:]:
        fraction, exponent = math.frexp(midpoint)  # midpoint = fraction * 2**exponent
        indexes.append(exponent * per_octave + math.ceil(math.log2(fraction) * per_octave))
    return indexes


@dataclass(frozen=True, slots=True)
class Dense:
    """A sketch's counts: ``zeros`` (key 0), then ``counts[i]`` for key ``offset + i``."""

    zeros: int
    offset: int
    counts: list[int]

    def running(self) -> list[int]:
        """Return the running totals of ``counts``."""
        return list(accumulate(self.counts))


def dense(sketch: DurationSketch) -> Dense:
    """Return ``sketch``'s counts in dense form (one C-level copy)."""
    data = sketch.to_dict()
    counts = data["counts"]
    offset = data["offset"]
    zeros = data["zeros"]
    assert isinstance(counts, list)  # noqa: S101  # to_dict's documented shape, for mypy
    assert isinstance(offset, int)  # noqa: S101  # likewise
    assert isinstance(zeros, int)  # noqa: S101  # likewise
    return Dense(zeros, offset, counts)
