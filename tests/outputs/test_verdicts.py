"""diff's decisions: the environment factor, Holm's correction, asv's guard, the reasons."""

from __future__ import annotations

import random

import pytest

from callmetrics._outputs.verdicts import Side, Thresholds, holm, judge, smallest_p
from store_helpers import snapshot


def side(functions: dict[str, list[float]], probe: list[float] | None = None,
         retained: bool = True) -> Side:
    calls = {name: ([float(i) for i in range(len(values))], values)
             for name, values in functions.items()} if retained else {}
    return Side([snapshot(name, values) for name, values in functions.items()], calls, probe)


def draws(rng: random.Random, scale: float = 1.0, n: int = 300,
          level: float = 1e-3) -> list[float]:
    return [rng.lognormvariate(0, 0.1) * level * scale for _ in range(n)]


def test_holm_matches_the_textbook_steps() -> None:
    """Holm: the i-th smallest p times (m - i + 1), kept increasing, capped at 1."""
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


def test_the_guard_knows_what_a_sample_can_reach() -> None:
    """The exact test of 3 against 4 values cannot go below 2/35; 30 a side can."""
    assert smallest_p(3, 4) == pytest.approx(2 / 35)
    assert smallest_p(0, 5) == 1.0
    assert smallest_p(30, 30) < 1e-15


def test_a_sample_that_cannot_reach_alpha_is_not_tested() -> None:
    """Asv's guard: 4 calls a side, --min-calls 2: untested, and the row says why."""
    rng = random.Random(1)
    found, _ = judge(side({"f": draws(rng, n=4)}), side({"f": draws(rng, 3, n=4)}),
                     Thresholds(min_calls=2))
    assert found[0].verdict == "untested"
    assert found[0].reason == "4 and 4 retained: the test cannot reach p < 0.002"


def test_a_machine_slower_for_every_function_is_not_a_regression() -> None:
    """Eight functions all 1.4x slower (the machine): the common shift, no regression."""
    rng = random.Random(2)
    names = [f"f{i}" for i in range(8)]
    base = side({n: draws(rng) for n in names})
    head = side({n: draws(rng, 1.4) for n in names})
    found, env = judge(base, head, Thresholds())
    assert env.used == "common"
    assert env.factor.value == pytest.approx(1.4, rel=0.05)
    assert env.why.startswith("common shift of 8 of 8 functions")
    assert not any(c.regressed for c in found)
    assert all(c.verdict == "same" for c in found)
    # Without the correction, every one of them would fail the gate.
    plain, _ = judge(base, head, Thresholds(environment="none"))
    assert all(c.regressed for c in plain)


def test_one_real_slowdown_stands_out_of_a_slower_machine() -> None:
    """Machine 1.3x slower, one function 1.3x more on top: only that one regresses."""
    rng = random.Random(3)
    names = [f"f{i}" for i in range(8)]
    base = side({n: draws(rng) for n in names})
    head = side({n: draws(rng, 1.3 * (1.3 if n == "f5" else 1.0)) for n in names})
    found, env = judge(base, head, Thresholds())
    assert env.used == "common"
    assert [c.name for c in found if c.regressed] == ["f5"]
    f5 = found[0]
    assert f5.adjusted == pytest.approx(1.3, rel=0.06)
    assert f5.ratio == pytest.approx(1.69, rel=0.06)
    assert f5.reason.startswith("CI [1.")
    assert f5.reason.endswith("] above --max-ratio 1.1")


def test_a_precise_probe_corrects_when_no_common_shift_can_be_told() -> None:
    """Two functions (too few for a common shift), a probe saying 1.4x: judged by it."""
    rng = random.Random(4)
    base = side({"a": draws(rng), "b": draws(rng)}, probe=[1e-4, 1.01e-4, 0.99e-4])
    head = side({"a": draws(rng, 1.4), "b": draws(rng, 1.4)},
                probe=[1.4e-4, 1.41e-4, 1.39e-4])
    found, env = judge(base, head, Thresholds())
    assert env.used == "probe"
    assert env.factor.value == pytest.approx(1.4)
    assert not any(c.regressed for c in found)


def test_a_probe_with_two_samples_or_a_wide_spread_is_not_used() -> None:
    """Start and end samples only, or samples far apart: too noisy, said so."""
    rng = random.Random(5)
    base_calls = {"a": draws(rng), "b": draws(rng)}
    head_calls = {"a": draws(rng, 1.4), "b": draws(rng, 1.4)}
    _, env = judge(side(base_calls, probe=[1e-4, 1e-4]), side(head_calls, probe=[1.4e-4] * 2),
                   Thresholds())
    assert env.used == "none"
    assert "fewer than 3 samples" in env.why
    _, env = judge(side(base_calls, probe=[1e-4, 2e-4, 1e-4]),
                   side(head_calls, probe=[1.4e-4, 0.7e-4, 2e-4]), Thresholds())
    assert env.used == "none"
    assert "too noisy" in env.why


def test_a_probe_disagreeing_with_the_functions_loses_and_the_reason_says_so() -> None:
    """Probe 1.0x but all eight functions 1.3x: the common shift is used, and why."""
    rng = random.Random(6)
    names = [f"f{i}" for i in range(8)]
    found, env = judge(side({n: draws(rng) for n in names}, probe=[1e-4] * 4),
                       side({n: draws(rng, 1.3) for n in names}, probe=[1e-4] * 4),
                       Thresholds())
    assert env.used == "common"
    assert "not the probe's 1.00x" in env.why
    assert not any(c.regressed for c in found)


def test_regressed_only_when_the_whole_interval_is_above_max_ratio() -> None:
    """1.15x slower in few noisy calls: slower, but the CI includes 1.1, so no regression."""
    rng = random.Random(7)
    base = side({"f": [rng.lognormvariate(0, 0.3) * 1e-3 for _ in range(60)]})
    head = side({"f": [rng.lognormvariate(0, 0.3) * 1.6e-3 for _ in range(60)]})
    found, _ = judge(base, head, Thresholds(max_ratio=1.5))
    assert found[0].verdict == "slower"
    assert not found[0].regressed
    assert found[0].ratio_low is not None
    assert found[0].ratio_low <= 1.5 <= (found[0].ratio_high or 0)
    assert found[0].reason.endswith("includes 1.5")


def test_holm_keeps_a_marginal_difference_among_many_functions_from_counting() -> None:
    """A p of about 0.001 alone is significant; among 40 functions it is not."""
    rng = random.Random(8)
    base_f = [1.0 + i / 1000 for i in range(200)]
    rng.shuffle(base_f)
    head_f = [v * 1.019 for v in base_f]
    rng.shuffle(head_f)
    alone, _ = judge(side({"f": base_f}), side({"f": head_f}),
                     Thresholds(min_delta=0, environment="none"))
    assert alone[0].raw_p is not None
    assert alone[0].raw_p < 0.002
    assert alone[0].verdict == "slower"
    others = {f"g{i}": [1.0 + j / 1000 for j in range(200)] for i in range(39)}
    many, _ = judge(side({"f": base_f, **others}), side({"f": head_f, **others}),
                    Thresholds(min_delta=0, environment="none"))
    f = next(c for c in many if c.name == "f")
    assert f.p_value == pytest.approx(min(1.0, 40 * (f.raw_p or 0)))
    assert f.verdict == "same"
    assert f.reason.startswith("p=")
    assert f.reason.endswith("after Holm, not below 0.002")


def test_zero_retained_calls_point_at_max_events() -> None:
    """Calls counted but none retained (evicted by max_events): the reason says so."""
    rng = random.Random(9)
    found, _ = judge(side({"f": draws(rng)}, retained=False), side({"f": draws(rng)}),
                     Thresholds())
    assert found[0].verdict == "untested"
    assert found[0].reason == "0 retained in base (300 calls): raise max_events"


def test_function_filter_keeps_the_environment_of_all() -> None:
    """keep= compares the chosen functions; the common shift still comes from all."""
    rng = random.Random(10)
    names = [f"f{i}" for i in range(8)]
    found, env = judge(side({n: draws(rng) for n in names}),
                       side({n: draws(rng, 1.3) for n in names}), Thresholds(),
                       keep=lambda name: name == "f3")
    assert [c.name for c in found] == ["f3"]
    assert env.used == "common"
    assert env.tested == 8


def test_faster_says_its_interval_and_p() -> None:
    """A significantly faster function: its reason gives the interval and the adjusted p."""
    rng = random.Random(11)
    found, _ = judge(side({"f": draws(rng, 1.5)}), side({"f": draws(rng)}), Thresholds())
    assert found[0].verdict == "faster"
    assert found[0].reason.startswith("CI [0.")
    assert found[0].reason.endswith("after Holm")


def test_a_shift_within_its_own_noise_is_not_applied() -> None:
    """Eight unchanged functions: the common shift holds 1, and nothing is divided."""
    rng = random.Random(12)
    names = [f"f{i}" for i in range(8)]
    found, env = judge(side({n: draws(rng) for n in names}), side({n: draws(rng) for n in names}),
                       Thresholds())
    assert env.used == "none"
    assert env.factor.value == 1.0
    assert env.why.startswith("the common shift's 1.0")
    assert "is within its noise [" in env.why
    assert all(c.factor == 1.0 for c in found)


@pytest.mark.parametrize(("mode", "used"), [("none", "none"), ("probe", "probe"),
                                            ("common", "common")])
def test_environment_modes_force_the_choice(mode: str, used: str) -> None:
    """--environment none/probe/common: that estimate, whatever auto would pick."""
    rng = random.Random(13)
    names = [f"f{i}" for i in range(8)]
    _, env = judge(side({n: draws(rng) for n in names}, probe=[1e-4] * 3),
                   side({n: draws(rng, 1.3) for n in names}, probe=[1.2e-4] * 3),
                   Thresholds(environment=mode))  # type: ignore[arg-type]  # the CLI checks it
    assert env.used == used
    if used == "probe":
        assert env.factor.value == pytest.approx(1.2)
