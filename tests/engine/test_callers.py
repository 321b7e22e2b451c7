"""Where the time goes: self time, inclusive time (recursion once), callers, wall time.

Run on the hot path in use (the suite runs once with the accelerator and once with
``CALLMETRICS_PURE_PYTHON=1``); ``test_c_and_python_agree`` runs both in one test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from callmetrics import Analytics, load
from callmetrics._engine.state import OTHER_CALLERS, FunctionSnapshot

DATA = Path(__file__).parent.parent / "data"


def spin(n: int) -> int:
    """Burn a little CPU (untracked)."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def nested_program(analytics: Analytics, suffix: str = "") -> Any:
    """Track root -> mid -> leaf (twice), root -> fib (recursive), root -> block -> leaf."""

    @analytics.track("t", name=f"leaf{suffix}")
    def leaf(n: int) -> int:
        return spin(n)

    @analytics.track("t", name=f"mid{suffix}")
    def mid(n: int) -> int:
        return leaf(n) + leaf(n) + spin(n)

    @analytics.track("t", name=f"fib{suffix}")
    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    @analytics.track("t", name=f"root{suffix}")
    def root() -> None:
        mid(2000)
        fib(10)
        with analytics.measure(f"block{suffix}"):
            leaf(500)

    return root


class Known:
    """A function's snapshot whose self and inclusive time are known (not None)."""

    def __init__(self, snap: FunctionSnapshot) -> None:
        """Copy what the tests read of ``snap``."""
        assert snap.self_time is not None
        assert snap.inclusive_time is not None
        self.name, self.calls, self.total = snap.name, snap.calls, snap.total
        self.self_time: float = snap.self_time
        self.inclusive_time: float = snap.inclusive_time
        self.callers = snap.callers


def by_name(analytics: Analytics) -> dict[str, Known]:
    return {snap.name: Known(snap) for snap in analytics.snapshot()}


def callers(snap: Known | FunctionSnapshot) -> dict[str, int]:
    return {edge.name: edge.calls for edge in snap.callers}


def test_self_time_is_duration_less_the_tracked_calls_made(analytics: Analytics) -> None:
    """Each function's self time is its time less its direct tracked callees' time."""
    root = nested_program(analytics)
    for _ in range(5):
        root()
    snaps = by_name(analytics)
    # Everything ran inside root: the self times add up to root's time exactly.
    assert math.fsum(s.self_time for s in snaps.values()) == pytest.approx(
        snaps["root"].total, rel=1e-9)
    leaf = snaps["leaf"]
    assert leaf.self_time == pytest.approx(leaf.total, rel=1e-12)  # calls nothing tracked
    mid = snaps["mid"]
    from_mid = next(e.time for e in leaf.callers if e.name == "mid")
    assert mid.self_time == pytest.approx(mid.total - from_mid, rel=1e-9)
    assert 0 < mid.self_time < mid.total
    # A measure() block is a tracked call too: a caller and a callee.
    assert callers(snaps["block"]) == {"root": 5}
    assert callers(leaf) == {"mid": 10, "block": 5}
    assert callers(snaps["root"]) == {}  # called from untracked code


def test_recursion_is_counted_once_in_inclusive_time(analytics: Analytics) -> None:
    """A recursive function's inclusive time is the time of its outermost calls only."""
    root = nested_program(analytics)
    for _ in range(3):
        root()
    fib = by_name(analytics)["fib"]
    outer = next(e for e in fib.callers if e.name == "root")
    assert outer.calls == 3
    assert fib.inclusive_time == pytest.approx(outer.time, rel=1e-9)
    assert fib.inclusive_time < fib.total  # the sum of durations counts each level again
    assert callers(fib) == {"root": 3, "fib": fib.calls - 3}
    mid = by_name(analytics)["mid"]
    assert mid.inclusive_time == pytest.approx(mid.total, rel=1e-12)  # not recursive


def test_mutual_recursion_counts_outermost_calls_only(analytics: Analytics) -> None:
    """Indirect recursion (even -> odd -> even) is nested too."""

    @analytics.track("t", name="even")
    def even(n: int) -> bool:
        return True if n == 0 else odd(n - 1)

    @analytics.track("t", name="odd")
    def odd(n: int) -> bool:
        return False if n == 0 else even(n - 1)

    for _ in range(4):
        even(9)
    snaps = by_name(analytics)
    assert snaps["even"].calls == 20
    assert snaps["odd"].calls == 20
    # The 4 outer calls of even; odd's outermost calls are the ones even made first.
    assert snaps["even"].inclusive_time == pytest.approx(snaps["even"].total - math.fsum(
        e.time for e in snaps["even"].callers), rel=1e-9)
    first_odd = [e for e in snaps["odd"].callers if e.name == "even"]
    assert sum(e.calls for e in first_odd) == 20
    assert snaps["odd"].inclusive_time < snaps["odd"].total


def test_failed_calls_keep_their_caller(analytics: Analytics) -> None:
    """A call that raises is still counted under its caller, and in the caller's children."""

    @analytics.track("t", name="fails")
    def fails() -> None:
        spin(300)
        raise ValueError("no")

    @analytics.track("t", name="outer")
    def outer() -> None:
        for _ in range(3):
            with pytest.raises(ValueError, match="no"):
                fails()

    outer()
    snaps = by_name(analytics)
    assert callers(snaps["fails"]) == {"outer": 3}
    assert snaps["outer"].self_time == pytest.approx(
        snaps["outer"].total - snaps["fails"].total, rel=1e-9)


def test_caller_edges_past_the_cap_fold_into_other_callers(analytics: Analytics) -> None:
    """Past the instance's cap on edges, new callers share one entry; totals stay exact."""
    analytics._recorder.budget.left = 2  # the cap, made small for the test

    @analytics.track("t", name="shared")
    def shared() -> int:
        return spin(200)

    made = []
    for i in range(5):
        @analytics.track("t", name=f"caller{i}")
        def caller() -> int:
            return shared() + shared()

        made.append(caller)

    @analytics.track("t", name="top")
    def top() -> None:
        for caller in made:
            caller()

    top()
    snaps = by_name(analytics)
    found = callers(snaps["shared"])
    assert sum(found.values()) == 10
    assert found[OTHER_CALLERS] > 0
    assert len(found) <= 3
    # Self times stay exact: every caller's is its time less its two calls of shared.
    assert math.fsum(s.self_time for s in snaps.values()) == pytest.approx(
        snaps["top"].total, rel=1e-9)
    for i in range(5):
        assert snaps[f"caller{i}"].self_time < snaps[f"caller{i}"].total


def test_threads_do_not_attribute_time_across(analytics: Analytics) -> None:
    """4 threads running the nested program: each thread's calls have its own callers."""
    roots = [nested_program(analytics, suffix=str(i)) for i in range(4)]
    barrier = threading.Barrier(4)

    def run(root: Any) -> None:
        barrier.wait()
        for _ in range(20):
            root()

    threads = [threading.Thread(target=run, args=(root,)) for root in roots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snaps = by_name(analytics)
    for i in range(4):
        assert callers(snaps[f"mid{i}"]) == {f"root{i}": 20}
        assert callers(snaps[f"leaf{i}"]) == {f"mid{i}": 40, f"block{i}": 20}
        assert callers(snaps[f"fib{i}"])[f"root{i}"] == 20
        # Per thread, the self times of its functions add up to its root's time.
        mine = [s for name, s in snaps.items() if name.endswith(str(i))]
        assert math.fsum(s.self_time for s in mine) == pytest.approx(
            snaps[f"root{i}"].total, rel=1e-9)


def test_wall_time_and_totals(analytics: Analytics) -> None:
    """The wall time runs from the instance's creation; self times add up within it."""
    root = nested_program(analytics)
    root()
    stats = analytics.get_stats()
    reading = analytics.read()
    assert reading.wall_time is not None
    assert stats["self_time"] <= stats["wall_time"]
    assert stats["self_time"] == pytest.approx(stats["total_time"] - math.fsum(
        e.time for s in reading.functions for e in s.callers), rel=1e-9)
    assert stats["total_time"] > stats["self_time"]  # nested durations overlap
    exported = analytics.to_dict()
    functions = {f["name"]: f for f in exported["functions"]}
    assert functions["leaf"]["callers"] == [
        {"name": e.name, "calls": e.calls, "time": e.time}
        for e in by_name(analytics)["leaf"].callers]
    assert functions["leaf"]["active_time"] == functions["leaf"]["total_time"]
    assert exported["totals"]["self_time"] == pytest.approx(stats["self_time"])


def test_merge_keeps_every_new_aggregate() -> None:
    """merge_with() adds self and inclusive time and callers (by name) exactly."""
    first, second = Analytics(), Analytics()
    for analytics in (first, second):
        root = nested_program(analytics)
        for _ in range(3):
            root()
    expected = {name: (s.self_time, s.inclusive_time, callers(s))
                for name, s in by_name(first).items()}
    other = by_name(second)
    first.merge_with(second)
    merged = by_name(first)
    for name, (self_time, inclusive, calls_by) in expected.items():
        assert merged[name].self_time == pytest.approx(self_time + other[name].self_time)
        assert merged[name].inclusive_time == pytest.approx(
            inclusive + other[name].inclusive_time)
        assert callers(merged[name]) == {k: 2 * v for k, v in calls_by.items()}
    # Later calls still attribute into the merged instance.
    first.track("t", name="late")(spin)(10)
    assert by_name(first)["late"].self_time is not None


def test_store_round_trip_and_old_stores(tmp_path: Path) -> None:
    """Two runs' attribution reads back from the store summed; old stores read as unknown."""
    path = tmp_path / "runs.db"
    live: list[dict[str, Known]] = []
    for _ in range(2):
        analytics = Analytics(store=path)
        root = nested_program(analytics)
        for _ in range(3):
            root()
        live.append(by_name(analytics))
        analytics.close()
    view = load(path)
    stored = by_name(view)
    for name, snap in stored.items():
        assert snap.self_time == pytest.approx(
            live[0][name].self_time + live[1][name].self_time, rel=1e-9)
        assert snap.inclusive_time == pytest.approx(
            live[0][name].inclusive_time + live[1][name].inclusive_time, rel=1e-9)
        assert callers(snap) == {k: 2 * v for k, v in callers(live[0][name]).items()}
    wall = view.read().wall_time
    assert wall is not None
    assert wall > 0
    for old in ("store_v1.db", "store_v2.db"):
        copy = tmp_path / old
        copy.write_bytes((DATA / old).read_bytes())
        snaps = load(copy).snapshot()
        assert snaps
        assert all(s.self_time is None and s.inclusive_time is None and s.callers == ()
                   for s in snaps)
        assert load(copy).get_stats()["self_time"] is None


_DIFFERENTIAL = """
import json, sys
sys.path.insert(0, {tests!r})
from engine.test_callers import nested_program
from callmetrics import Analytics
import callmetrics
analytics = Analytics()
root = nested_program(analytics)
for _ in range(4):
    root()
out = {{s.name: [s.calls, sorted((e.name, e.calls) for e in s.callers),
                 s.self_time <= s.total, s.inclusive_time <= s.total]
       for s in analytics.snapshot()}}
print(json.dumps([callmetrics.implementation, out]))
"""


def test_c_and_python_agree() -> None:
    """The C and the pure-Python hot paths record the same calls under the same callers."""
    from callmetrics._engine import accel  # noqa: PLC0415

    if accel.speedups is None:
        pytest.skip(f"the C accelerator is not in use ({accel.REASON})")
    script = _DIFFERENTIAL.format(tests=str(Path(__file__).parent.parent))
    found = []
    for pure in ("0", "1"):
        env = {**os.environ, "CALLMETRICS_PURE_PYTHON": pure}
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, check=True, timeout=120)
        found.append(json.loads(done.stdout))
    assert [impl for impl, _ in found] == ["c", "python"]
    assert found[0][1] == found[1][1]


def _program(ns: dict[str, Any]) -> None:
    """Fill ``ns``: root calls mid (which calls leaf twice), fib (recursive), even/odd."""

    def leaf(n: int) -> int:
        total = 0  # the work inline: a call to spin() would be a function of its own here
        for i in range(n):
            total += i * i
        return total

    def mid(n: int) -> int:
        return int(ns["leaf"](n) + ns["leaf"](n))

    def fib(n: int) -> int:
        return n if n < 2 else ns["fib"](n - 1) + ns["fib"](n - 2)

    def even(n: int) -> bool:
        return True if n == 0 else ns["odd"](n - 1)

    def odd(n: int) -> bool:
        return False if n == 0 else ns["even"](n - 1)

    def root() -> None:
        for _ in range(3):
            ns["mid"](20_000)
        ns["fib"](8)
        ns["even"](7)

    ns.update(leaf=leaf, mid=mid, fib=fib, even=even, odd=odd, root=root)


def test_callers_and_ranking_agree_with_cprofile(analytics: Analytics) -> None:
    """On a small nested program, callers and call counts are cProfile's; the top agrees."""
    import cProfile  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    plain: dict[str, Any] = {}
    _program(plain)
    profile = cProfile.Profile(builtins=False)
    profile.runcall(plain["root"])
    table = pstats.Stats(profile).stats  # type: ignore[attr-defined]  # pstats keeps its table there
    names = set(plain)
    profiled: dict[str, dict[str, int]] = {}
    tottime: dict[str, float] = {}
    for (_, _, name), (_, _, took, _, by) in table.items():
        if name in names:
            tottime[name] = took
            profiled[name] = {caller[2]: count for caller, (count, _, _, _) in by.items()
                              if caller[2] in names}

    tracked: dict[str, Any] = {}
    _program(tracked)
    for name in list(tracked):
        tracked[name] = analytics.track("t", name=name)(tracked[name])
    tracked["root"]()
    snaps = by_name(analytics)
    for name in names:
        assert callers(snaps[name]) == profiled[name], name
    assert max(snaps, key=lambda n: snaps[n].self_time) == max(tottime, key=tottime.__getitem__)
    # Recursion once: fib's inclusive time is its one outer call's.
    assert snaps["fib"].inclusive_time == pytest.approx(snaps["fib"].callers[0].time
                                                        if snaps["fib"].callers[0].name == "root"
                                                        else snaps["fib"].callers[1].time)


def test_coroutine_steps_are_attributed(analytics: Analytics) -> None:
    """A coroutine's steps are its own: calls made in them have it as their caller."""
    import asyncio  # noqa: PLC0415

    @analytics.track("t", name="step")
    def step() -> int:
        return spin(100)

    @analytics.track("t", name="task")
    async def task() -> int:
        await asyncio.sleep(0)
        return step()

    async def main() -> None:
        await asyncio.gather(*(task() for _ in range(5)))

    asyncio.run(main())
    snaps = {s.name: s for s in analytics.snapshot()}
    task_snap, step_snap = snaps["task"], snaps["step"]
    assert task_snap.callers == ()  # started by the event loop
    assert callers(step_snap) == {"task": 5}
    assert task_snap.self_time == pytest.approx(task_snap.total - step_snap.total, abs=1e-9)
    assert task_snap.active_time is not None
    assert task_snap.active_self_time is not None
    assert task_snap.active_time <= task_snap.total
    assert task_snap.active_self_time == pytest.approx(task_snap.active_time - step_snap.total,
                                                       abs=1e-6)
    assert analytics.get_stats()["self_time"] is not None
    exported = {f["name"]: f for f in analytics.to_dict()["functions"]}
    assert exported["task"]["self_time"] == pytest.approx(task_snap.self_time)


def test_a_block_left_open_does_not_corrupt_the_stack(analytics: Analytics) -> None:
    """A block entered and never exited inside a call is dropped when that call ends."""

    @analytics.track("t", name="inner")
    def inner() -> int:
        return spin(10)

    @analytics.track("t", name="leaky")
    def leaky() -> None:
        analytics.measure("never closed").__enter__()  # left open on purpose
        inner()

    @analytics.track("t", name="after")
    def after() -> int:
        return inner()

    leaky()
    after()
    inner()
    snaps = {s.name: s for s in analytics.snapshot()}
    assert callers(snaps["inner"]) == {"never closed": 1, "after": 1}
    assert callers(snaps["after"]) == {}
    assert callers(snaps["leaky"]) == {}
