"""DurationSketch: quantile accuracy, exact merges, round trips, bad inputs, bounded size."""

from __future__ import annotations

import itertools
import json
import math
import random
import struct
import sys
import tracemalloc
from array import array
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmetrics import DurationSketch
from callmetrics._engine.sketch import bucket_bounds

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
@given(st.lists(st.one_of(samples, clustered, st.lists(st.one_of(st.just(0.0), durations))),
                min_size=1, max_size=6))
def test_batches_of_any_shape_equal_adding_one_by_one(batches: list[list[float]]) -> None:
    """Successive bulk adds (zeros, one bucket, clustered, spread) count like add()."""
    bulk = DurationSketch()
    for batch in batches:
        bulk.add_sorted(sorted(batch))
    assert bulk == sketch_of([value for batch in batches for value in batch])


def test_bulk_add_splits_buckets_where_float32_rounding_does() -> None:
    """Values at and just below the rounding midpoint of a bucket bound land like add()."""
    low, high = bucket_bounds(16256)  # [1.0, 1.0078125)
    below = struct.unpack("=f", struct.pack("=I", struct.unpack("=I", struct.pack("=f", high))[0]
                                            - 1))[0]
    tie = (high + below) / 2  # rounds to the even neighbour: high, the next bucket
    edge = [math.nextafter(tie, 0.0), tie, math.nextafter(tie, 2.0), low, high]
    values = sorted(edge * 8)
    bulk = DurationSketch()
    bulk.add_sorted(values)  # 40 values over 2 buckets: counted by bisection
    assert bulk == sketch_of(values)
    assert [n for _, _, n in bulk.buckets()] == [16, 24]


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


def test_sketch_is_unhashable_and_compares_by_content() -> None:
    """Sketches compare by content and, being mutable, are not hashable."""
    assert sketch_of([1.0, 2.0]) == sketch_of([2.0, 1.0])
    assert sketch_of([1.0]) != sketch_of([2.0])
    with pytest.raises(TypeError):
        hash(DurationSketch())


# -- quantiles at once, extremes and counts ------------------------------------------------

wide = st.one_of(st.just(0.0), st.floats(min_value=1e-30, max_value=1e6))


@settings(max_examples=150, deadline=None)
@given(st.lists(wide, min_size=1, max_size=400), st.lists(quantiles, max_size=6))
def test_quantiles_at_once_match_one_by_one(values: list[float], qs: list[float]) -> None:
    """quantiles(qs) answers exactly what quantile(q) does for each q, zeros included."""
    sketch = DurationSketch()
    sketch.add_sorted(sorted(values))
    assert sketch.quantiles(qs + QS) == [sketch.quantile(q) for q in qs + QS]
    for q in QS:
        got = sketch.quantile(q)
        want = exact(values, q)
        assert got is not None
        if want == 0.0:
            assert got == 0.0
        else:
            assert got == pytest.approx(want, rel=0.01), q


def test_quantiles_of_empty_sketch_are_none() -> None:
    """An empty sketch answers None for every q, and still checks each q."""
    assert DurationSketch().quantiles([0.0, 0.5, 1.0]) == [None, None, None]
    with pytest.raises(ValueError, match="q"):
        DurationSketch().quantiles([0.5, 2.0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1e-6, 1e-3, 0.5, 0.0]), st.integers(1, 400)),
                min_size=1, max_size=4))
def test_counts_above_one_byte_add_up_exactly(groups: list[tuple[float, int]]) -> None:
    """Bucket counts stay exact as they outgrow their storage, by add, bulk add and merge."""
    merged = DurationSketch()
    for value, n in groups:
        part = DurationSketch()
        part.add_sorted([value] * n)
        part.add(value)
        merged.merge(part)
    expected: dict[float, int] = {}
    for value, n in groups:
        expected[value] = expected.get(value, 0) + n + 1
    assert merged.count == sum(expected.values())
    got = {low: n for low, _, n in merged.buckets()}
    assert sorted(got.values()) == sorted(expected.values())


def test_merge_never_carries_between_neighbouring_buckets() -> None:
    """Counts near a storage boundary (2**8, 2**16, 2**32) add without touching neighbours."""
    for big in (255, 65_535, 2**32 - 1):
        data = {"version": 2, "count": big + 2, "min": 1.0, "max": 1.025, "zeros": 0,
                "offset": 16256, "counts": [1, big, 0, 1]}
        sketch = DurationSketch.from_dict(data)
        sketch.merge(DurationSketch.from_dict(data))
        assert [n for _, _, n in sketch.buckets()] == [2, 2 * big, 2]
        assert sketch.count == 2 * big + 4


@pytest.mark.parametrize("big", [300, 70_000, 2**32 + 5])
def test_merges_between_small_and_large_counts_are_exact(big: int) -> None:
    """Whichever side holds the larger counts, a merge keeps every bucket exact."""
    large = DurationSketch.from_dict({"version": 2, "count": big + 1, "min": 0.001,
                                      "max": 2.0, "zeros": 0, "offset": 14979,
                                      "counts": [big] + [0] * 1404 + [1]})
    small = sketch_of([0.001, 0.5, 2.0, 2.0])
    one_way = large.copy()
    one_way.merge(small)
    other_way = small.copy()
    other_way.merge(large)
    assert one_way == other_way
    assert [n for _, _, n in one_way.buckets()] == [big + 1, 1, 3]
    assert one_way.count == big + 5
    assert other_way.quantile(0.5) == pytest.approx(0.001, rel=0.01)


def test_merging_a_sketch_into_itself_doubles_it() -> None:
    """sketch.merge(sketch) counts every value twice, as merging a copy would."""
    sketch = sketch_of([0.0, 0.001] + [0.25] * 200)
    twin = sketch.copy()
    twin.merge(sketch.copy())
    sketch.merge(sketch)
    assert sketch == twin
    assert sketch.count == 404


def test_len_counts_non_empty_buckets() -> None:
    """len() is the number of non-empty buckets, the zero bucket included."""
    assert len(DurationSketch()) == 0
    assert len(sketch_of([0.0, 1.0, 1.0, 4.0])) == 3


# -- memory --------------------------------------------------------------------------------


def held_bytes(make: Any) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = make()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept is not None
    return after - before


def test_memory_is_small_for_one_value_and_for_many() -> None:
    """One value costs a few hundred bytes; 100,000 spread values a few kilobytes."""
    one = held_bytes(lambda: sketch_of([0.0125]))
    assert one < 600
    rng = random.Random(5)
    values = sorted(rng.lognormvariate(math.log(1e-3), 1.0) for _ in range(100_000))

    def build() -> DurationSketch:
        sketch = DurationSketch()
        for start in range(0, len(values), 4096):
            sketch.add_sorted(values[start:start + 4096])
        return sketch

    many = held_bytes(build)
    # 128 buckets per power of two over the ~13 powers of two the samples span, at
    # 4 bytes each, with room to spare (the sparse form took 70 KB).
    assert many < 16_000
    assert sys.getsizeof(build()) >= 128 * 13 * 4


def test_merging_a_sketch_whose_items_are_wider_than_its_sum_needs() -> None:
    """A sketch caught mid-add (widened before counting: a read nested in a drain) merges.

    Regression: merging it into a narrower sketch tried to narrow its counts and raised.
    """
    source = DurationSketch()
    source.add_sorted(sorted([1e-6, 2e-6, 2e-6, 5e-3]))
    expected = source.quantiles([0.0, 0.5, 1.0])
    source._counts = array("I", source._counts)  # as after _reserve, before the counts
    target = DurationSketch()
    target.add(1e-6)
    target.merge(source)
    assert target.count == 5
    merged_alone = DurationSketch()
    merged_alone.merge(source)
    assert merged_alone.quantiles([0.0, 0.5, 1.0]) == expected


@settings(deadline=None)
@given(st.lists(st.one_of(st.floats(0.0, 1e4), st.floats(1e-9, 1e-5), st.just(0.0)),
                min_size=1, max_size=300))
def test_adding_unsorted_gives_the_sketch_sorting_gives(values: list[float]) -> None:
    """The drain's unsorted bulk path (C counting or Counter) equals the sorted path."""
    by_sort = DurationSketch()
    by_sort.add_sorted(sorted(values))
    unsorted = DurationSketch()
    unsorted.add(3e-6)  # onto a sketch that already holds a value, then widened
    unsorted.add_unsorted(list(values), min(values), max(values))
    by_sort.add(3e-6)
    assert unsorted.to_dict() == by_sort.to_dict()
    assert unsorted.quantiles([0.0, 0.5, 0.99, 1.0]) == by_sort.quantiles([0.0, 0.5, 0.99, 1.0])


@given(st.lists(st.one_of(st.floats(0.0, 1e4), st.floats(0.0, 1e-40), st.just(0.0)),
                min_size=1, max_size=50))
def test_adding_one_at_a_time_equals_adding_sorted_batches(values: list[float]) -> None:
    """add_one (a function met once per drained chunk) counts as add_sorted([value])."""
    one_by_one = DurationSketch()
    batched = DurationSketch()
    for value in values:
        one_by_one.add_one(value)
        batched.add_sorted([value])
    assert one_by_one.to_dict() == batched.to_dict()
    assert one_by_one.quantiles([0.0, 0.5, 1.0]) == batched.quantiles([0.0, 0.5, 1.0])
