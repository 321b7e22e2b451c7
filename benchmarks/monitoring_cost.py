"""Why ``callmetrics run`` wraps functions rather than using PEP 669 ``sys.monitoring``.

Run: ``python benchmarks/monitoring_cost.py`` on Python 3.12+ (on 3.11 only the wrapper
is timed).  Times one small function called in a loop: plain, with ``track``'s wrapper
(what ``callmetrics run`` installs), and with ``sys.monitoring`` callbacks written in
Python on that function's code only (``PY_START`` pushes the clock, ``PY_RETURN`` /
``PY_UNWIND`` pop it and record the duration).  ``PY_UNWIND`` can only be enabled
for every function at once, so it is left out here: the figure is a lower bound of
what a correct timer (one that sees exceptions) would cost.
Prints the cost each adds per call, best of several rounds.  Prints figures; never
fails on them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from callmetrics import Analytics

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


def monitored() -> float | None:
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
        return best(work)
    finally:
        monitoring.set_local_events(tool, work.__code__, 0)
        monitoring.free_tool_id(tool)


def main() -> None:
    """Measure and print the three figures."""
    plain = best(work)
    tracked = best(Analytics().track("bench")(work))
    watched = monitored()
    print(f"python {sys.version.split()[0]}: plain call {plain:.0f} ns")
    print("| hook | added per call |\n| --- | ---: |")
    print(f"| track's wrapper | {tracked - plain:.0f} ns |")
    if watched is not None:
        print(f"| sys.monitoring, Python callbacks | {watched - plain:.0f} ns |")


if __name__ == "__main__":
    main()
