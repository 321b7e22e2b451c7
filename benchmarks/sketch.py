"""Memory, speed and accuracy of ``DurationSketch``, beside DDSketch at 1% when installed.

Run: ``python benchmarks/sketch.py [--samples N] [--quick] [--baseline FILE]``.  Prints
figures; never fails on them.  ``--baseline`` adds a column for another version of the
sketch, loaded from a self-contained ``_sketch.py`` file, e.g. the one on main::

    git show main:src/callmetrics/_engine/sketch.py > /tmp/main_sketch.py
    python benchmarks/sketch.py --baseline /tmp/main_sketch.py

``pip install ddsketch`` adds the DDSketch column (a benchmark-only dependency, not one
of the project's).  Timings are the best of several rounds, the columns' rounds taking
turns so that a busy machine disturbs them alike, in CPU time of this process
(``time.process_time_ns``).

Figures:

- heap: bytes the sketch of ``--samples`` lognormal durations holds (tracemalloc), and
  of a sketch holding one value, and none;
- quantile / quantiles(3): one p99, and p50, p95 and p99 together, in microseconds;
- merge: merging one half of the samples' sketch into the other half's, and a 100-value
  sketch into the big one, in microseconds (the copy made before each round untimed);
- add_sorted: nanoseconds per value for batches of 1,024 to 8,192 sorted durations,
  spread (lognormal) or clustered (within 20 % of one value), the drain's pattern
  (DDSketch has no bulk add: its figure is ``add`` called per value);
- error: the largest relative error at p50, p90, p99 and p99.9 over several data sets,
  against the exact sample at rank ``floor(q * (n - 1))``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import gc
import importlib
import importlib.util
import math
import random
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callmetrics import DurationSketch

ROUNDS = 9
BATCH = 4096
QS = (0.5, 0.9, 0.99, 0.999)
THREE = (0.5, 0.95, 0.99)


class Subject:
    """A sketch under test, seen through the operations the benchmark times."""

    def __init__(self, label: str, make: Callable[[], Any], *, bulk: bool) -> None:
        """Name the subject, give its constructor, and say which API it has."""
        self.label = label
        self.make = make
        self.bulk = bulk  # has add_sorted, quantile and quantiles (else: DDSketch's API)

    def add_batches(self, sketch: Any, batches: list[list[float]]) -> None:
        """Add sorted batches: in bulk where the sketch can, else value by value."""
        if self.bulk:
            for batch in batches:
                sketch.add_sorted(batch)
        else:
            add = sketch.add
            for batch in batches:
                for value in batch:
                    add(value)

    def build(self, values: list[float]) -> Any:
        """Build a sketch the way the engine does: sorted batches."""
        sketch = self.make()
        self.add_batches(sketch, [sorted(values[i:i + BATCH])
                                  for i in range(0, len(values), BATCH)])
        return sketch

    def quantile(self, sketch: Any, q: float) -> float:
        """Return one quantile."""
        value = sketch.quantile(q) if self.bulk else sketch.get_quantile_value(q)
        assert value is not None
        return float(value)

    def quantiles(self, sketch: Any, qs: tuple[float, ...]) -> list[Any]:
        """Return several quantiles, at once where the sketch can."""
        if self.bulk:
            return list(sketch.quantiles(qs))
        return [sketch.get_quantile_value(q) for q in qs]

    def duplicate(self, sketch: Any) -> Any:
        """Return an independent copy."""
        return sketch.copy() if self.bulk else copy.deepcopy(sketch)


def subjects(baseline: str | None) -> list[Subject]:
    found = [Subject("DurationSketch", DurationSketch, bulk=True)]
    if baseline:
        spec = importlib.util.spec_from_file_location("baseline_sketch", baseline)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.insert(0, Subject(f"baseline ({Path(baseline).name})", module.DurationSketch,
                                bulk=True))
    try:
        dd = importlib.import_module("ddsketch")
    except ImportError:
        print("ddsketch is not installed: no DDSketch column (pip install ddsketch)")
    else:
        found.append(Subject("DDSketch 1%", lambda: dd.DDSketch(relative_accuracy=0.01),
                             bulk=False))
    return found


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


def taking_turns(rounds: Callable[[Subject], Callable[[], float]], each: list[Subject],
                 times: int = ROUNDS) -> list[float]:
    """Return each subject's best figure; ``rounds(subject)()`` runs one round, returns it."""
    runs = [rounds(subject) for subject in each]
    best = [math.inf] * len(runs)
    for _ in range(times):
        for at, run in enumerate(runs):
            best[at] = min(best[at], run())
    return best


def per_call_us(fn: Callable[[], object], calls: int) -> Callable[[], float]:
    def one_round() -> float:
        began = time.process_time_ns()
        for _ in range(calls):
            fn()
        return (time.process_time_ns() - began) / calls / 1e3

    return one_round


def merge_us(subject: Subject, base: Any, other: Any) -> Callable[[], float]:
    def one_round() -> float:
        target = subject.duplicate(base)
        began = time.process_time_ns()
        target.merge(other)
        return (time.process_time_ns() - began) / 1e3

    return one_round


def adding(batches: list[list[float]], subject: Subject) -> Callable[[], float]:
    count = sum(map(len, batches))

    def one_round() -> float:
        sketch = subject.make()
        copies = [list(batch) for batch in batches]
        began = time.process_time_ns()
        subject.add_batches(sketch, copies)
        return (time.process_time_ns() - began) / count

    return one_round


def worst_errors(subject: Subject, datasets: list[list[float]]) -> dict[float, float]:
    """Return, per q in QS, the largest relative error over the data sets."""
    worst = dict.fromkeys(QS, 0.0)
    for values in datasets:
        ordered = sorted(values)
        sketch = subject.build(values)
        for q in QS:
            exact = ordered[math.floor(q * (len(ordered) - 1))]
            worst[q] = max(worst[q], abs(subject.quantile(sketch, q) - exact) / exact)
    return worst


def batches_of(values: list[float], size: int) -> list[list[float]]:
    return [sorted(values[i:i + size]) for i in range(0, len(values), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="fewer samples, for a smoke run")
    parser.add_argument("--baseline", help="another version's self-contained _sketch.py")
    args = parser.parse_args()
    n = 100_000 if args.quick else args.samples
    each = subjects(args.baseline)
    values = lognormal(n, 1)
    half = n // 2
    small = lognormal(100, 2)
    rows: list[tuple[str, list[float]]] = []

    full = {s.label: s.build(values) for s in each}  # also warms any module-level cache
    rows.append((f"heap, {n:,} lognormal (bytes)",
                 [heap_bytes(functools.partial(s.build, values)) for s in each]))
    rows.append(("heap, one value (bytes)",
                 [heap_bytes(functools.partial(s.build, [1e-3])) for s in each]))
    rows.append(("heap, empty (bytes)", [heap_bytes(s.make) for s in each]))

    rows.append(("quantile(0.99) (µs)", taking_turns(
        lambda s: per_call_us(lambda: s.quantile(full[s.label], 0.99), 100), each)))
    rows.append(("quantiles(p50, p95, p99) (µs)", taking_turns(
        lambda s: per_call_us(lambda: s.quantiles(full[s.label], THREE), 100), each)))

    first = {s.label: s.build(values[:half]) for s in each}
    second = {s.label: s.build(values[half:]) for s in each}
    little = {s.label: s.build(small) for s in each}
    rows.append(("merge half into half (µs)", taking_turns(
        lambda s: merge_us(s, first[s.label], second[s.label]), each, 25)))
    rows.append(("merge 100 values into big (µs)", taking_turns(
        lambda s: merge_us(s, first[s.label], little[s.label]), each, 25)))

    spread, steady = values[:200_000], clustered(200_000, 3)
    for size in (1024, 4096, 8192):
        for label, data in (("spread", spread), ("clustered", steady)):
            batches = batches_of(data, size)
            rows.append((f"add_sorted, batches of {size:,}, {label} (ns/value)",
                         taking_turns(functools.partial(adding, batches), each, 5)))

    datasets = [values, clustered(n // 5, 4), log_uniform(n // 5, 5), pareto(n // 5, 6),
                lognormal(1000, 7), log_uniform(37, 8)]
    errors = [worst_errors(s, datasets) for s in each]
    rows.extend((f"max error at p{q * 100:g} (%)", [e[q] * 100 for e in errors]) for q in QS)

    width = max(len(label) for label, _ in rows)
    print(f"{'':{width}}" + "".join(f"  {s.label:>16}" for s in each))
    for label, figures in rows:
        cells = (f"{x:,.1f}" if x < 1000 else f"{x:,.0f}" for x in figures)
        print(f"{label:{width}}" + "".join(f"  {cell:>16}" for cell in cells))


if __name__ == "__main__":
    main()
