"""What ``callmetrics run`` costs a program, next to pyinstrument and cProfile.

Run: ``python benchmarks/run_cost.py [--rounds N] [--scale-coarse N] [--scale-fine N]
[--documents N] [--workloads docutils,coarse,fine] [--instructions | --per-call]``
(``pip install -e '.[bench]'`` first).
With ``--per-call`` it times instead one call of a one-line function, and one call of a
generator yielding once iterated to its end (its whole life: two steps): plain,
tracked (through ``sys.monitoring`` on 3.12+, and wrapped), and under tprof when
installed.
Runs a real program, docutils converting its own documentation to HTML
(``docutils_workload.py``: the first ``--documents`` files of ``docs/`` from the
installed docutils' sdist, fetched once with ``pip download`` into
``~/.cache/callmetrics-bench``; every ``docutils`` module tracked), then
``benchmarks/cpu_workload.py`` (``coarse``: functions of 10 us and more; ``fine``:
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
import tarfile
import tempfile
import time
from pathlib import Path

WORKLOAD = Path(__file__).resolve().parent / "cpu_workload.py"
DOCUTILS = Path(__file__).resolve().parent / "docutils_workload.py"
CACHE = Path.home() / ".cache" / "callmetrics-bench"


def commands(out: Path, *, report: bool = True, workload: Path = WORKLOAD,
             track: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Return the command line of each contender (the workload's arguments follow)."""
    py = sys.executable
    page = str(out / "report.html") if report else ""
    tracked = [arg for glob in track for arg in ("--track", glob)]
    found = {
        "plain python": [py, str(workload)],
        "callmetrics run": [py, "-m", "callmetrics", "run", *tracked, "--report", page,
                            str(workload)],
        "callmetrics run --exact": [py, "-m", "callmetrics", "run", *tracked, "--exact",
                                    "--report", page, str(workload)],
        "python -m cProfile": [py, "-m", "cProfile", "-o", str(out / "profile.out"),
                               str(workload)],
    }
    if sys.version_info >= (3, 12):  # before sys.monitoring: the wrappers, for comparison
        wrap = ["env", "CALLMETRICS_ZEROCODE=wrap"]
        found["callmetrics run, wrapping"] = [*wrap, *found["callmetrics run"]]
        found["callmetrics run --exact, wrapping"] = [*wrap, *found["callmetrics run --exact"]]
    if importlib.util.find_spec("pyinstrument") is not None:
        found["pyinstrument"] = [py, "-m", "pyinstrument", "-o", str(out / "pyi.txt"),
                                 str(workload)]
    return found


def docutils_docs() -> Path | None:
    """Return docutils' own docs/ folder (from its sdist, cached), or None, saying why."""
    try:
        from docutils import __version__ as version  # noqa: PLC0415  # optional: the bench extra
    except ImportError:
        print("docutils: not installed, its workload left out (pip install -e '.[bench]')")
        return None
    docs = CACHE / f"docutils-{version}" / "docs"
    if docs.is_dir():
        return docs
    CACHE.mkdir(parents=True, exist_ok=True)
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",  # noqa: S603  # fixed command
                              "--no-binary", ":all:", f"docutils=={version}", "-d", str(CACHE)],
                             capture_output=True, text=True, check=False)
    archive = CACHE / f"docutils-{version}.tar.gz"
    if fetched.returncode != 0 or not archive.is_file():
        print(f"docutils: its sdist could not be fetched, workload left out "
              f"({fetched.stderr.strip()[-200:]})")
        return None
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return docs if docs.is_dir() else None


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


PER_CALL_MODULE = "def f(x):\n    return x\n\ndef g(x):\n    yield x\n"
PER_CALL_SCRIPT = """\
import sys, time
from target import f, g

def loop(n):
    began = time.perf_counter()
    for i in range(n):
        f(i)
    return time.perf_counter() - began

def gloop(n):
    began = time.perf_counter()
    for i in range(n):
        for _ in g(i):
            pass
    return time.perf_counter() - began

best = min(loop(20_000) for _ in range(300))
gbest = min(gloop(20_000) for _ in range(100))
print(f"{best / 20_000 * 1e9:.1f} {gbest / 20_000 * 1e9:.1f}")
"""


def per_call(rounds: int) -> None:
    """Print the time per call of a one-line function: plain, tracked, and under tprof."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "target.py").write_text(PER_CALL_MODULE)
        (out / "loop.py").write_text(PER_CALL_SCRIPT)
        py, run = sys.executable, [sys.executable, "-m", "callmetrics", "run", "--exact",
                                   "--no-report", "--exclude", "__main__", "--track", "target"]
        tools: dict[str, tuple[list[str], dict[str, str]]] = {
            "plain python": ([py, "loop.py"], {}),
            "callmetrics run --exact": ([*run, "loop.py"], {}),
            "callmetrics run --exact, wrapping": ([*run, "loop.py"],
                                                  {"CALLMETRICS_ZEROCODE": "wrap"}),
        }
        if importlib.util.find_spec("tprof") is not None:
            tools["tprof"] = ([py, "-m", "tprof", "-t", "target:f", "loop.py"], {})
        else:
            print("tprof: not installed (3.12+: pip install tprof), left out")
        best = dict.fromkeys(tools, float("inf"))
        gen = dict.fromkeys(tools, float("inf"))
        for _ in range(rounds):
            for name, (command, env) in tools.items():
                done = subprocess.run(command, capture_output=True, text=True, cwd=out,  # noqa: S603  # fixed commands
                                      env={**os.environ, **env}, check=True)
                figures = done.stdout.split()
                best[name] = min(best[name], float(figures[0]))
                gen[name] = min(gen[name], float(figures[1]))
        print(f"python {sys.version.split()[0]}: a one-line function and a one-yield generator "
              f"iterated to its end, best of {rounds} runs (each the best of 300 and 100 loops "
              "of 20,000 calls); tprof targets the function only")
        print("| tool | ns per call | added | generator: ns per call | added |")
        print("| --- | ---: | ---: | ---: | ---: |")
        plain, plain_gen = best["plain python"], gen["plain python"]
        for name, ns in best.items():
            print(f"| {name} | {ns:.1f} | {ns - plain:+.1f} | {gen[name]:.1f} "
                  f"| {gen[name] - plain_gen:+.1f} |")


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale-coarse", type=int, default=20)
    parser.add_argument("--scale-fine", type=int, default=300)
    parser.add_argument("--documents", type=int, default=20,
                        help="how many of docutils' documents to convert (0: all)")
    parser.add_argument("--workloads", default="docutils,coarse,fine",
                        help="which workloads to time, comma-separated (default: all three)")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions under valgrind instead of timing")
    parser.add_argument("--per-call", action="store_true",
                        help="time one tracked call instead (next to tprof when installed)")
    opts = parser.parse_args()
    if opts.per_call:
        per_call(opts.rounds)
        return
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
        runs: list[tuple[str, dict[str, list[str]], list[str]]] = []
        chosen = set(opts.workloads.split(","))
        docs = docutils_docs() if "docutils" in chosen else None
        if docs is not None:
            runs.append((f"docutils ({opts.documents or 'all'} documents)",
                         commands(out, workload=DOCUTILS, track=("docutils", "docutils.*")),
                         [str(docs), str(opts.documents)]))
        runs += [(f"{kind} (scale {scale})", tools, [kind, str(scale)])
                 for kind, scale in (("coarse", opts.scale_coarse), ("fine", opts.scale_fine))
                 if kind in chosen]
        for title, contenders, args in runs:
            best: dict[str, tuple[float, float, float]] = {}
            for _ in range(opts.rounds):
                for name, command in contenders.items():
                    got = time_once([*command, *args], out)
                    old = best.get(name, (float("inf"),) * 3)
                    best[name] = (min(old[0], got[0]), min(old[1], got[1]), min(old[2], got[2]))
            _, base_work, base_cpu = best["plain python"]
            print(f"\nworkload {title}")
            print("| tool | process wall | work wall | slowdown | work CPU | slowdown |")
            print("| --- | ---: | ---: | ---: | ---: | ---: |")
            for name, (wall, work, cpu) in best.items():
                print(f"| {name} | {wall:.3f} s | {work:.3f} s | "
                      f"{work / base_work:.2f}x | {cpu:.3f} s | {cpu / base_cpu:.2f}x |")


if __name__ == "__main__":
    main()
