"""Time the HTML report of a large run, phase by phase, in process and from a store.

Run: ``python benchmarks/report.py [--events N] [--functions N] [--store-events N]``.
Prints figures (wall time and CPU time: on a shared machine the wall time is noisy);
never fails on them.  The targets (issue 21): a report of 1,000,000 retained calls in at
most 1.5 s and 8 MB; ``callmetrics report`` of a store of 200,000 retained calls in at
most 1.5 s (the whole command, interpreter start included).
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from callmetrics import Analytics, DurationSketch, FunctionSnapshot
from callmetrics._outputs import (
    report,
    report_charts,
    report_detail,
    report_tables,
    report_time,
    report_timeline,
)
from callmetrics._store import attach_store

_T = TypeVar("_T")


def build(events: int, functions: int, seed: int = 1) -> Analytics:
    """Return an instance holding ``events`` retained calls spread over ``functions``."""
    rng = random.Random(seed)
    names = [f"service_{i % 17}.handler_{i}" for i in range(functions)]
    medians = {name: rng.lognormvariate(-7, 2) for name in names}
    now = time.time() - 600
    rows: list[tuple[float, float, str | None, str]] = []
    per_name: dict[str, list[tuple[float, str | None]]] = {name: [] for name in names}
    start = now
    for _ in range(events):
        name = names[min(int(rng.paretovariate(1.2)) - 1, functions - 1)] \
            if rng.random() < 0.5 else rng.choice(names)
        duration = min(medians[name] * rng.lognormvariate(0, 0.7), 30.0)
        error = "TimeoutError" if rng.random() < 0.01 else None
        start += rng.expovariate(events / 600)
        rows.append((start, duration, error, name))
        per_name[name].append((duration, error))
    snapshots = []
    for name, calls in per_name.items():
        if not calls:
            continue
        sketch = DurationSketch()
        for duration, _ in calls:
            sketch.add(duration)
        durations = [d for d, _ in calls]
        snapshots.append(FunctionSnapshot(
            name=name, event_type=rng.choice(["API call", "Database", "CPU", "IO"]),
            module="bench", calls=len(calls),
            successes=sum(1 for _, e in calls if e is None), total=sum(durations),
            fast=sum(1 for d in durations if d <= 2), medium=sum(1 for d in durations
                                                                 if 2 < d <= 5),
            slow=sum(1 for d in durations if d > 5), overhead=len(calls) * 2e-7,
            sketch=sketch, slowest=None, fastest=None,
        ))
    analytics = Analytics(max_events=events)  # enable_gc_collect on, as by default
    analytics.restore(snapshots, rows)
    return analytics


class Phases:
    """Wall and CPU seconds spent in the report's steps (each function wrapped once)."""

    STEPS = ((report, "read_columns"), (report_tables, "valid_calls"),
             (report_charts, "above_p99"), (report_tables, "details"),
             (report_tables, "failure_groups"), (report_timeline, "sample"),
             (report_timeline, "timeline"), (report_charts, "detail_histograms"),
             (report_detail, "function_details"), (report_time, "time_chart"),
             (report_tables, "function_rows"), (report_tables, "outlier_rows"))

    def __init__(self) -> None:
        """Wrap the steps as ``report`` calls them."""
        self.spent: dict[str, list[float]] = {}
        for module, name in self.STEPS:
            setattr(report, name, self._timed(name, getattr(module, name)))

    def _timed(self, name: str, step: Callable[..., _T]) -> Callable[..., _T]:
        def timed(*args: object, **kwargs: object) -> _T:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return step(*args, **kwargs)
            finally:
                found = self.spent.setdefault(name, [0.0, 0.0])
                found[0] += time.perf_counter() - wall
                found[1] += time.process_time() - cpu
        return timed

    def show(self, total: tuple[float, float]) -> None:
        """Print each step, what the steps leave (rendering, writing, gc) and the total."""
        for name, (wall, cpu) in self.spent.items():
            print(f"  {name:<20} wall {wall:6.3f} s   cpu {cpu:6.3f} s")
        wall = total[0] - sum(w for w, _ in self.spent.values())
        cpu = total[1] - sum(c for _, c in self.spent.values())
        print(f"  {'render, write, gc':<20} wall {wall:6.3f} s   cpu {cpu:6.3f} s")
        print(f"  {'total':<20} wall {total[0]:6.3f} s   cpu {total[1]:6.3f} s")


def in_process(events: int, functions: int, folder: Path) -> None:
    """Time ``generate_reports`` of a live instance (best of three; the last one by phase)."""
    analytics = build(events, functions)
    gc.collect()
    print(f"{events:,} retained calls over {functions} functions, in process")
    target = folder / "report.html"
    totals = []
    phases = Phases()
    for _ in range(3):
        phases.spent.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        analytics.generate_reports(path=target, force_mode=True)
        totals.append((time.perf_counter() - wall, time.process_time() - cpu))
    phases.show(totals[-1])
    print(f"  best of 3: wall {min(w for w, _ in totals):.3f} s, cpu "
          f"{min(c for _, c in totals):.3f} s (target 1.5 s); file "
          f"{target.stat().st_size / 1e6:.2f} MB (target 8 MB)")


def from_store(events: int, functions: int, folder: Path) -> None:
    """Time ``callmetrics report`` of a store (a fresh process each time, best of three)."""
    store = folder / "runs.db"
    writer = attach_store(build(events, functions), store)
    writer.close()
    print(f"{events:,} retained calls over {functions} functions, `callmetrics report` "
          "of a store")
    # The command, then its own CPU time on stderr.
    script = ("import resource, sys; from callmetrics._cli import main; "
              "code = main(sys.argv[1:]); u = resource.getrusage(resource.RUSAGE_SELF); "
              "print(u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(code)")
    totals = []
    for _ in range(3):
        wall = time.perf_counter()
        done = subprocess.run(  # noqa: S603  # this interpreter, fixed arguments
            [sys.executable, "-c", script, "report", str(store), "-o",
             str(folder / "store.html")],
            capture_output=True, text=True, check=True)
        totals.append((time.perf_counter() - wall, float(done.stderr.split()[-1])))
    print(f"  best of 3: wall {min(w for w, _ in totals):.3f} s, cpu "
          f"{min(c for _, c in totals):.3f} s (target 1.5 s)")


def main() -> None:
    """Time the report in process, then ``callmetrics report`` of a store."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--functions", type=int, default=200)
    parser.add_argument("--store-events", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        in_process(args.events, args.functions, Path(folder))
        from_store(args.store_events, args.functions, Path(folder))


if __name__ == "__main__":
    main()
