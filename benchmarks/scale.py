"""The recording engine at scale: memory, reads, drains, tail latency, threads, measure().

Run: ``python benchmarks/scale.py [--quick] [--only NAME ...]``.  Prints one line per
figure; never fails on them (a benchmark, not a test).  Each figure names the
workload it measures.  Timings are the best of a few rounds where that makes sense;
memory is the process's resident set (``/proc/self/statm``) or ``tracemalloc``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import logging
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callmetrics import Analytics, LoggerContainer

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """Return the resident set size of this process in MB (0 where unknown)."""
    try:
        return int(Path("/proc/self/statm").read_text("ascii").split()[1]) * PAGE / 1e6
    except OSError:
        return 0.0


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return f"{seconds * 1e3:,.1f} ms"


def timed(fn: Callable[[], Any]) -> float:
    """Return how long one call of ``fn`` took, in seconds."""
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def make_functions(analytics: Analytics, count: int, prefix: str = "f") -> list[Callable[[], int]]:
    """Track ``count`` distinct no-op functions on ``analytics``."""
    out = []
    for i in range(count):
        def fn() -> int:
            return 0
        out.append(analytics.track("scale", name=f"{prefix}{i}")(fn))
    return out


def noop(x: int) -> int:
    """The function every hot loop tracks: as cheap as a call gets."""
    return x


def best_per_call(fn: Callable[[int], Any], calls: int, rounds: int = 5) -> float:
    """Return the best per-call time in ns of ``fn(i)`` over ``calls`` calls."""
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter_ns()
        for i in range(calls):
            fn(i)
        best = min(best, (time.perf_counter_ns() - began) / calls)
    return best


def best_in_turns(fns: dict[str, Callable[[int], Any]], calls: int,
                  rounds: int = 9) -> dict[str, float]:
    """Return each function's best per-call time in ns, the functions taking turns.

    Each round times every function once, so that a busy spell of the machine
    disturbs them alike instead of one figure of a ratio.
    """
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            began = time.perf_counter_ns()
            for i in range(calls):
                fn(i)
            best[name] = min(best[name], (time.perf_counter_ns() - began) / calls)
    return best


# --------------------------------------------------------------------- figures
def memory_round_robin(calls: int, functions: int = 1_000) -> None:
    """RSS growth of round-robin calls over many functions, no reads; then the first read."""
    analytics = Analytics(max_events=10_000)
    fns = make_functions(analytics, functions)
    gc.collect()
    before = rss_mb()
    rounds = calls // functions
    for _ in range(rounds):
        for fn in fns:
            fn()
    grown = rss_mb() - before
    first_read = timed(analytics.get_stats)
    print(f"memory  {functions:,} fns round-robin, {rounds * functions:,} calls, "
          f"max_events=10,000, no reads: RSS +{grown:.1f} MB; first get_stats() "
          f"{ms(first_read)}; retained events {len(analytics.events):,}")


def memory_per_function(count: int) -> None:
    """Heap cost of each tracked function once it has been called (tracemalloc)."""
    plain = []
    for _ in range(count):
        def fn() -> int:
            return 0
        plain.append(fn)
    analytics = Analytics(max_events=10_000)
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    tracked = [analytics.track("scale", name=f"g{i}")(fn) for i, fn in enumerate(plain)]
    for fn in tracked:
        fn()
    analytics.call_counts  # noqa: B018  # a read drains every buffer
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"memory  {count:,} tracked functions called once each: "
          f"{(after - before) / count:,.0f} bytes per function (wrapper included)")


def reads(functions: int = 1_000, calls_each: int = 1_000) -> None:
    """Cost of each read after ``functions`` x ``calls_each`` calls."""
    analytics = Analytics(max_events=10_000)
    fns = make_functions(analytics, functions)
    for fn in fns:
        for _ in range(calls_each):
            fn()
    analytics.call_counts  # noqa: B018  # drain first: time the reads themselves
    parts: list[str] = []
    readers: dict[str, Callable[[], Any]] = {
        "get_stats()": analytics.get_stats,
        "events": lambda: analytics.events,
        "snapshot()": analytics.snapshot,
        "call_counts": lambda: analytics.call_counts,
    }
    if hasattr(analytics, "to_dict"):
        readers["to_dict()"] = analytics.to_dict
    if hasattr(analytics, "print_summary"):
        try:
            from rich.console import Console  # noqa: PLC0415

            sink = Console(file=io.StringIO(), width=120)
            readers["print_summary()"] = lambda: analytics.print_summary(sink)
        except ImportError:
            pass
    for label, read in readers.items():
        try:
            took = min(timed(read) for _ in range(3))
        except Exception as exc:  # noqa: BLE001  # another part may be mid-change
            parts.append(f"{label} failed ({type(exc).__name__})")
            continue
        parts.append(f"{label} {ms(took)}")
    print(f"reads   {functions:,} fns x {calls_each:,} calls: " + ", ".join(parts))


def drains_with_idle(idle_counts: list[int], calls: int) -> None:
    """Per-call cost of one hot function while many other functions are tracked (idle)."""
    results = []
    for idle in [0, *idle_counts]:
        analytics = Analytics(max_events=10_000)
        for fn in make_functions(analytics, idle, prefix="idle"):
            fn()  # called once: each has aggregates a drain could loop over
        hot = analytics.track("scale", name="hot")(noop)
        results.append((idle, best_per_call(hot, calls)))
        del analytics, hot
        gc.collect()
    alone = results[0][1]
    text = ", ".join(f"{idle:,} idle {ns:.0f} ns ({ns / alone:.2f}x)" for idle, ns in results)
    print(f"drains  hot fn per call: {text}")


def tail_latency(calls: int, functions: int) -> None:
    """p50/p99/p99.99/max of single tracked calls (each call timed on its own).

    Timed twice: by the wall clock, and by this thread's CPU time, which leaves out
    the time the OS gave to other processes (on a loaded machine a call is sometimes
    descheduled for milliseconds, whoever wrote it).
    """
    analytics = Analytics(max_events=10_000)
    fns = [analytics.track("scale", name=f"t{i}")(noop) for i in range(functions)]
    n = len(fns)
    for label, clock in (("wall", time.perf_counter_ns), ("cpu", time.thread_time_ns)):
        samples = [0] * calls
        plain = [0] * calls
        for i in range(calls):
            fn = fns[i % n]
            t0 = clock()
            fn(i)
            samples[i] = clock() - t0
        for i in range(calls):
            t0 = clock()
            noop(i)
            plain[i] = clock() - t0
        samples.sort()
        plain.sort()

        def q(values: list[int], p: float) -> float:
            return values[min(len(values) - 1, int(p * len(values)))] / 1e3

        print(f"tail    {functions:,} fn(s), {calls:,} calls, each timed ({label}): "
              f"mean {sum(samples) / calls / 1e3:.2f} µs, "
              f"p50 {q(samples, .5):.2f} µs, p99 {q(samples, .99):.2f} µs, "
              f"p99.99 {q(samples, .9999):.1f} µs, max {samples[-1] / 1e3:.1f} µs "
              f"(untracked p99.99 {q(plain, .9999):.1f} µs)")


ROUNDS_THREADED = 5


def _threaded(fn: Callable[[int], Any], threads: int, calls: int) -> float:
    """Return wall ns per call of ``threads`` threads each calling ``fn`` ``calls`` times."""
    barrier = threading.Barrier(threads + 1)

    def run() -> None:
        barrier.wait()
        for i in range(calls):
            fn(i)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    began = time.perf_counter_ns()
    for w in workers:
        w.join()
    return (time.perf_counter_ns() - began) / (threads * calls)


def threads(count: int, calls: int) -> None:
    """Overhead per call with ``count`` threads against single-threaded, in one run."""
    def floor(x: int) -> int:
        clock = time.perf_counter
        t0 = clock()
        r = noop(x)
        t1 = clock()
        del t0, t1
        return r

    analytics = Analytics()
    tracked = analytics.track("scale", name="threaded")(noop)
    rows = {}
    for label, threads_n in (("1 thread", 1), (f"{count} threads", count)):
        best: dict[str, float] = {}
        for _ in range(ROUNDS_THREADED):
            for name, fn in (("plain", noop), ("floor", floor), ("tracked", tracked)):
                took = _threaded(fn, threads_n, calls)
                best[name] = min(best.get(name, float("inf")), took)
        rows[label] = best
    made = analytics.call_counts.get("threaded", 0)
    expected = ROUNDS_THREADED * (calls + count * calls)
    single = rows["1 thread"]["tracked"] - rows["1 thread"]["plain"]
    multi = rows[f"{count} threads"]["tracked"] - rows[f"{count} threads"]["plain"]
    floor_multi = rows[f"{count} threads"]["floor"] - rows[f"{count} threads"]["plain"]
    print(f"threads {count} threads x {calls:,} calls: overhead {multi:.0f} ns/call vs "
          f"{single:.0f} ns single-threaded ({multi / single:.2f}x); "
          f"{multi / floor_multi:.2f}x the floor under the same threads; "
          f"counts {'exact' if made == expected else f'WRONG {made} != {expected}'}")


def measure_blocks(calls: int) -> None:
    """A fresh ``measure("x")`` per block against a tracked sync call's overhead.

    The block is written as users write it: ``with analytics.measure("block"):``,
    the method looked up on the instance each time.
    """
    analytics = Analytics()
    tracked = analytics.track("scale", name="sync")(noop)

    def block(i: int) -> int:
        with analytics.measure("block"):
            return noop(i)

    def plain_block(i: int) -> int:
        return noop(i)

    best = best_in_turns({"plain": noop, "tracked": tracked, "base": plain_block,
                          "block": block}, calls)
    sync_over = best["tracked"] - best["plain"]
    block_over = best["block"] - best["base"]
    print(f"measure fresh measure('x') per block: overhead {block_over:.0f} ns vs tracked sync "
          f"call {sync_over:.0f} ns ({block_over / sync_over:.2f}x)")


def failures(calls: int) -> None:
    """Cost of a failed tracked call against a failed untracked call."""
    analytics = Analytics()

    def boom(x: int) -> int:
        raise ValueError(f"bad value {x}")

    tracked = analytics.track("scale", name="boom")(boom)

    def run(fn: Callable[[int], Any]) -> float:
        best = float("inf")
        for _ in range(5):
            began = time.perf_counter_ns()
            for i in range(calls):
                with contextlib.suppress(ValueError):
                    fn(i)
            best = min(best, (time.perf_counter_ns() - began) / calls)
        return best

    quiet_logger = logging.getLogger("scale.quiet")
    quiet_logger.setLevel(logging.CRITICAL)
    quiet_logger.propagate = False
    quiet = Analytics(loggers=LoggerContainer(quiet_logger, quiet_logger, quiet_logger))
    unlogged = quiet.track("scale", name="boom")(boom)
    plain = run(boom)
    over = run(tracked) - plain
    silent = run(unlogged) - plain
    print(f"failed  failing call: {plain:.0f} ns untracked; overhead when tracked {over:.0f} ns "
          f"with the default failure log lines (traceback formatted), {silent:.0f} ns with "
          f"them off (message and location captured)")


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def machine_noise(samples: int) -> None:
    """The tail of a fixed CPU loop of about 10 µs that allocates nothing: the machine's.

    Any work of that length shows this tail here (a virtual machine's CPU is taken
    away now and then, even from the thread's CPU time), so a tracked call's p99.99
    cannot fall below it once drains of that length are part of the calls timed.
    """
    n = 16
    while True:  # about 10 µs per loop (the median of a few, to skip a disturbed one)
        runs = []
        for _ in range(9):
            began = time.perf_counter_ns()
            _spin(n)
            runs.append(time.perf_counter_ns() - began)
        if sorted(runs)[4] >= 10_000:
            break
        n *= 2
    for label, clock in (("wall", time.perf_counter_ns), ("cpu", time.thread_time_ns)):
        timings = [0] * samples
        for i in range(samples):
            t0 = clock()
            _spin(n)
            timings[i] = clock() - t0
        timings.sort()

        def q(p: float, values: list[int] = timings) -> float:
            return values[min(len(values) - 1, int(p * len(values)))] / 1e3

        print(f"noise   a fixed {q(.5):.0f} µs CPU loop, {samples:,} times ({label}): "
              f"p99 {q(.99):.1f} µs, p99.9 {q(.999):.1f} µs, p99.99 {q(.9999):.1f} µs, "
              f"max {timings[-1] / 1e3:.1f} µs")


def tails(calls: int) -> None:
    """Tail latency with one function, then with 4, 16 and 1,000 called round-robin.

    Few functions in turn fill each chunk with several functions' calls (folded
    grouped by function); 1,000 leave about one call per function in a chunk (folded
    call by call).  Then the machine's own tail.
    """
    for functions in (1, 4, 16, 1_000):
        tail_latency(calls, functions)
    machine_noise(max(10_000, calls // 10))


FIGURES = ("memory", "perfn", "reads", "drains", "tail", "threads", "measure", "failures")


def main() -> None:
    """Run the selected figures and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller workloads, a smoke run")
    parser.add_argument("--only", nargs="*", choices=FIGURES, default=list(FIGURES))
    args = parser.parse_args()
    q = args.quick
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, GIL "
          f"{'on' if getattr(sys, '_is_gil_enabled', lambda: True)() else 'off'}")
    runs: dict[str, Callable[[], None]] = {
        "memory": lambda: memory_round_robin(800_000 if q else 8_000_000),
        "perfn": lambda: memory_per_function(10_000 if q else 100_000),
        "reads": lambda: reads(1_000, 100 if q else 1_000),
        "drains": lambda: drains_with_idle([1_000, 10_000] if q else [1_000, 10_000, 100_000],
                                           50_000 if q else 200_000),
        "tail": lambda: tails(200_000 if q else 1_000_000),
        "threads": lambda: threads(8, 20_000 if q else 100_000),
        "measure": lambda: measure_blocks(30_000 if q else 100_000),
        "failures": lambda: failures(20_000 if q else 100_000),
    }
    for name in args.only:
        runs[name]()
        gc.collect()


if __name__ == "__main__":
    main()
