"""When calls were made: slower stretches of a run, calls in one moment, functions alongside."""

from __future__ import annotations

import math
import random

from callmetrics._outputs.timing import alongside, cut, kept, stretches
from callmetrics._outputs.verdicts import Side, Thresholds, judge
from store_helpers import snapshot

Timed = dict[str, list[tuple[float, float]]]


def timed_side(functions: Timed) -> Side:
    """A run whose retained calls are ``functions``' (start, duration) pairs."""
    calls = {name: ([s for s, _ in pairs], [d for _, d in pairs])
             for name, pairs in functions.items()}
    return Side([snapshot(name, [d for _, d in pairs]) for name, pairs in functions.items()],
                calls)


def run(rng: random.Random, names: list[str], *, rounds: int = 400, start: float = 0.0,
        slow: dict[str, float] | None = None,
        stretch: tuple[int, int, dict[str, float]] | None = None) -> Timed:
    """``rounds`` rounds calling each of ``names`` in turn (1 ms a round).

    ``slow`` makes a function that much slower throughout; ``stretch`` (first round,
    last round, factor per function) makes the machine slower for those rounds, by a
    different amount for each function, as a busy neighbour does.
    """
    found: Timed = {name: [] for name in names}
    for r in range(rounds):
        for k, name in enumerate(names):
            value = rng.lognormvariate(0, 0.1) * 1e-4 * (1 + k / 10)
            value *= (slow or {}).get(name, 1.0)
            if stretch is not None and stretch[0] <= r < stretch[1]:
                value *= stretch[2][name]
            found[name].append((start + r * 1e-3 + k * 1e-5, value))
    return found


NAMES = [f"f{i}" for i in range(8)]
# A busy neighbour slows each function differently: 1.5x to 2.2x.
UNEVEN = {name: 1.5 + 0.1 * i for i, name in enumerate(NAMES)}


def test_a_slower_stretch_is_found_and_its_calls_left_out() -> None:
    """Rounds 100-199 of 400 at 1.5-2.2x: those windows (5 of 20) are left out."""
    calls = timed_side(run(random.Random(1), NAMES, stretch=(100, 200, UNEVEN))).calls
    windows = cut(calls)
    found = stretches(calls, windows)
    assert found.windows == 20
    assert found.left_out == frozenset(range(5, 10))
    assert 1.7 < found.slowest < 2.0
    starts, durations = kept(calls, windows, found.left_out, "f0")
    assert len(durations) == 300
    assert not any(0.100 <= s < 0.200 for s in starts)


def test_a_steady_run_leaves_nothing_out() -> None:
    """No stretch: every window within noise of the run's best, nothing left out."""
    calls = timed_side(run(random.Random(2), NAMES)).calls
    found = stretches(calls, cut(calls))
    assert found.left_out == frozenset()
    assert found.slowest == 1.0


def test_a_real_slowdown_is_found_through_a_stretch_that_slows_each_function_its_own_way(
) -> None:
    """Head: f5 1.3x slower, and 40% of the run beside a neighbour (1.5-2.2x, uneven).

    Divided by one factor, the uneven stretch would hide f5 or name another function;
    with the stretch left out only f5 regresses, and the output says what was left out.
    """
    rng = random.Random(3)
    base = timed_side(run(rng, NAMES))
    head = timed_side(run(rng, NAMES, slow={"f5": 1.3}, stretch=(0, 160, UNEVEN)))
    found, env = judge(base, head, Thresholds())
    assert [c.name for c in found if c.regressed] == ["f5"]
    assert found[0].adjusted is not None
    assert 1.2 < found[0].adjusted < 1.4
    assert env.stretches is not None
    assert env.stretches[0].left_out == frozenset()
    assert len(env.stretches[1].left_out) == 8
    assert found[0].head_samples == 240  # the 160 rounds of the stretch left out


def test_calls_in_one_moment_are_not_gated() -> None:
    """40 calls in one burst of the head run (3x slower): not gated, and why."""
    rng = random.Random(4)
    base_calls = run(rng, NAMES)
    head_calls = run(rng, NAMES)
    base_calls["burst"] = [(i * 1e-2, 1e-4) for i in range(40)]
    head_calls["burst"] = [(0.2 + i * 1e-7, 3e-4) for i in range(40)]
    found, _ = judge(timed_side(base_calls), timed_side(head_calls), Thresholds())
    burst = next(c for c in found if c.name == "burst")
    assert burst.verdict == "untested"
    assert not burst.regressed
    assert burst.reason == ("not gated: its calls in head fall in 2 of the run's 20 windows: "
                            "one moment of the machine, not a sample of it")


def test_functions_called_apart_are_judged_by_those_called_alongside_them() -> None:
    """A test suite's modules: eight functions, then five others, run after each other.

    In the head the machine was 1.5x slower while the five ran, and one of them (g2) is
    really 1.3x slower: the five are judged by their own shift, g2 alone regresses,
    and a group of three (too few to tell the machine's speed) is not gated.
    """
    rng = random.Random(5)
    group = [f"g{i}" for i in range(5)]
    trio = [f"t{i}" for i in range(3)]
    base = {**run(rng, NAMES), **run(rng, group, start=1.0), **run(rng, trio, start=2.0)}
    head = {**run(rng, NAMES), **run(rng, group, start=1.0, slow={
        name: 1.5 * (1.3 if name == "g2" else 1.0) for name in group}),
        **run(rng, trio, start=2.0, slow=dict.fromkeys(trio, 1.5))}
    found, _ = judge(timed_side(base), timed_side(head), Thresholds())
    assert [c.name for c in found if c.regressed] == ["g2"]
    by_name = {c.name: c for c in found}
    assert by_name["g2"].alongside == 4
    assert by_name["g2"].factor > 1.4
    assert "(judged by the 4 functions called alongside it: machine 1." in by_name["g2"].reason
    assert by_name["f0"].alongside == 7
    assert by_name["t0"].verdict == "untested"
    assert by_name["t0"].reason == ("not gated: 2 tested functions called alongside it (< 4): "
                                    "the machine's speed at its times is unknown")
    assert by_name["t0"].adjusted is None  # the machine's share at its times is unknown
    assert math.isnan(by_name["t0"].factor)


def test_alongside_needs_both_runs() -> None:
    """Called together in the base but apart in the head: not alongside."""
    base = {"a": [0, 0, 1, 1], "b": [0, 1, 1, 0]}
    head = {"a": [0, 0, 1, 1], "b": [2, 3, 3, 2]}
    assert alongside(base, base, ["a", "b"]) == {"a": ["b"], "b": ["a"]}
    assert alongside(base, head, ["a", "b"]) == {"a": [], "b": []}


def test_too_few_calls_once_a_stretch_is_left_out_says_so() -> None:
    """40 calls in the head, 20 of them in its slower stretch: untested, and why."""
    rng = random.Random(6)
    base_calls = run(rng, NAMES)
    head_calls = run(rng, NAMES, stretch=(0, 200, UNEVEN))
    base_calls["few"] = [(i * 1e-2, 1e-4) for i in range(40)]
    head_calls["few"] = [(i * 1e-2, 1e-4) for i in range(40)]
    found, _ = judge(timed_side(base_calls), timed_side(head_calls), Thresholds())
    few = next(c for c in found if c.name == "few")
    assert few.verdict == "untested"
    assert few.reason == ("20 retained in head (20 more in its slower stretches, left out) "
                          "(< --min-calls 30)")


def test_functions_alongside_that_moved_apart_give_no_shift_to_judge_by() -> None:
    """Five functions called apart, moved 1.0x to 2.5x in the head: none is gated."""
    rng = random.Random(7)
    group = [f"g{i}" for i in range(5)]
    moved = dict(zip(group, [1.0, 1.25, 1.6, 2.0, 2.5], strict=True))
    base = {**run(rng, NAMES), **run(rng, group, start=1.0)}
    head = {**run(rng, NAMES), **run(rng, group, start=1.0, slow=moved)}
    found, _ = judge(timed_side(base), timed_side(head), Thresholds())
    assert not any(c.regressed for c in found)
    g0 = next(c for c in found if c.name == "g0")
    assert g0.verdict == "untested"
    assert g0.reason == ("not gated: the 4 functions called alongside it share no shift "
                         "(only 0 within 1.1x of their median)")


def test_the_windows_are_the_same_when_the_reader_gives_every_start_in_order() -> None:
    """A store reader has all the calls' starts in order: cut uses them instead of sorting."""
    calls = timed_side(run(random.Random(8), NAMES, stretch=(50, 90, UNEVEN))).calls
    everything = sorted(s for starts, _ in calls.values() for s in starts)
    assert cut(calls, starts=everything) == cut(calls)
