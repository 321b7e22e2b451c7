"""The statistics of `diff`: the Mann-Whitney U test and the median's interval."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callmetrics._engine.view import Reading, RetainedCall
from callmetrics._outputs.compare import mann_whitney, median_interval, rank_test
from callmetrics._outputs.verdicts import Thresholds, compare
from store_helpers import snapshot

samples = st.lists(st.floats(min_value=1e-7, max_value=10.0), min_size=1, max_size=60)


def test_a_textbook_value() -> None:
    """Two fully separated samples of 5: U = 0, z = 2.5067, p = 0.0122 (normal approximation)."""
    p, z = mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert z == pytest.approx(2.5067, abs=1e-4)
    assert p == pytest.approx(0.01219, abs=1e-5)


def test_ties_are_corrected() -> None:
    """Ties get averaged ranks and the tie-corrected variance, as computed by hand."""
    p, z = mann_whitney([1, 1, 1, 2, 2, 2] * 5, [2, 2, 2, 3, 3, 3] * 5)
    # By hand: n1 = n2 = 30, ties of 15, 30 and 15 values.
    n1 = n2 = 30
    ties = 2 * (15 ** 3 - 15) + (30 ** 3 - 30)
    variance = n1 * n2 / 12 * (61 - ties / (60 * 59))
    u_head = (15 * 30.5 + 15 * 53) - n2 * (n2 + 1) / 2
    expected_z = (u_head - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    assert z == pytest.approx(expected_z)
    assert p == pytest.approx(math.erfc(expected_z / math.sqrt(2)))


def test_all_equal_is_no_evidence() -> None:
    """Every value equal: p = 1, z = 0 (no division by a zero variance)."""
    assert mann_whitney([1e-6] * 40, [1e-6] * 50) == (1.0, 0.0)


@given(samples, samples)
def test_swapping_the_sides_negates_z_and_keeps_p(base: list[float], head: list[float]) -> None:
    """The test is symmetric: swapping base and head flips the sign only."""
    p, z = mann_whitney(base, head)
    q, y = mann_whitney(head, base)
    assert 0.0 <= p <= 1.0
    assert p == pytest.approx(q)
    assert z == pytest.approx(-y, abs=1e-9)


@given(samples, st.floats(min_value=11.0, max_value=100.0))
def test_a_larger_head_has_a_positive_z(base: list[float], shift: float) -> None:
    """Every head value above every base value gives z > 0 (head slower)."""
    head = [v + shift for v in base]
    _p, z = mann_whitney(base, head)
    assert z >= 0


def test_p_values_are_roughly_uniform_under_the_null() -> None:
    """Same distribution on both sides: about 5 % of p-values fall below 0.05."""
    rng = random.Random(11)
    below = sum(
        mann_whitney([rng.lognormvariate(0, 1) for _ in range(60)],
                     [rng.lognormvariate(0, 1) for _ in range(60)])[0] < 0.05
        for _ in range(400))
    assert 8 <= below <= 36  # 20 expected; binomial(400, 0.05) lies here > 99.9 % of the time


@given(st.lists(st.floats(min_value=0, max_value=1e3), min_size=1, max_size=200))
def test_the_median_interval_brackets_the_median(values: list[float]) -> None:
    """The interval holds the median, which is the textbook one."""
    low, median, high = median_interval(sorted(values))
    assert low <= median <= high
    assert median == pytest.approx(statistics.median(values))


def test_the_median_interval_covers_the_true_median_about_as_promised() -> None:
    """At 97.5 % per median, the interval of 100 lognormal values misses exp(0) = 1 rarely."""
    rng = random.Random(12)
    misses = 0
    for _ in range(400):
        low, _m, high = median_interval(sorted(rng.lognormvariate(0, 1) for _ in range(100)))
        misses += not low <= 1.0 <= high
    assert misses <= 25  # 10 expected


def reading(durations: dict[str, list[float]]) -> Reading:
    return Reading([snapshot(name, values) for name, values in sorted(durations.items())],
                   [RetainedCall(float(i), d, name, "unit", None)
                    for name, values in durations.items() for i, d in enumerate(values)])


def test_compare_gives_each_verdict() -> None:
    """Each verdict (slower, faster, same, untested, new, gone), most significant first."""
    rng = random.Random(13)

    def draw(scale: float, n: int = 200) -> list[float]:
        return [rng.gauss(0.01, 0.001) * scale for _ in range(n)]

    base = reading({"up": draw(1), "down": draw(1.5), "flat": draw(1), "gone": draw(1),
                    "few": draw(1, 5)})
    head = reading({"up": draw(1.5), "down": draw(1), "flat": draw(1), "new": draw(1),
                    "few": draw(3, 5)})
    found = {c.name: c for c in compare(base, head, Thresholds())}
    assert found["up"].verdict == "slower"
    assert found["up"].regressed
    assert found["down"].verdict == "faster"
    assert not found["down"].regressed
    assert found["flat"].verdict == "same"
    assert found["new"].verdict == "new"
    assert found["gone"].verdict == "gone"
    assert found["few"].verdict == "untested"
    assert not found["few"].tested
    order = [c.name for c in compare(base, head, Thresholds())]
    assert order.index("flat") > max(order.index("up"), order.index("down"))
    assert order.index("few") > order.index("flat")
    up = found["up"]
    assert up.ratio_low is not None
    assert up.ratio_high is not None
    assert up.ratio_low <= 1.5 <= up.ratio_high


def test_unchanged_functions_come_by_total_time_not_by_p_value() -> None:
    """Among functions that did not change, the one taking the most time comes first.

    ``small`` moves a little (a low but not significant p-value), ``big`` does not
    move at all (p = 1) but takes far more time: the table reads like ``stats``.
    """
    small_base = [1e-6 * (1 + i % 7) for i in range(60)]
    small_head = [d * 1.08 for d in small_base]
    big = [0.01 * (1 + i % 5) for i in range(60)]
    base = reading({"small": small_base, "big": big})
    head = reading({"small": small_head, "big": big})
    found = compare(base, head, Thresholds(min_delta=0.0))
    by_name = {c.name: c for c in found}
    assert by_name["big"].p_value == 1.0
    assert by_name["small"].p_value is not None
    assert by_name["small"].p_value < 1.0
    assert [c.verdict for c in found] == ["same", "same"]
    assert [c.name for c in found] == ["big", "small"]


def drifting(rng: random.Random, n: int, levels: list[float]) -> list[float]:
    """Calls in time order whose level drifts in stretches (machine load coming and going)."""
    return [rng.gauss(levels[i * len(levels) // n], 0.05) for i in range(n)]


def test_drift_within_runs_is_not_taken_for_a_difference() -> None:
    """Load stretches inside each run fool the plain test, not the batch-means one."""
    rng = random.Random(14)
    fooled = honest = 0
    for _ in range(20):
        base = drifting(rng, 240, [rng.uniform(1, 2) for _ in range(6)])
        head = drifting(rng, 240, [rng.uniform(1, 2) for _ in range(6)])
        fooled += mann_whitney(base, head)[0] < 0.002
        honest += rank_test(base, head)[0] < 0.002
    assert fooled >= 10  # the plain test calls most of these pairs different
    assert honest <= 1


@given(st.lists(st.floats(min_value=1e-7, max_value=1.0), min_size=30, max_size=120),
       st.lists(st.floats(min_value=1e-7, max_value=1.0), min_size=30, max_size=120))
def test_the_batch_means_test_is_never_more_significant(base: list[float],
                                                       head: list[float]) -> None:
    """rank_test's p is at least Mann-Whitney's, with the same direction."""
    p, z = rank_test(base, head)
    q, y = mann_whitney(base, head)
    assert p >= q - 1e-12
    assert z * y >= 0


def test_independent_calls_keep_their_power() -> None:
    """Without drift a real 10 % shift in 300 calls is still found."""
    rng = random.Random(15)
    base = [rng.gauss(1.0, 0.1) for _ in range(300)]
    head = [rng.gauss(1.1, 0.1) for _ in range(300)]
    p, z = rank_test(base, head)
    assert p < 1e-6
    assert z > 0


def test_runs_side_by_side_are_compared_window_by_window() -> None:
    """Interleaved runs share their drift: paired windows cancel it and keep the power."""
    rng = random.Random(16)
    found_paired = found_unpaired = 0
    for _ in range(20):
        levels = [rng.uniform(1, 3) for _ in range(8)]
        base = drifting(rng, 400, levels)
        head = [v * 1.1 for v in drifting(rng, 400, levels)]
        starts = [i * 1e-3 for i in range(400)]
        found_paired += rank_test(base, head, starts=(starts, starts))[0] < 0.002
        found_unpaired += rank_test(base, head)[0] < 0.002
    assert found_paired >= 19
    assert found_unpaired <= 5  # drift alone hides a 10 % change from the unpaired blocks


def test_runs_one_after_the_other_are_not_paired() -> None:
    """Sequential runs (no overlap in time) fall back to the unpaired blocks."""
    rng = random.Random(17)
    base = drifting(rng, 240, [rng.uniform(1, 2) for _ in range(6)])
    head = drifting(rng, 240, [rng.uniform(1, 2) for _ in range(6)])
    before = [i * 1e-3 for i in range(240)]
    after = [10 + i * 1e-3 for i in range(240)]
    assert rank_test(base, head, starts=(before, after)) == rank_test(base, head)
