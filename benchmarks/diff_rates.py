"""How often ``callmetrics diff`` and ``callmetrics history`` get it right on a noisy machine.

Run: ``python benchmarks/diff_rates.py [--repeat 20] [--sessions 10] [--trials 100]``.
Prints figures; never fails on them.  The scenarios (tests/rates_helpers.py; the
tests in tests/cli/test_cli_rates.py run them with fewer repetitions):

- the same CPU-bound workload twice, each run in its own process, the head run with
  a CPU-bound process beside it: a good gate exits 0;
- the same with one function (``crunch``) made 1.3x slower in the head: exit 1,
  naming that function and no other;
- back-to-back pytest-plugin sessions of a real library's own suite (boltons, fetched
  with pip once), ``--callmetrics-track 'boltons.*'``, diffed in both directions: exit 0
  both ways;
- history: synthetic 30-run series (noise as measured between real runs, occasional
  slow runs) with one 1.2x step, or none: the step found at the right run, and how
  often a step is reported where there is none.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import rates_helpers  # after the tests folder is importable


def _cpu() -> float:
    """CPU seconds (user and system) of the finished child processes so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _diff(store: Path, base: str, head: str) -> tuple[int, list[str], float, float]:
    """Run diff once: its exit code, the functions it names, wall and CPU seconds."""
    cpu, started = _cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "callmetrics", "diff", str(store),  # noqa: S603  # our interpreter
                           "--base", base, "--head", head, "--json"],
                          capture_output=True, text=True, check=False)
    took, cpu = time.perf_counter() - started, _cpu() - cpu
    try:
        regressed = json.loads(done.stdout)["regressed"]
    except (ValueError, KeyError):
        regressed = ["<no JSON: " + done.stderr.strip()[-200:] + ">"]
    return done.returncode, regressed, took, cpu


def _workload(repeat: int, folder: Path) -> None:
    same = slow = 0
    wrong: list[list[str]] = []
    for i in range(repeat):
        store = folder / f"same-{i}.db"
        rates_helpers.workload_pair(store)
        code, regressed, *_ = _diff(store, "base", "head")
        same += code == 0
        if code:
            wrong.append(regressed)
    print(f"same workload, head beside a CPU hog: exit 0 in {same:>3} of {repeat}"
          f"{'  (failed naming ' + repr(wrong) + ')' if wrong else ''}", flush=True)
    wrong = []
    for i in range(repeat):
        store = folder / f"slow-{i}.db"
        rates_helpers.workload_pair(store, slow="crunch", factor=1.3)
        code, regressed, *_ = _diff(store, "base", "head")
        slow += code == 1 and regressed == ["crunch"]
        if not (code == 1 and regressed == ["crunch"]):
            wrong.append(regressed)
    print(f"crunch 1.3x slower, beside a CPU hog:  exit 1 naming only it in {slow:>3} of "
          f"{repeat}{'  (otherwise named ' + repr(wrong) + ')' if wrong else ''}", flush=True)


def _sessions(sessions: int, folder: Path) -> None:
    pip = [sys.executable, "-m", "pip"]
    source = rates_helpers.library_source(pip)
    if source is None:
        print(f"{rates_helpers.LIBRARY} could not be fetched with pip: sessions skipped")
        return
    both = 0
    failed: list[str] = []
    for i in range(sessions):
        store = folder / f"sessions-{i}.db"
        rates_helpers.library_session(source, store, "a")
        rates_helpers.library_session(source, store, "b")
        forward, named_f, *_ = _diff(store, "a", "b")
        backward, named_b, *_ = _diff(store, "b", "a")
        both += forward == 0 and backward == 0
        if forward or backward:
            failed.append(f"pair {i}: a->b {forward} {named_f[:3]}, b->a {backward} "
                          f"{named_b[:3]}")
    print(f"{rates_helpers.LIBRARY} sessions back to back: exit 0 both ways in {both:>3} of "
          f"{sessions}", flush=True)
    for line in failed:
        print(f"  {line}")


def _history(trials: int) -> None:
    try:
        from callmetrics._outputs.changepoints import find_steps  # noqa: PLC0415
    except ImportError:
        print("history: no change-point detection in this version")
        return
    found = false = 0
    for trial in range(trials):
        rng = random.Random(trial)
        at = rng.randint(8, 22)
        stepped = rates_helpers.synthetic_series(rng, 30, step_at=at, step=1.2)
        steps = find_steps(stepped)
        found += [s.index for s in steps] == [at]
        flat = rates_helpers.synthetic_series(random.Random(10_000 + trial), 30)
        false += bool(find_steps(flat))
    print(f"history, 30 runs, one 1.2x step:      found at the right run in {found:>3} of "
          f"{trials}; a step reported in {false} of {trials} series without one", flush=True)


def _speed(folder: Path) -> None:
    store = folder / "speed.db"
    rates_helpers.big_pair(store, functions=36, calls=100_000)
    _diff(store, "base", "head")  # warm the file cache
    timed = [_diff(store, "base", "head")[2:] for _ in range(3)]
    took, cpu = min(wall for wall, _ in timed), min(cpu for _, cpu in timed)
    # On a shared machine the wall time counts the waits for a core; the CPU time not.
    print(f"diff of two runs of 100,000 retained calls (36 functions): {took:.2f} s "
          f"(the whole command; {cpu:.2f} s of CPU)", flush=True)
    history = folder / "history.db"
    if not rates_helpers.history_store(history, runs=100, functions=100):
        return
    best = 1e9
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "callmetrics", "history", str(history)],  # noqa: S603  # our interpreter
                              capture_output=True, check=False)
        best = min(best, time.perf_counter() - started)
        if done.returncode not in (0, 1):
            print("history: no such command in this version")
            return
    print(f"history of 100 runs of 100 functions: {best:.2f} s (the whole command)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--only", choices=["workload", "sessions", "history", "speed"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if args.only in (None, "speed"):
            _speed(folder)
        if args.only in (None, "history"):
            _history(args.trials)
        if args.only in (None, "workload"):
            _workload(args.repeat, folder)
        if args.only in (None, "sessions"):
            _sessions(args.sessions, folder)


if __name__ == "__main__":
    main()
