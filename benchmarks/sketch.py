"""Memory, speed and accuracy of ``DurationSketch``, beside DDSketch at 1% when installed.

Run: ``python benchmarks/sketch.py [--samples N] [--quick]``.  Prints figures; never
fails on them.  Timings are the best of several rounds (the least disturbed by other
work on the machine).  Only the public API is used, so the same script measures any
version of the sketch: put another checkout's ``src`` first on ``PYTHONPATH`` to
compare.  ``pip install ddsketch`` adds the DDSketch column (a benchmark-only
dependency, not one of the project's).

Timings are CPU time of this process (``time.process_time_ns``), which other work on a
shared machine disturbs less than wall-clock time.

Figures:

- heap: bytes the sketch of ``--samples`` lognormal durations holds (tracemalloc),
  and of a sketch holding one value;
- quantile / quantiles(3): one p99, and p50, p95 and p99 together, in microseconds;
- merge: merging one half of the samples' sketch into the other half's, and a
  100-value sketch into the big one, in microseconds (the copy made before each
  round is not timed);
- add_sorted: nanoseconds per value for batches of 1,024 to 8,192 sorted durations,
  spread (lognormal) or clustered (within 20 % of one value), the drain's pattern;
- error: the largest relative error at p50, p90, p99 and p99.9 over several data
  sets, against the exact sample at rank ``floor(q * (n - 1))``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib
import math
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from callmetrics._sketch import DurationSketch

ROUNDS = 7
BATCH = 4096
QS = (0.5, 0.9, 0.99, 0.999)


def load_ddsketch() -> Callable[[], Any] | None:
    """Return a factory of DDSketch at 1% relative accuracy, or None when not installed."""
    try:
        module = importlib.import_module("ddsketch")
    except ImportError:
        return None
    factory: Callable[[], Any] = lambda: module.DDSketch(relative_accuracy=0.01)  # noqa: E731
    return factory


def lognormal(n: int, seed: int) -> list[float]:
    """Durations around 1 ms, spread over about 14 powers of two either way."""
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(1e-3), 1.0) for _ in range(n)]


def clustered(n: int, seed: int) -> list[float]:
    """Durations within 20 % of 250 µs: a steady function."""
    rng = random.Random(seed)
    return [250e-6 * (1 + rng.uniform(0, 0.2)) for _ in range(n)]


def log_uniform(n: int, seed: int) -> list[float]:
    """Durations spread evenly in log scale from a nanosecond to an hour."""
    rng = random.Random(seed)
    return [10 ** rng.uniform(-9, math.log10(3600)) for _ in range(n)]


def pareto(n: int, seed: int) -> list[float]:
    """Heavy-tailed durations from 100 µs upward."""
    rng = random.Random(seed)
    return [100e-6 * rng.paretovariate(1.2) for _ in range(n)]


def build(values: list[float]) -> DurationSketch:
    """Build a sketch the way the engine does: sorted batches through add_sorted."""
    sketch = DurationSketch()
    for start in range(0, len(values), BATCH):
        sketch.add_sorted(sorted(values[start:start + BATCH]))
    return sketch


def build_dd(factory: Callable[[], Any], values: list[float]) -> Any:
    sketch = factory()
    for value in values:
        sketch.add(value)
    return sketch


def heap_bytes(make: Callable[[], object]) -> int:
    """Return the bytes still allocated by what ``make`` returns, once it has returned."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = make()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


def best_us(fn: Callable[[], object], repeat: int) -> float:
    """Return the best time per call of ``fn``, in microseconds."""
    best = math.inf
    for _ in range(ROUNDS):
        began = time.process_time_ns()
        for _ in range(repeat):
            fn()
        best = min(best, (time.process_time_ns() - began) / repeat)
    return best / 1e3


def best_merge_us(base: object, other: object, duplicate: Callable[[Any], Any],
                  rounds: int = 21) -> float:
    """Return the best time of ``duplicate(base).merge(other)``, the copy untimed."""
    best = math.inf
    for _ in range(rounds):
        target = duplicate(base)
        began = time.process_time_ns()
        target.merge(other)
        best = min(best, time.process_time_ns() - began)
    return best / 1e3


def add_sorted_ns(batches: list[list[float]]) -> float:
    """Return the best nanoseconds per value to add ``batches`` (each sorted) to a sketch."""
    count = sum(len(batch) for batch in batches)
    best = math.inf
    for _ in range(ROUNDS):
        sketch = DurationSketch()
        copies = [list(batch) for batch in batches]  # add_sorted may keep nothing, but be fair
        began = time.process_time_ns()
        for batch in copies:
            sketch.add_sorted(batch)
        best = min(best, (time.process_time_ns() - began) / count)
    return best


def add_ns_dd(factory: Callable[[], Any], values: list[float]) -> float:
    best = math.inf
    for _ in range(3):
        sketch = factory()
        add = sketch.add
        began = time.process_time_ns()
        for value in values:
            add(value)
        best = min(best, (time.process_time_ns() - began) / len(values))
    return best


def worst_errors(quantile_of: Callable[[list[float]], Callable[[float], float | None]],
                 datasets: list[list[float]]) -> dict[float, float]:
    """Return, per q in QS, the largest relative error over the data sets."""
    worst = dict.fromkeys(QS, 0.0)
    for values in datasets:
        ordered = sorted(values)
        answer = quantile_of(values)
        for q in QS:
            exact = ordered[math.floor(q * (len(ordered) - 1))]
            got = answer(q)
            assert got is not None
            worst[q] = max(worst[q], abs(got - exact) / exact)
    return worst


def batches_of(values: list[float], size: int) -> list[list[float]]:
    return [sorted(values[i:i + size]) for i in range(0, len(values), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="fewer samples, for a smoke run")
    args = parser.parse_args()
    n = 100_000 if args.quick else args.samples
    dd = load_ddsketch()
    values = lognormal(n, 1)
    half = n // 2
    small = lognormal(100, 2)

    rows: list[tuple[str, str, str]] = []

    def row(label: str, ours: float, theirs: float | None, unit: str) -> None:
        rows.append((label + f" ({unit})", f"{ours:,.1f}" if ours < 1000 else f"{ours:,.0f}",
                     "-" if theirs is None else
                     (f"{theirs:,.1f}" if theirs < 1000 else f"{theirs:,.0f}")))

    sketch = build(values)
    dd_sketch: Any = build_dd(dd, values) if dd else None
    row(f"heap, {n:,} lognormal", heap_bytes(lambda: build(values)),
        heap_bytes(lambda: build_dd(dd, values)) if dd else None, "bytes")
    row("heap, one value", heap_bytes(lambda: build([1e-3])),
        heap_bytes(lambda: build_dd(dd, [1e-3])) if dd else None, "bytes")
    row("heap, empty", heap_bytes(DurationSketch), heap_bytes(dd) if dd else None, "bytes")

    row("quantile(0.99)", best_us(lambda: sketch.quantile(0.99), 200),
        best_us(lambda: dd_sketch.get_quantile_value(0.99), 200) if dd else None, "µs")
    row("quantiles(p50, p95, p99)", best_us(lambda: sketch.quantiles((0.5, 0.95, 0.99)), 200),
        best_us(lambda: [dd_sketch.get_quantile_value(q) for q in (0.5, 0.95, 0.99)], 200)
        if dd else None, "µs")

    first, second = build(values[:half]), build(values[half:])
    little = build(small)
    row("merge half into half", best_merge_us(first, second, DurationSketch.copy),
        best_merge_us(build_dd(dd, values[:half]), build_dd(dd, values[half:]), copy.deepcopy)
        if dd else None, "µs")
    row("merge 100 values into big", best_merge_us(first, little, DurationSketch.copy),
        best_merge_us(build_dd(dd, values[:half]), build_dd(dd, small), copy.deepcopy)
        if dd else None, "µs")

    spread = values[:200_000]
    steady = clustered(200_000, 3)
    dd_add = add_ns_dd(dd, spread) if dd else None
    for size in (1024, 4096, 8192):
        row(f"add_sorted, batches of {size:,}, spread", add_sorted_ns(batches_of(spread, size)),
            dd_add, "ns/value")
        row(f"add_sorted, batches of {size:,}, clustered",
            add_sorted_ns(batches_of(steady, size)), dd_add, "ns/value")

    datasets = [values, clustered(n // 5, 4), log_uniform(n // 5, 5), pareto(n // 5, 6),
                lognormal(1000, 7), log_uniform(37, 8)]
    ours = worst_errors(lambda data: build(data).quantile, datasets)
    theirs = (worst_errors(lambda data: build_dd(dd, data).get_quantile_value, datasets)
              if dd else None)
    for q in QS:
        row(f"max error at p{q * 100:g}", ours[q] * 100, theirs[q] * 100 if theirs else None, "%")

    print(f"DurationSketch from {DurationSketch.__module__} "
          f"({importlib.import_module(DurationSketch.__module__).__file__})")
    width = max(len(label) for label, _, _ in rows)
    print(f"{'':{width}}  {'DurationSketch':>15}  {'DDSketch 1%':>12}")
    for label, mine, other in rows:
        print(f"{label:{width}}  {mine:>15}  {other:>12}")


if __name__ == "__main__":
    main()
