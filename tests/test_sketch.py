"""DurationSketch: quantile accuracy, exact merges, round trips, bad inputs, bounded size."""

from __future__ import annotations

import itertools
import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmetrics import DurationSketch

durations = st.floats(min_value=1e-9, max_value=1e4, allow_nan=False, allow_infinity=False)
samples = st.lists(durations, min_size=1, max_size=600)
quantiles = st.floats(min_value=0.0, max_value=1.0)
QS = [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]


def sketch_of(values: list[float]) -> DurationSketch:
    sketch = DurationSketch()
    for value in values:
        sketch.add(value)
    return sketch


def exact(values: list[float], q: float) -> float:
    """The sample at index floor(q * (n - 1)) of the sorted samples."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@settings(max_examples=150, deadline=None)
@given(samples, st.lists(quantiles, min_size=1, max_size=5))
def test_quantiles_within_one_percent(values: list[float], qs: list[float]) -> None:
    """Every quantile is within 1% of the exact sample at rank floor(q * (n - 1))."""
    sketch = sketch_of(values)
    for q in qs + QS:
        got = sketch.quantile(q)
        assert got is not None
        assert got == pytest.approx(exact(values, q), rel=0.01), q


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1_000, max_value=30_000), st.integers(min_value=0, max_value=2**32))
def test_quantiles_within_one_percent_for_many_samples(n: int, seed: int) -> None:
    """Accuracy holds for large samples spread from nanoseconds to hours."""
    rng = random.Random(seed)
    values = [10 ** rng.uniform(-9, 4) for _ in range(n)]
    sketch = sketch_of(values)
    for q in QS:
        got = sketch.quantile(q)
        assert got is not None
        assert got == pytest.approx(exact(values, q), rel=0.01), q


clustered = st.builds(
    lambda base, steps: [base * (1 + step) for step in steps],
    durations,
    st.lists(st.floats(min_value=0.0, max_value=0.2), min_size=1, max_size=3000),
)


@settings(max_examples=100, deadline=None)
@given(st.one_of(samples, clustered))
def test_bulk_add_equals_adding_one_by_one(values: list[float]) -> None:
    """The tracker's bulk path (add_sorted) builds the same sketch as add(), spread or not."""
    bulk = DurationSketch()
    bulk.add_sorted(sorted(values))
    assert bulk == sketch_of(values)


@settings(max_examples=100, deadline=None)
@given(st.lists(durations, max_size=300), st.lists(durations, max_size=300))
def test_merge_equals_sketch_of_union(first: list[float], second: list[float]) -> None:
    """Merging two sketches gives exactly the sketch of the union of their samples."""
    merged = sketch_of(first)
    merged.merge(sketch_of(second))
    union = sketch_of(first + second)
    assert merged == union
    assert merged.count == len(first) + len(second)
    for q in QS:
        assert merged.quantile(q) == union.quantile(q)


@settings(max_examples=100, deadline=None)
@given(st.lists(durations, max_size=300))
def test_dict_round_trip(values: list[float]) -> None:
    """to_dict then from_dict (through JSON) rebuilds an equal sketch."""
    sketch = sketch_of(values)
    again = DurationSketch.from_dict(json.loads(json.dumps(sketch.to_dict())))
    assert again == sketch
    assert again.count == sketch.count
    assert (again.min, again.max) == (sketch.min, sketch.max)
    for q in QS:
        assert again.quantile(q) == sketch.quantile(q)


@settings(max_examples=100, deadline=None)
@given(samples)
def test_min_max_count_and_buckets(values: list[float]) -> None:
    """min, max and count are exact; buckets increase and hold every sample."""
    sketch = sketch_of(values)
    assert sketch.count == len(values)
    assert sketch.min == min(values)
    assert sketch.max == max(values)
    buckets = list(sketch.buckets())
    assert sum(n for _, _, n in buckets) == len(values)
    for low, high, _ in buckets:
        assert low < high
    for (_, high, _), (low, _, _) in itertools.pairwise(buckets):
        assert high <= low


def test_empty_sketch() -> None:
    """An empty sketch has no quantiles, min or max."""
    sketch = DurationSketch()
    assert sketch.count == 0
    assert sketch.quantile(0.5) is None
    assert sketch.min is None
    assert sketch.max is None
    assert list(sketch.buckets()) == []
    assert DurationSketch.from_dict(sketch.to_dict()) == sketch


def test_zero_duration_is_accepted() -> None:
    """A zero-second sample (a coarse clock) is a valid value."""
    sketch = sketch_of([0.0, 0.0, 1.0])
    assert sketch.quantile(0.0) == 0.0
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(1.0) == 1.0


def test_copy_is_independent() -> None:
    """A copy does not change when the original does."""
    sketch = sketch_of([0.1, 0.2])
    twin = sketch.copy()
    sketch.add(5.0)
    assert twin.count == 2
    assert twin.max == 0.2


def test_bucket_count_is_bounded() -> None:
    """Memory is bounded: nanoseconds to hours touch a few thousand buckets at most."""
    rng = random.Random(3)
    values = [10 ** rng.uniform(-9, 4) for _ in range(100_000)]
    sketch = sketch_of(values)
    buckets = len(sketch)
    assert buckets <= 44 * 128  # 44 powers of two from 1 ns to 10^4 s, 128 buckets each
    sketch.merge(sketch_of(values[:20_000]))
    assert len(sketch) == buckets  # more samples of the same range add no buckets
    assert sketch.count == 120_000


@pytest.mark.parametrize("bad", [-1.0, -1e-12, math.inf, -math.inf, math.nan])
def test_add_rejects_bad_values(bad: float) -> None:
    """Negative, infinite and NaN durations are a ValueError naming the argument."""
    with pytest.raises(ValueError, match="seconds"):
        DurationSketch().add(bad)


@pytest.mark.parametrize("bad", ["1.0s", "1.0", None, [1.0], True])
def test_add_rejects_non_numbers(bad: Any) -> None:
    """A value that is not a number (numeric strings and bools included) is a TypeError."""
    with pytest.raises(TypeError):
        DurationSketch().add(bad)


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan])
def test_quantile_rejects_out_of_range(q: float) -> None:
    """A q outside [0, 1] (or NaN) is a ValueError."""
    with pytest.raises(ValueError, match="q"):
        sketch_of([1.0]).quantile(q)


def test_merge_rejects_other_types() -> None:
    """Merging something that is not a DurationSketch is a TypeError."""
    other: Any = [1.0, 2.0]
    with pytest.raises(TypeError, match="DurationSketch"):
        DurationSketch().merge(other)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, TypeError),
        ({"buckets": [1, 2], "count": 2}, TypeError),
        ({"buckets": {"16000": 2}, "count": 3, "min": 0.1, "max": 0.1}, ValueError),
        ({"buckets": {"16000": 0}, "count": 0}, ValueError),
        ({"buckets": {"16000": -1}, "count": -1}, ValueError),
        ({"buckets": {"70000": 1}, "count": 1, "min": 1.0, "max": 1.0}, ValueError),
        ({"buckets": {"x": 1}, "count": 1, "min": 1.0, "max": 1.0}, ValueError),
        ({"buckets": {"16000": 1}, "count": 1}, ValueError),
        ({"buckets": {"16000": 1}, "count": 1, "min": "a", "max": 1.0}, ValueError),
        # Values that no sketch can hold: a negative or NaN minimum, an infinite maximum,
        # a minimum above the maximum, and a count that is not a whole number.
        ({"buckets": {"16256": 1}, "count": 1, "min": -5.0, "max": 1.0}, ValueError),
        ({"buckets": {"16256": 1}, "count": 1, "min": math.nan, "max": 1.0}, ValueError),
        ({"buckets": {"16256": 1}, "count": 1, "min": 1.0, "max": math.inf}, ValueError),
        ({"buckets": {"16256": 2}, "count": 2, "min": 2.0, "max": 1.0}, ValueError),
        ({"buckets": {"16256": 1.7}, "count": 1, "min": 1.0, "max": 1.0}, ValueError),
    ],
    ids=["no-buckets", "buckets-list", "count-mismatch", "zero-count", "negative-count",
         "key-too-big", "key-not-int", "no-min-max", "min-not-number", "negative-min",
         "nan-min", "infinite-max", "min-above-max", "fractional-count"],
)
def test_from_dict_rejects_bad_data(data: dict[str, Any], error: type[Exception]) -> None:
    """Malformed or inconsistent sketch data is rejected."""
    with pytest.raises(error):
        DurationSketch.from_dict(data)


def test_sketch_is_unhashable_and_compares_by_content() -> None:
    """Sketches compare by content and, being mutable, are not hashable."""
    assert sketch_of([1.0, 2.0]) == sketch_of([2.0, 1.0])
    assert sketch_of([1.0]) != sketch_of([2.0])
    with pytest.raises(TypeError):
        hash(DurationSketch())
