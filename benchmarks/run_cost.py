"""What ``callmetrics run`` costs a program, next to pyinstrument and cProfile.

Run: ``python benchmarks/run_cost.py [--rounds N] [--scale-coarse N] [--scale-fine N]
[--instructions]``.
Runs ``benchmarks/cpu_workload.py`` (``coarse``: functions of 10 us and more; ``fine``:
a recursive Fibonacci of sub-microsecond calls) plain, under ``callmetrics run``, under
``pyinstrument`` (when installed) and under ``python -m cProfile``, the tools
interleaved round by round.  Prints, per workload and tool, the best wall time of the
whole process, the best wall and CPU times of the work itself (timed inside the
program), and the slowdowns against the plain run.  CPU time is the steadier figure
on a loaded machine.  With ``--instructions`` it counts instead the instructions the
work executes, under valgrind's cachegrind (each tool run at the given scale and at
scale 0, the difference being the work's): a figure no other load on the machine
changes.  pyinstrument is left out there: it samples on a wall-clock timer, which
valgrind's slowdown would distort; and under valgrind every call looks about fifty
times longer, so ``callmetrics run`` drops no function there (its row then shows the
cost of its periodic checks on top of ``--exact``).  Prints figures; never fails on
them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOAD = Path(__file__).resolve().parent / "cpu_workload.py"


def commands(out: Path, *, report: bool = True) -> dict[str, list[str]]:
    """Return the command line of each contender (the workload's arguments follow)."""
    py = sys.executable
    page = str(out / "report.html") if report else ""
    found = {
        "plain python": [py, str(WORKLOAD)],
        "callmetrics run": [py, "-m", "callmetrics", "run", "--report", page, str(WORKLOAD)],
        "callmetrics run --exact": [py, "-m", "callmetrics", "run", "--exact", "--report", page,
                                    str(WORKLOAD)],
        "python -m cProfile": [py, "-m", "cProfile", "-o", str(out / "profile.out"),
                               str(WORKLOAD)],
    }
    if importlib.util.find_spec("pyinstrument") is not None:
        found["pyinstrument"] = [py, "-m", "pyinstrument", "-o", str(out / "pyi.txt"),
                                 str(WORKLOAD)]
    return found


def say_missing(tools: dict[str, list[str]]) -> None:
    """Print one line for a contender left out because it is not installed."""
    if "pyinstrument" not in tools:
        print("pyinstrument: not installed, left out (pip install pyinstrument)")


def time_once(command: list[str], cwd: Path) -> tuple[float, float, float]:
    """Return the process's wall seconds, and the work's wall and CPU seconds."""
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=True,  # noqa: S603  # our own fixed commands
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    wall = time.perf_counter() - began
    work, cpu = done.stdout.strip().splitlines()[-1].split()
    return wall, float(work), float(cpu)


def instructions(command: list[str], cwd: Path) -> int:
    """Return the instructions ``command`` executes, counted by valgrind's cachegrind."""
    done = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",  # noqa: S603, S607  # fixed tool
                           "--cachegrind-out-file=/dev/null", *command],
                          capture_output=True, text=True, cwd=cwd, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    assert found, done.stderr[-500:]
    return int(found[1].replace(",", ""))


def count_instructions(scales: dict[str, int]) -> None:
    """Print the instructions of the work under each deterministic tool."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        # No report: at scale 0 there is none to write, so its rendering would count as work.
        tools = {k: v for k, v in commands(out, report=False).items() if k != "pyinstrument"}
        print(f"python {sys.version.split()[0]}; instructions of the work (valgrind "
              "cachegrind, scale N minus scale 0)")
        for kind, scale in scales.items():
            counted = {name: instructions([*command, kind, str(scale)], out)
                       - instructions([*command, kind, "0"], out)
                       for name, command in tools.items()}
            base = counted["plain python"]
            print(f"\nworkload {kind} (scale {scale})")
            print("| tool | instructions | added |")
            print("| --- | ---: | ---: |")
            for name, n in counted.items():
                print(f"| {name} | {n:,} | {(n / base - 1) * 100:+.1f} % |")


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale-coarse", type=int, default=20)
    parser.add_argument("--scale-fine", type=int, default=300)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions under valgrind instead of timing")
    opts = parser.parse_args()
    if opts.instructions:
        if shutil.which("valgrind") is None:
            parser.error("--instructions needs valgrind (apt-get install valgrind)")
        count_instructions({"coarse": opts.scale_coarse, "fine": opts.scale_fine})
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        tools = commands(out)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; best of "
              f"{opts.rounds} rounds, tools interleaved")
        say_missing(tools)
        for kind, scale in (("coarse", opts.scale_coarse), ("fine", opts.scale_fine)):
            best: dict[str, tuple[float, float, float]] = {}
            for _ in range(opts.rounds):
                for name, command in tools.items():
                    got = time_once([*command, kind, str(scale)], out)
                    old = best.get(name, (float("inf"),) * 3)
                    best[name] = (min(old[0], got[0]), min(old[1], got[1]), min(old[2], got[2]))
            _, base_work, base_cpu = best["plain python"]
            print(f"\nworkload {kind} (scale {scale})")
            print("| tool | process wall | work wall | slowdown | work CPU | slowdown |")
            print("| --- | ---: | ---: | ---: | ---: | ---: |")
            for name, (wall, work, cpu) in best.items():
                print(f"| {name} | {wall:.3f} s | {work:.3f} s | "
                      f"{(work / base_work - 1) * 100:+.1f} % | {cpu:.3f} s | "
                      f"{(cpu / base_cpu - 1) * 100:+.1f} % |")


if __name__ == "__main__":
    main()
