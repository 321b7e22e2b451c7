"""The duration sketch's buckets: keys, bounds, and reading its serialised forms.

A value's bucket key is the top 16 bits of its IEEE-754 single-precision form: 8
exponent bits and 7 mantissa bits, i.e. 128 log-linear buckets per power of two.  A
bucket's upper bound is at most 1/128 above its lower bound, so its midpoint is within
1/256 (0.4 %) of any value in it, for values from 2**-126 s (any real duration) up.
Key 0 holds zero (and values below 2**-133 s, which float32 cannot tell from it); the
largest finite float32 has key ``0x7F7F``.  Keys are computed for whole batches with
C-level array conversions (:func:`bucket_keys`).

:func:`read` validates what :meth:`DurationSketch.to_dict` wrote, in either version,
for ``DurationSketch.from_dict``: everything read back from disk is checked.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping
from itertools import repeat
from operator import add, mul
from typing import Literal

__all__ = [
    "ABOVE_ZERO", "CAPACITY", "F32_PACK", "MAX_COUNT", "MAX_F32", "U32_UNPACK",
    "bounds_table", "bucket_bounds", "bucket_keys", "code_for", "key_of", "read",
    "representative", "splits", "widen",
]

_F32 = struct.Struct("=f")
_U32 = struct.Struct("=I")
# key_of's two steps: ``U32_UNPACK(F32_PACK(value))[0] >> 16`` (bound once, for copies
# inlined where one more call would show, as DurationSketch.add_one).
F32_PACK = _F32.pack
U32_UNPACK = _U32.unpack
# In a native-order array('H') view of float32 values, the high half comes second on
# little-endian machines.
_HIGH = 1 if sys.byteorder == "little" else 0
MAX_F32 = 3.4028234663852886e38
_MAX_KEY = 0x7F7F  # the bucket of the largest finite float32
_WORD: Literal["I", "L"] = "I" if array("I").itemsize == 4 else "L"

_Code = Literal["B", "H", "I", "L", "Q"]
# Count arrays by item size: the smallest whose items hold a sketch's whole count
# can hold any of its buckets.
_CODES: tuple[tuple[int, _Code], ...] = (
    (0xFF, "B"), (0xFFFF, "H"), (0xFFFF_FFFF, _WORD), (0xFFFF_FFFF_FFFF_FFFF, "Q"))
MAX_COUNT = _CODES[-1][0]
CAPACITY = {array(code).itemsize: most for most, code in _CODES}


def key_of(value: float) -> int:
    """Return the bucket key of one value."""
    return int(U32_UNPACK(F32_PACK(value))[0]) >> 16


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


_bounds: list[float] = []  # the lower bound of every key to _MAX_KEY + 1, made at first read


def bounds_table() -> list[float]:
    """The lower bound of each bucket key from 0 to ``0x7F80`` (infinity), by key.

    Made once, in bulk (C-level array conversions), the first time it is read: the
    same floats as ``_bound`` gives one at a time, for a report's tens of thousands.
    """
    if not _bounds:
        floats = array("f")
        floats.frombytes(array(_WORD, range(0, (_MAX_KEY + 2) << 16, 1 << 16)).tobytes())
        _bounds[:] = floats.tolist()
    return _bounds


def bucket_bounds(key: int) -> tuple[float, float]:
    """Return the ``[low, high)`` range of seconds that a bucket key covers."""
    if 0 <= key <= _MAX_KEY:
        table = _bounds or bounds_table()
        return table[key], table[key + 1]
    return _bound(key), _bound(key + 1)


def representative(key: int) -> float:
    """Return the value that stands for a bucket: its midpoint (0.0 for key 0)."""
    if key == 0:
        return 0.0
    low, high = bucket_bounds(key)
    return (low + high) / 2


def splits(low: int, high: int) -> Iterator[float]:
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


ABOVE_ZERO = next(splits(0, 1))  # the smallest double outside bucket 0


def code_for(total: int) -> _Code:
    """Return the typecode of the narrowest count array whose items hold ``total``."""
    for most, code in _CODES:
        if total <= most:
            return code
    raise OverflowError(f"a sketch holds at most {MAX_COUNT} values")


def widen(counts: array[int], code: _Code) -> array[int]:
    """Return a copy of ``counts`` with the items of ``code``, at least as wide.

    Copies bytes with strided slices (C loops), not item by item.
    """
    wide = array(code)
    narrow, width = counts.itemsize, wide.itemsize
    if narrow == width:
        return array(code, counts.tobytes())
    if width < narrow:
        raise ValueError(f"cannot narrow counts of {narrow} bytes to {width}")
    raw = counts.tobytes()
    out = bytearray(len(raw) // narrow * width)  # from the bytes read, not a second look
    low = 0 if sys.byteorder == "little" else width - narrow  # where the value's bytes go
    for at in range(narrow):
        out[low + at::width] = raw[at::narrow]
    wide.frombytes(out)
    return wide


# -- reading serialised sketches ---------------------------------------------------------


def _whole(data: Mapping[str, object], field: str, low: int = 0, high: int = MAX_COUNT) -> int:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"sketch field {field!r} must be a whole number from {low} to {high}, "
                         f"got {value!r}")
    return value


def _number(data: Mapping[str, object], field: str) -> float:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0.0 <= value <= MAX_F32):  # also rejects NaN
        raise ValueError(f"sketch field {field!r} must be a number from 0 to {MAX_F32}, "
                         f"got {value!r}")
    return float(value)


def _counts_of(field: str, raw: object) -> list[int]:
    if not isinstance(raw, list):
        raise ValueError(  # noqa: TRY004  # bad data from disk is a ValueError naming the field
            f"sketch field {field!r} must be a list, got {type(raw).__name__}")
    if len(raw) > _MAX_KEY:
        raise ValueError(f"sketch field {field!r} holds {len(raw)} buckets, more than there are")
    for n in raw:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_COUNT:
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
        if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= MAX_COUNT:
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


def read(data: object) -> tuple[int, int, int, list[int], float, float]:
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
        offset = _whole(data, "offset", 0, _MAX_KEY)
        used = [at for at, n in enumerate(counts) if n]  # trim empty buckets at either end
        counts = counts[used[0]:used[-1] + 1] if used else []
        offset += used[0] if used else 0
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
        if key_of(value) != key:
            raise ValueError(f"sketch field {field!r} ({value!r}) is not in the "
                             f"{'first' if field == 'min' else 'last'} non-empty bucket")
    return total, zeros, offset, counts, low, high
