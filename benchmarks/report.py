"""Time rendering and writing the HTML report for a large run, and measure the file.

Run: ``python benchmarks/report.py [--events N] [--functions N]``.  Prints figures;
never fails on them.  The target (issue 3): 100,000 retained events over 200
functions render and write in under 2 s, into a file under 5 MB.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from callmetrics import Analytics, DurationSketch, FunctionSnapshot


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


def main() -> None:
    """Build the run, then time ``render_report`` and ``generate_reports`` (best of 5)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--functions", type=int, default=200)
    args = parser.parse_args()
    analytics = build(args.events, args.functions)
    print(f"{args.events:,} retained events over {args.functions} functions")
    renders, writes = [], []
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "report.html"
        for _ in range(5):
            began = time.perf_counter()
            analytics.render_report()
            renders.append(time.perf_counter() - began)
            began = time.perf_counter()
            written = analytics.generate_reports(path=target)
            writes.append(time.perf_counter() - began)
        assert written is not None
        size = written.stat().st_size
    print(f"render to string:        best {min(renders):.3f} s, worst {max(renders):.3f} s")
    print(f"render + write (atomic): best {min(writes):.3f} s, worst {max(writes):.3f} s "
          f"(target < 2 s)")
    print(f"file size:               {size / 1e6:.2f} MB (target < 5 MB)")


if __name__ == "__main__":
    main()
