"""Reading serialised sketches (callmetrics._engine.sketch_keys.read through from_dict).

Today's form, the first version that stores written before it hold, and the bad data
(malformed or tampered) that must be a ValueError naming the field.
"""

from __future__ import annotations

import json
import math
from array import array
from typing import Any

import pytest

from callmetrics import DurationSketch
from callmetrics._engine.sketch_keys import widen


def sketch_of(values: list[float]) -> DurationSketch:
    sketch = DurationSketch()
    for value in values:
        sketch.add(value)
    return sketch


# -- serialisation: today's form, the first version, and bad data ----------------------------


def test_to_dict_writes_version_two_and_reads_it_back() -> None:
    """The written form carries its version and rebuilds an equal sketch through JSON."""
    sketch = sketch_of([0.0, 0.001, 0.0011, 2.0])
    data = json.loads(json.dumps(sketch.to_dict()))
    assert data["version"] == 2
    assert DurationSketch.from_dict(data) == sketch


# Written by the first version of the sketch (callmetrics before the dense store), for
# [0.0, 2.5e-7, 0.00123, 0.00125, 0.0013, 0.0013, 0.0042, 0.017, 0.5, 1.0, 3600.0].
FIRST_VERSION = {
    "count": 11, "min": 0.0, "max": 3600.0,
    "buckets": {"0": 1, "13446": 1, "15009": 1, "15011": 1, "15018": 2, "15241": 1,
                "15499": 1, "16128": 1, "16256": 1, "17761": 1},
}


def test_reads_the_first_version_exactly() -> None:
    """Stores written before the version field load with the same buckets and answers."""
    sketch = DurationSketch.from_dict(json.loads(json.dumps(FIRST_VERSION)))
    # The answers the first version gave for this data.
    assert sketch.quantiles([0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1]) == [
        0.0, 2.505257725715637e-07, 0.001232147216796875, 0.001300811767578125,
        0.01702880859375, 1.00390625, 1.00390625, 3600.0]
    assert [n for _, _, n in sketch.buckets()] == [1, 1, 1, 1, 2, 1, 1, 1, 1, 1]
    assert list(sketch.buckets())[4][:2] == (0.0012969970703125, 0.00130462646484375)
    assert (sketch.count, sketch.min, sketch.max) == (11, 0.0, 3600.0)
    values = [0.0, 2.5e-7, 0.00123, 0.00125, 0.0013, 0.0013, 0.0042, 0.017, 0.5, 1.0, 3600.0]
    assert sketch == sketch_of(values)
    assert DurationSketch.from_dict(sketch.to_dict()) == sketch


def test_reads_an_empty_first_version() -> None:
    """An empty sketch of the first version (min and max None) loads empty."""
    data: dict[str, Any] = {"count": 0, "min": None, "max": None, "buckets": {}}
    assert DurationSketch.from_dict(data) == DurationSketch()


def test_trailing_and_leading_empty_buckets_are_ignored() -> None:
    """Version 2 counts padded with empty buckets read as the trimmed sketch."""
    padded = {"version": 2, "count": 2, "min": 1.0, "max": 1.0, "zeros": 0,
              "offset": 16254, "counts": [0, 0, 2, 0]}
    assert DurationSketch.from_dict(padded) == sketch_of([1.0, 1.0])


GOOD = {"version": 2, "count": 3, "min": 0.0, "max": 1.0, "zeros": 1, "offset": 16255,
        "counts": [1, 1]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": 3}, "version"),
        ({"version": "2"}, "version"),
        ({"version": True}, "version"),
        ({"count": 4}, "count"),
        ({"count": -3}, "count"),
        ({"count": 3.0}, "count"),
        ({"count": True}, "count"),
        ({"count": 2**64, "zeros": 2**64 - 2}, "count"),
        ({"zeros": -1, "count": 1}, "zeros"),
        ({"zeros": None}, "zeros"),
        ({"counts": [1, -1], "count": 1}, "counts"),
        ({"counts": [1, 1.0]}, "counts"),
        ({"counts": [1, math.nan]}, "counts"),
        ({"counts": [True, 1]}, "counts"),
        ({"counts": {"16255": 1}}, "counts"),
        ({"counts": None}, "counts"),
        ({"counts": [0] * 10**6 + [1, 1]}, "counts"),
        ({"offset": -5}, "offset"),
        ({"offset": 0}, "offset"),
        ({"offset": 0x7F7F}, "offset"),
        ({"offset": "16255"}, "offset"),
        ({"min": math.nan}, "min"),
        ({"min": -1.0}, "min"),
        ({"min": "0"}, "min"),
        ({"min": None}, "min"),
        ({"max": math.inf}, "max"),
        ({"max": True}, "max"),
        ({"min": 1.0}, "min"),  # not in the first non-empty bucket (the zeros)
        ({"max": 9.0}, "max"),  # not in the last non-empty bucket
    ],
    ids=lambda value: repr(value)[:40],
)
def test_from_dict_rejects_bad_data(change: dict[str, Any], field: str) -> None:
    """Malformed or tampered version 2 data is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        DurationSketch.from_dict({**GOOD, **change})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "buckets"),
        ({"buckets": [1, 2], "count": 2}, "buckets"),
        ({"buckets": {"16000": 2}, "count": 3, "min": 0.1, "max": 0.1}, "count"),
        ({"buckets": {"16000": 0}, "count": 0}, "buckets"),
        ({"buckets": {"16000": -1}, "count": -1}, "buckets"),
        ({"buckets": {"70000": 1}, "count": 1, "min": 1.0, "max": 1.0}, "buckets"),
        ({"buckets": {"32640": 1}, "count": 1, "min": 1.0, "max": 1.0}, "buckets"),  # +inf
        ({"buckets": {"x": 1}, "count": 1, "min": 1.0, "max": 1.0}, "buckets"),
        ({"buckets": {"16256": 1.7}, "count": 1, "min": 1.0, "max": 1.0}, "buckets"),
        ({"buckets": {"16256": 1}, "count": 1}, "min"),
        ({"buckets": {"16256": 1}, "count": 1, "min": "a", "max": 1.0}, "min"),
        ({"buckets": {"16256": 1}, "count": 1, "min": -5.0, "max": 1.0}, "min"),
        ({"buckets": {"16256": 1}, "count": 1, "min": math.nan, "max": 1.0}, "min"),
        ({"buckets": {"16256": 1}, "count": 1, "min": 1.0, "max": math.inf}, "max"),
        ({"buckets": {"16256": 2}, "count": 2, "min": 2.0, "max": 1.0}, "min"),
        ({"buckets": {"16256": 1}, "count": 1, "min": 0.5, "max": 1.0}, "min"),
    ],
    ids=["no-buckets", "buckets-list", "count-mismatch", "zero-count", "negative-count",
         "key-too-big", "key-of-infinity", "key-not-int", "fractional-count", "no-min-max",
         "min-not-number", "negative-min", "nan-min", "infinite-max", "min-above-max",
         "min-outside-its-bucket"],
)
def test_from_dict_rejects_bad_first_version(data: dict[str, Any], field: str) -> None:
    """Malformed or tampered first-version data is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        DurationSketch.from_dict(data)


@pytest.mark.parametrize("data", [None, [1, 2], "sketch", 3])
def test_from_dict_rejects_what_is_not_a_mapping(data: Any) -> None:
    """JSON that is not an object (a damaged store row) is a ValueError, not a crash."""
    with pytest.raises(ValueError, match="mapping"):
        DurationSketch.from_dict(data)


@pytest.mark.parametrize(("narrow", "wide"), [("B", "H"), ("B", "Q"), ("H", "I"), ("I", "Q")])
def test_widen_keeps_every_count(narrow: Any, wide: Any) -> None:
    """Widening a count array (byte copies, not a loop) keeps each item's value."""
    most = (1 << (8 * array(narrow).itemsize)) - 1
    counts = array(narrow, [0, 1, most, 7, most - 1])
    widened = widen(counts, wide)
    assert widened.typecode == wide
    assert widened.tolist() == counts.tolist()


def test_the_bounds_table_gives_each_keys_float32_bounds_exactly() -> None:
    """The table made in bulk holds, key for key, what one float32 conversion gives."""
    import struct  # noqa: PLC0415  # the reference conversion, one key at a time

    from callmetrics._engine.sketch_keys import bucket_bounds  # noqa: PLC0415

    def one(key: int) -> float:
        return float(struct.unpack("=f", struct.pack("=I", key << 16))[0])

    for key in range(0x7F80):
        assert bucket_bounds(key) == (one(key), one(key + 1))
    assert bucket_bounds(0x7F7F)[1] == math.inf
    sketch = DurationSketch()
    for value in (0.0, 0.0, 3e-9, 1e-6, 1e-6, 0.25, 7.5, 3600.0):
        sketch.add(value)
    assert list(sketch.buckets()) == [(*bucket_bounds(k), n) for k, n in sketch._keyed()]
