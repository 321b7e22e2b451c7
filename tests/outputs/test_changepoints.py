"""Change points: E-divisive means with a t-test, on synthetic series with known steps."""

from __future__ import annotations

import random

import pytest

from callmetrics._outputs.changepoints import find_steps, newest_step, t_quantile, welch
from rates_helpers import synthetic_series


def test_student_t_values_match_the_tables() -> None:
    """T quantiles as printed in any table: 12.706 (1 df), 2.571 (5), 2.086 (20)."""
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.975, 5) == pytest.approx(2.571, abs=1e-3)
    assert t_quantile(0.975, 20) == pytest.approx(2.086, abs=1e-3)


def test_welch_on_a_hand_computed_pair() -> None:
    """Means 2 and 5, variances 1 and 1, 3 values each: t = 3 / sqrt(2/3), df = 4."""
    diff, half, p, df = welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert diff == 3.0
    assert df == pytest.approx(4.0)
    assert half == pytest.approx(t_quantile(0.975, 4) * (2 / 3) ** 0.5)
    assert p == pytest.approx(0.0213, abs=2e-4)  # between 0.02 (t = 3.747) and 0.05 (2.776)


def test_a_clean_step_is_found_at_its_run_with_its_size() -> None:
    """Ten runs at 1 ms then ten at 1.5 ms (little noise): one step at 10, 1.5x."""
    rng = random.Random(1)
    values = [1e-3 * rng.uniform(0.99, 1.01) * (1.5 if i >= 10 else 1) for i in range(20)]
    steps = find_steps(values)
    assert [s.index for s in steps] == [10]
    assert steps[0].low < 1.5 < steps[0].high
    assert steps[0].ratio == pytest.approx(1.5, rel=0.02)


def test_two_steps_up_and_down() -> None:
    """A slowdown at 8 fixed at 20: both found, the second below 1."""
    rng = random.Random(2)
    values = [rng.lognormvariate(0, 0.02) * (1.3 if 8 <= i < 20 else 1) for i in range(30)]
    steps = find_steps(values)
    assert [s.index for s in steps] == [8, 20]
    assert steps[0].ratio > 1.2
    assert steps[1].ratio < 0.85


def test_one_step_in_thirty_noisy_runs_is_found_at_the_right_run() -> None:
    """The benchmark's history scenario with fewer trials: 1.2x step, noise as measured."""
    found = false = 0
    for trial in range(40):
        rng = random.Random(trial)
        at = rng.randint(8, 22)
        found += [s.index for s in find_steps(
            synthetic_series(rng, 30, step_at=at, step=1.2))] == [at]
        false += bool(find_steps(synthetic_series(random.Random(10_000 + trial), 30)))
    assert found >= 37  # 95 % of 40 is 38; the benchmark measures 96 of 100
    assert false <= 2


def test_the_newest_run_as_a_step() -> None:
    """A last run 1.3x above twenty steady ones is a step; one within the noise is not."""
    rng = random.Random(3)
    steady = [rng.lognormvariate(0, 0.02) for _ in range(20)]
    step = newest_step([*steady, 1.3], find_steps([*steady, 1.3]))
    assert step is not None
    assert step.index == 20
    assert step.low > 1.2
    assert newest_step([*steady, 1.01], find_steps([*steady, 1.01])) is None
    assert newest_step([1.0, 2.0], []) is None  # too short to tell
