"""``callmetrics run`` tells where the time goes: self time, recursion once, callers.

On 3.12+ the calls are seen through sys.monitoring, on 3.11 through wrappers; either
way they go on the thread's stack of tracked calls, as decorated calls do.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from callmetrics import load

PROGRAM = """
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
    program.write_text(PROGRAM)
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
