"""``callmetrics run`` tells where the time goes: self, inclusive and active time, callers.

On 3.12+ the calls are seen through sys.monitoring, on 3.11 through wrappers; either
way they go on the thread's stack of tracked calls, as decorated calls do, and the
steps of coroutines and generators are timed (their active time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from callmetrics import load
from callmetrics._engine.accel import speedups

RECURSIVE = """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def work():
    return sum(i * i for i in range(20000))

def main():
    fib(15)
    work()

main()
"""


def test_a_recursive_program_run_untouched_has_exact_attribution(tmp_path: Path) -> None:
    """The program's main contains every fib call: recursion counts once, callers exact."""
    program = tmp_path / "prog.py"
    program.write_text(RECURSIVE)
    store = tmp_path / "runs.db"
    done = subprocess.run([sys.executable, "-m", "callmetrics", "run", "--exact", "--store",
                           str(store), "--no-report", str(program)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = {snap.name: snap for snap in load(store).snapshot()}
    fib, main, work = found["fib"], found["main"], found["work"]
    assert fib.calls == 1973  # fib(15) makes 1,973 calls
    callers = {edge.name: edge.calls for edge in fib.callers}
    assert callers == {"fib": 1972, "main": 1}
    assert {edge.name: edge.calls for edge in work.callers} == {"main": 1}
    assert main.callers == ()
    assert fib.inclusive_time is not None
    assert main.inclusive_time is not None
    assert main.self_time is not None
    assert fib.self_time is not None
    assert work.self_time is not None
    # Recursion once: fib's inclusive time is its outermost call's, inside main's.
    assert fib.inclusive_time < fib.total
    assert fib.inclusive_time + work.total <= main.inclusive_time * 1.000001
    # Self times add up to the outermost call's time: nothing counted twice.
    summed = main.self_time + fib.self_time + work.self_time
    assert abs(summed - main.inclusive_time) <= 1e-6 * max(1.0, main.inclusive_time) + 1e-9


ASYNC = """
import asyncio, json, sys, time

MEASURED = []

def spin_cpu(seconds):
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    while time.thread_time() - cpu0 < seconds:
        pass
    return time.thread_time() - cpu0, time.perf_counter() - wall0

async def task(i):
    began = time.perf_counter()
    await asyncio.sleep(0.02 + 0.03 * i)
    slept = time.perf_counter() - began  # the sleep as the loop gave it
    cpu, wall = spin_cpu(0.005)
    MEASURED.append((slept, cpu, wall))

async def main():
    await asyncio.gather(*(task(i) for i in range(20)))

asyncio.run(main())
with open(sys.argv[1], "w") as out:
    json.dump(MEASURED, out)
"""


@pytest.mark.parametrize("pure", [False, True], ids=["c", "python"])
def test_an_asyncio_program_under_run_has_active_time(tmp_path: Path, pure: bool) -> None:
    """20 tasks that sleep, then do measured CPU work: active time is the work.

    The tasks wake 30 ms apart and work 5 ms of CPU each, so none waits behind
    another: each one's duration is its sleep plus its work.  On 3.12+ through
    sys.monitoring; on 3.11 through the wrappers' step proxy.
    """
    if not pure and speedups is None:
        pytest.skip("the C accelerator is not built")
    program, measured, store = tmp_path / "prog.py", tmp_path / "m.json", tmp_path / "runs.db"
    program.write_text(ASYNC)
    env = {**os.environ, "CALLMETRICS_PURE_PYTHON": "1" if pure else "0"}
    done = subprocess.run([sys.executable, "-m", "callmetrics", "run", "--exact", "--store",
                           str(store), "--no-report", str(program), str(measured)],
                          capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    calls: list[Any] = json.loads(measured.read_text())
    analytics = load(store)
    found = {s.name: s for s in analytics.snapshot()}
    snap = found["task"]
    assert snap.calls == 20
    slept = sum(s for s, _, _ in calls)
    cpu = sum(c for _, c, _ in calls)
    wall = sum(w for _, _, w in calls)
    # Its steps contain the work and little else (30 ms a call allowed for steps
    # preempted on a loaded machine; its sleeps, 0.02 to 0.59 s, are left out).
    assert snap.active_time is not None
    assert cpu * 0.9 <= snap.active_time <= wall * 1.1 + 0.03 * len(calls)
    assert snap.active_time <= snap.total - slept * 0.9
    assert snap.total == pytest.approx(slept + wall, rel=0.1, abs=0.02 * len(calls))
    assert snap.active_self_time is not None
    assert 0.0 <= snap.active_self_time <= snap.active_time
    assert {e.name: e.calls for e in found["spin_cpu"].callers} == {"task": 20}
    stats = analytics.get_stats()
    assert stats["self_time"] <= stats["wall_time"]
    function = next(f for f in analytics.to_dict()["functions"] if f["name"] == "task")
    assert function["active_time"] == pytest.approx(snap.active_time)
