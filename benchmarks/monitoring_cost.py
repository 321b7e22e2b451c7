"""Why ``callmetrics run`` wraps functions rather than using PEP 669 ``sys.monitoring``.

Run: ``python benchmarks/monitoring_cost.py [--instructions]`` on Python 3.12+ (on 3.11
only the wrapper is measured).  Times one small function called in a loop: plain, with
``track``'s wrapper (what ``callmetrics run`` installs), and with ``sys.monitoring``
callbacks written in
Python on that function's code only (``PY_START`` pushes the clock, ``PY_RETURN`` /
``PY_UNWIND`` pop it and record the duration).  ``PY_UNWIND`` can only be enabled
for every function at once, so it is left out here: the figure is a lower bound of
what a correct timer (one that sees exceptions) would cost.
Prints the cost each adds per call, best of several rounds; with ``--instructions``,
the instructions each adds per call instead, counted by valgrind's cachegrind (the
figure no other load on the machine changes), for ``track``'s wrapper on both hot
paths (the C accelerator when built, and ``CALLMETRICS_PURE_PYTHON=1``).  The wrapper's
figure covers recording and aggregating each call; the callbacks' only reading the
clock and keeping the duration.  Prints figures; never fails on them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from callmetrics import Analytics, implementation

ROUNDS = 7
CALLS = 200_000


def work(x: int) -> int:
    """The function every contender times."""
    return x + 1


def best(fn: Callable[[int], Any]) -> float:
    """Return the best nanoseconds per call of ``fn(i)`` over ``CALLS`` calls."""
    result = float("inf")
    for _ in range(ROUNDS):
        began = time.perf_counter_ns()
        for i in range(CALLS):
            fn(i)
        result = min(result, (time.perf_counter_ns() - began) / CALLS)
    return result


def monitored(run: Callable[[Callable[[int], Any]], float] = best) -> float | None:
    """Time ``work`` under sys.monitoring callbacks on its code only (None before 3.12)."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return None
    tool = monitoring.PROFILER_ID
    monitoring.use_tool_id(tool, "callmetrics-benchmark")
    events = monitoring.events
    clock = time.perf_counter
    stack: list[float] = []
    durations: list[float] = []
    push, pop, record = stack.append, stack.pop, durations.append

    # The callbacks' arguments are sys.monitoring's (code, offset[, value]): unused here.
    def on_start(*_: object) -> None:
        push(clock())

    def on_return(*_: object) -> None:
        record(clock() - pop())

    try:
        monitoring.register_callback(tool, events.PY_START, on_start)
        monitoring.register_callback(tool, events.PY_RETURN, on_return)
        monitoring.set_local_events(tool, work.__code__, events.PY_START | events.PY_RETURN)
        return run(work)
    finally:
        monitoring.set_local_events(tool, work.__code__, 0)
        monitoring.free_tool_id(tool)


def once(fn: Callable[[int], Any]) -> float:
    """Call ``fn`` ``CALLS`` times, once through (for instruction counts)."""
    for i in range(CALLS):
        fn(i)
    return 0.0


def run_one(contender: str) -> None:
    """Make ``CALLS`` calls through one contender only (what valgrind counts)."""
    if contender == "plain":
        once(work)
    elif contender == "track":
        once(Analytics().track("bench")(work))
    else:
        monitored(once)


def count(contender: str, calls: int, *, pure: bool = False) -> int:
    """Return the instructions of this script making ``calls`` calls through ``contender``.

    ``pure`` runs it with ``CALLMETRICS_PURE_PYTHON=1``.
    """
    env = {**os.environ, "CALLMETRICS_PURE_PYTHON": "1" if pure else "0"}
    done = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",  # noqa: S603, S607  # fixed tool
                           "--cachegrind-out-file=/dev/null", sys.executable, __file__,
                           "--contender", contender, "--calls", str(calls)],
                          capture_output=True, text=True, check=True, env=env)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    assert found, done.stderr[-500:]
    return int(found[1].replace(",", ""))


def per_call_instructions(calls: int) -> None:
    """Print the instructions each contender adds per call, under valgrind."""
    contenders = {"plain": ("plain", False),
                  f"track's wrapper ({implementation})": ("track", False)}
    if implementation == "c":
        contenders["track's wrapper (pure Python)"] = ("track", True)
    if hasattr(sys, "monitoring"):
        contenders["sys.monitoring, Python callbacks"] = ("monitoring", False)
    per_call = {label: (count(c, calls, pure=pure) - count(c, 0, pure=pure)) / calls
                for label, (c, pure) in contenders.items()}
    plain = per_call.pop("plain")
    print(f"python {sys.version.split()[0]}: plain call {plain:.0f} instructions")
    print("| hook | instructions added per call |\n| --- | ---: |")
    for label, n in per_call.items():
        print(f"| {label} | {n - plain:,.0f} |")


def main() -> None:
    """Measure and print the three figures."""
    global CALLS  # noqa: PLW0603  # one setting for the whole script
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--contender", choices=["plain", "track", "monitoring"])
    parser.add_argument("--calls", type=int, default=CALLS)
    opts = parser.parse_args()
    CALLS = opts.calls
    if opts.contender:
        run_one(opts.contender)
        return
    if opts.instructions:
        per_call_instructions(20_000)
        return
    plain = best(work)
    tracked = best(Analytics().track("bench")(work))
    watched = monitored()
    print(f"python {sys.version.split()[0]}: plain call {plain:.0f} ns")
    print("| hook | added per call |\n| --- | ---: |")
    print(f"| track's wrapper ({implementation}) | {tracked - plain:.0f} ns |")
    if watched is not None:
        print(f"| sys.monitoring, Python callbacks | {watched - plain:.0f} ns |")


if __name__ == "__main__":
    main()
