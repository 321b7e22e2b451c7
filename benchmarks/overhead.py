"""Per-call overhead of callmetrics against a hand-made floor and other libraries.

Run: ``python benchmarks/overhead.py [--calls N] [--quick] [--callgrind]``.  Prints
figures; never fails on them.  The hot path in use (``callmetrics.implementation``:
the C accelerator, or pure Python) is timed next to the pure-Python wrappers, built
in the same process, so both appear side by side; ``--callgrind`` also counts
instructions per call under ``valgrind --tool=callgrind`` (deterministic, unlike
times on a shared machine).  Each figure is the best of several rounds (the least disturbed by
other work on the machine); overhead is the time minus the undecorated call.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any, cast

import callmetrics
from callmetrics import Analytics, LoggerContainer
from callmetrics._analytics import python_measure
from callmetrics._engine import wrap as _wrap
from callmetrics._engine.aggregate import FunctionStats
from callmetrics._engine.ends import Runtime
from callmetrics._engine.stepping import Stepping

ROUNDS = 7
BLOCK_BASELINE = "a function calling work (block baseline)"


def best_sync(fn: Callable[[int], Any], calls: int) -> float:
    """Return the best per-call time, in nanoseconds, of ``fn(i)`` over ``calls`` calls."""
    best = float("inf")
    for _ in range(ROUNDS):
        began = time.perf_counter_ns()
        for i in range(calls):
            fn(i)
        best = min(best, (time.perf_counter_ns() - began) / calls)
    return best


def best_async(fn: Callable[[int], Awaitable[Any]], calls: int) -> float:
    """Return the best per-call time, in nanoseconds, of ``await fn(i)`` inside one loop."""

    async def run() -> float:
        best = float("inf")
        for _ in range(ROUNDS):
            began = time.perf_counter_ns()
            for i in range(calls):
                await fn(i)
            best = min(best, (time.perf_counter_ns() - began) / calls)
        return best

    return asyncio.run(run())


def best_gen(fn: Callable[[int], Iterator[Any]], calls: int) -> float:
    """Return the best per-call time, in nanoseconds, of iterating ``fn(i)`` to its end."""
    best = float("inf")
    for _ in range(ROUNDS):
        began = time.perf_counter_ns()
        for i in range(calls):
            for _item in fn(i):
                pass
        best = min(best, (time.perf_counter_ns() - began) / calls)
    return best


def best_agen(fn: Callable[[int], AsyncIterator[Any]], calls: int) -> float:
    """Return the best per-call time, in nanoseconds, of ``async for`` over ``fn(i)``."""

    async def run() -> float:
        best = float("inf")
        for _ in range(ROUNDS):
            began = time.perf_counter_ns()
            for i in range(calls):
                async for _item in fn(i):
                    pass
            best = min(best, (time.perf_counter_ns() - began) / calls)
        return best

    return asyncio.run(run())


def work(x: int) -> int:
    """Return ``x``: the function every contender wraps, as cheap as a call gets."""
    return x


async def async_work(x: int) -> int:
    """Return ``x``: the coroutine every async contender wraps."""
    return x


def gen_work(x: int) -> Iterator[int]:
    """Yield ``x`` once: the generator every generator contender wraps."""
    yield x


async def agen_work(x: int) -> AsyncIterator[int]:
    """Yield ``x`` once: the async generator every async-generator contender wraps."""
    yield x


def floor(func: Callable[[int], int]) -> Callable[[int], int]:
    """Wrap ``func`` doing the least a timer can: two clock reads."""
    clock = time.perf_counter_ns

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        t0 = clock()
        result = func(*args, **kwargs)
        t1 = clock()
        del t0, t1
        return result

    return wrapper


def async_floor(func: Callable[[int], Awaitable[int]]) -> Callable[[int], Awaitable[int]]:
    """Wrap a coroutine function like :func:`floor` does."""
    clock = time.perf_counter_ns

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> int:
        t0 = clock()
        result = await func(*args, **kwargs)
        t1 = clock()
        del t0, t1
        return result

    return wrapper


def gen_floor(func: Callable[[int], Iterator[int]]) -> Callable[[int], Iterator[int]]:
    """Wrap a generator function like :func:`floor` does: a plain Python generator wrapper."""
    clock = time.perf_counter_ns

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[int, Any, Any]:
        t0 = clock()
        yield from func(*args, **kwargs)
        t1 = clock()
        del t0, t1

    return wrapper


def agen_floor(func: Callable[[int], AsyncIterator[int]]) -> Callable[[int], AsyncIterator[int]]:
    """Wrap an async generator function like :func:`floor` does: a Python async generator."""
    clock = time.perf_counter_ns

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[int]:
        t0 = clock()
        async for item in func(*args, **kwargs):
            yield item
        t1 = clock()
        del t0, t1

    return wrapper


def _python_stepping(work_fn: Callable[..., Any], kind: str) -> Any:
    """Track ``func`` with the pure-Python step proxy, whatever the hot path in use."""
    saved = _wrap._BUILDERS[kind]

    def build(func: Callable[..., Any], stats: FunctionStats, rt: Runtime) -> Any:
        stats.stepped = True
        return Stepping(func, stats, rt, kind)

    _wrap._BUILDERS[kind] = build
    try:
        return Analytics().track("bench")(work_fn)
    finally:
        _wrap._BUILDERS[kind] = saved


def contenders() -> dict[str, Callable[[int], Any] | None]:
    """Build every sync contender; a library that is not installed maps to None."""
    found: dict[str, Callable[[int], Any] | None] = {
        "undecorated": work,
        "floor (wraps + 2 perf_counter_ns)": floor(work),
        "callmetrics": Analytics().track("bench")(work),
        "callmetrics, pure Python": _pure_python_tracked(Analytics()),
        "callmetrics enabled=False": Analytics({"enabled": False}).track("bench")(work),
        "callmetrics track_concurrency=True": _concurrent(work),
        "callmetrics cpu_time=True": _cpu_timed(work),
        "callmetrics cpu_time=True, pure Python": _cpu_timed(work, python=True),
        "callmetrics, stopped (pass-through)": _stopped(Analytics().track("bench")(work)),
        "callmetrics, pure Python, stopped": _stopped(_pure_python_tracked(Analytics())),
    }
    try:
        from prometheus_client import CollectorRegistry, Histogram  # noqa: PLC0415

        histogram = Histogram("bench_seconds", "bench", registry=CollectorRegistry())
        found["prometheus_client Histogram.time()"] = histogram.time()(work)
    except ImportError:
        found["prometheus_client Histogram.time()"] = None
    try:
        from codetiming import Timer  # noqa: PLC0415

        found["codetiming Timer(logger=None)"] = Timer(logger=None)(work)
    except ImportError:
        found["codetiming Timer(logger=None)"] = None
    try:
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

        tracer = TracerProvider().get_tracer("bench")
        found["OpenTelemetry SDK span decorator"] = tracer.start_as_current_span("work")(work)
    except ImportError:
        found["OpenTelemetry SDK span decorator"] = None
    found[BLOCK_BASELINE] = _calling
    found["with a threading.Lock *"] = _locked()
    found["callmetrics measure(), fresh block *"] = _measured()
    found["callmetrics measure(), pure Python *"] = _measured(python=True)
    found["callmetrics measure(), cpu_time=True *"] = _measured(cpu_time=True)
    found["callmetrics + exporters (no spans)"] = _exported(spans=False)
    found["callmetrics + OTel spans=True"] = _exported(spans=True)
    return found


def fail(x: int) -> int:
    """Raise ``ValueError``: the function the failing contenders wrap."""
    raise ValueError(x)


def _caught(fn: Callable[[int], Any]) -> Callable[[int], Any]:
    """Call ``fn`` and swallow the ``ValueError`` it raises: one failed call per call."""

    def call(x: int) -> Any:
        try:
            return fn(x)
        except ValueError:
            return None

    return call


def _concurrent(func: Callable[[int], Any]) -> Callable[[int], Any] | None:
    """Track ``func`` counting calls in progress (None: a version without the setting)."""
    try:
        analytics = Analytics(track_concurrency=True)
    except TypeError:
        return None
    return analytics.track("bench")(func)


def _cpu_timed(func: Callable[[int], Any], *,
               python: bool = False) -> Callable[[int], Any] | None:
    """Track ``func`` measuring each call's thread CPU time (None: a version without it)."""
    try:
        analytics = Analytics(cpu_time=True)
    except TypeError:
        return None
    return _pure_python_tracked(analytics, func) if python else analytics.track("bench")(func)


def _unlogged(**settings: Any) -> Analytics:
    """An instance whose failure log lines are dropped (their cost is logging's, not ours)."""
    made = [logging.getLogger(f"bench.quiet.{role}") for role in ("console", "error", "analytics")]
    for logger in made:
        logger.setLevel(logging.CRITICAL)
        logger.propagate = False
    return Analytics(settings or None, LoggerContainer(*made))


def failing() -> dict[str, Callable[[int], Any] | None]:
    """Build the failing contenders: each call raises, the caller catches it.

    Their failure lines are not logged: with the default loggers a logged failure
    (a warning and an error with its traceback) costs tens of microseconds, which
    would hide what recording the failure costs.
    """
    found: dict[str, Callable[[int], Any] | None] = {
        "undecorated, raising": _caught(fail),
        "callmetrics, raising": _caught(_unlogged().track("bench")(fail)),
        "callmetrics, pure Python, raising": _caught(_pure_python_tracked(_unlogged(), fail)),
    }
    try:
        tracked = _unlogged(track_concurrency=True).track("bench")(fail)
    except (TypeError, ValueError):  # a version without the setting
        found["callmetrics track_concurrency=True, raising"] = None
    else:
        found["callmetrics track_concurrency=True, raising"] = _caught(tracked)
    return found


def _calling(x: int) -> int:
    """Call ``work``: what a measured block costs without the ``with`` statement."""
    return work(x)


def _locked() -> Callable[[int], Any]:
    """Call ``work`` inside ``with lock:``: a common context manager, for reference.

    A lock's ``__enter__`` and ``__exit__`` are C methods doing almost nothing (the
    ``with`` statement binds each to the lock, making two method objects per block).
    """
    lock = threading.Lock()

    def block(x: int) -> int:
        with lock:
            return work(x)

    return block


def _pure_python_tracked(analytics: Analytics,
                         func: Callable[[int], Any] = work) -> Callable[[int], Any]:
    """Track ``func`` with the pure-Python sync wrapper, whatever the hot path in use."""
    saved = _wrap._BUILDERS["sync"]
    _wrap._BUILDERS["sync"] = _wrap._wrap_sync
    try:
        return analytics.track("bench")(func)
    finally:
        _wrap._BUILDERS["sync"] = saved


def _stopped(wrapper: Callable[[int], Any]) -> Callable[[int], Any]:
    """``wrapper`` turned into a pass-through, as pruning leaves a short function on 3.11."""
    _wrap.stop_tracking(wrapper)
    return wrapper


class _PythonMeasured(Analytics):
    """An Analytics whose ``measure`` is the pure-Python method, whatever the hot path."""

    measure = python_measure


def _measured(*, python: bool = False, cpu_time: bool = False) -> Callable[[int], Any]:
    """Time ``work`` in ``with analytics.measure("bench"):``, as users write it.

    A new block per call, and the method looked up on the instance each time.
    ``python``: use the pure-Python ``measure`` even when the C accelerator answers
    ``analytics.measure``.  ``cpu_time``: measure each block's thread CPU time too.
    """
    settings = {"cpu_time": True} if cpu_time else None
    analytics = _PythonMeasured(settings) if python else Analytics(settings)

    def block(x: int) -> int:
        with analytics.measure("bench"):
            return work(x)

    return block


def _exported(*, spans: bool) -> Callable[[int], Any] | None:
    """Track ``work`` on an instance exported to OpenTelemetry and Prometheus."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from prometheus_client import CollectorRegistry  # noqa: PLC0415

        from callmetrics.exporters.otel import instrument  # noqa: PLC0415
        from callmetrics.exporters.prometheus import CallmetricsCollector  # noqa: PLC0415
    except ImportError:
        return None
    analytics = Analytics()
    instrument(analytics, MeterProvider(), spans=spans, tracer_provider=TracerProvider())
    CollectorRegistry().register(CallmetricsCollector(analytics))
    return analytics.track("bench")(work)


def report(rows: dict[str, float | None], floor_name: str) -> None:
    """Print time, overhead and ratio to the floor's overhead for each row."""
    base = rows["undecorated"]
    assert base is not None
    floor_time = rows[floor_name]
    assert floor_time is not None
    floor_overhead = floor_time - base
    print(f"{'contender':42} {'ns/call':>9} {'overhead':>9} {'x floor':>8}")
    for name, value in rows.items():
        if value is None:
            print(f"{name:42} {'(not installed)':>28}")
            continue
        # A block (*) lives in a function, as inline code does not: its overhead is
        # its time less that function's (the block baseline row).
        block_base = rows.get(BLOCK_BASELINE) if name.endswith("*") else None
        overhead = value - (base if block_base is None else block_base)
        ratio = overhead / floor_overhead if floor_overhead > 0 else float("nan")
        print(f"{name:42} {value:9.1f} {overhead:9.1f} {ratio:8.2f}")
    if any(name.endswith("*") for name in rows):
        print("* overhead against the block baseline (a function calling work)")


def blocks(rows: dict[str, float | None]) -> None:
    """A measured block's own cost (against the block baseline) against a tracked call's."""
    baseline, plain = rows[BLOCK_BASELINE], rows["undecorated"]
    assert baseline is not None
    assert plain is not None
    for name, call in (("callmetrics measure(), fresh block *", "callmetrics"),
                       ("callmetrics measure(), pure Python *", "callmetrics, pure Python")):
        value, tracked = rows[name], rows[call]
        if value is not None and tracked is not None:
            own, tracked_over = value - baseline, tracked - plain
            print(f"{name.rstrip(' *')}: {own:.1f} ns, {own / tracked_over:.2f}x the "
                  f"overhead of a tracked call on that path ({tracked_over:.1f} ns)")


def overhead_accuracy(calls: int, measured_ns: float) -> None:
    """Compare ``decorator_overhead`` with the overhead the benchmark measured."""
    analytics = Analytics()
    tracked = analytics.track("bench")(work)
    for i in range(calls):
        tracked(i)
    reported = analytics.decorator_overhead["work"] / calls * 1e9
    print(f"decorator_overhead reports {reported:.1f} ns/call; measured {measured_ns:.1f} "
          f"ns/call ({(reported / measured_ns - 1) * 100:+.0f}%)")


def memory(calls: int) -> None:
    """Heap growth over ``calls`` calls with ``max_events=10_000``."""
    analytics = Analytics(max_events=10_000)
    tracked = analytics.track("bench")(work)
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for i in range(calls):
        tracked(i)
    analytics.get_stats()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"memory: {calls:,} calls grow the heap by {(after - before) / 1e6:.2f} MB "
          f"(peak {(peak - before) / 1e6:.2f} MB)")


_COUNTED: dict[str, Callable[[], Callable[[int], Any]]] = {
    "floor": lambda: floor(work),
    "block baseline (a function calling work)": lambda: _calling,
    "pure Python": lambda: _pure_python_tracked(Analytics()),
    "C accelerator": lambda: Analytics().track("bench")(work),
    "C accelerator, stopped (pass-through)": lambda: _stopped(Analytics().track("bench")(work)),
    "pure Python, stopped (pass-through)": lambda: _stopped(_pure_python_tracked(Analytics())),
    "measure() block, pure Python": lambda: _measured(python=True),
    "measure() block, C accelerator": _measured,
    "cpu_time=True, C accelerator": lambda: _cpu_timed(work) or work,
    "cpu_time=True, pure Python": lambda: _cpu_timed(work, python=True) or work,
    "measure() block, cpu_time=True": lambda: _measured(cpu_time=True),
}
# Coroutines, generators and async generators: (kind, undecorated, floor); each is
# counted undecorated, under its floor, tracked (the hot path in use) and tracked
# with the pure-Python step proxy.
_KINDS: dict[str, tuple[Callable[..., Any], Callable[[Any], Any]]] = {
    "async": (async_work, async_floor),
    "gen": (gen_work, gen_floor),
    "agen": (agen_work, agen_floor),
}
_STEPPED = ("undecorated", "floor", "tracked", "tracked, pure Python")


def _stepped_contender(kind: str, which: str) -> Callable[[int], Any]:
    """One async, generator or async-generator contender of the instruction counts."""
    original, floor_of = _KINDS[kind]
    if which == "undecorated":
        return original
    if which == "floor":
        return cast("Callable[[int], Any]", floor_of(original))
    if which == "tracked":
        return cast("Callable[[int], Any]", Analytics().track("bench")(original))
    return cast("Callable[[int], Any]", _python_stepping(original, kind))


def _drive(kind: str, fn: Callable[[int], Any], calls: int) -> None:
    """Make ``calls`` calls of ``fn``, driven as its kind is (await, for, async for)."""
    if kind == "gen":
        for i in range(calls):
            for _item in fn(i):
                pass
        return

    async def run() -> None:
        for i in range(calls):
            if kind == "async":
                await fn(i)
            else:
                async for _item in fn(i):
                    pass

    asyncio.run(run())


def _count_only(contender: str, calls: int) -> None:
    """Make ``calls`` calls of one contender.

    ``undecorated``, a key of ``_COUNTED``, or ``KIND:WHICH`` for a kind of ``_KINDS``
    and one of ``_STEPPED``.
    """
    if ":" in contender:
        kind, which = contender.split(":", 1)
        _drive(kind, _stepped_contender(kind, which), calls)
        return
    fn = work if contender == "undecorated" else _COUNTED[contender]()
    for i in range(calls):
        fn(i)


def _instructions(contender: str, calls: int) -> int:
    """Instructions callgrind counts for the whole process making ``calls`` calls."""
    valgrind = shutil.which("valgrind")
    assert valgrind is not None
    done = subprocess.run(  # noqa: S603  # our own fixed command line
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--count-only", contender, str(calls)],
        capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found is not None, done.stderr
    return int(found.group(1))


def instruction_counts(small: int = 10_000, large: int = 60_000,
                       only: str | None = None) -> None:
    """Print instructions per call (the difference of two runs), minus the plain call's.

    ``only``: a comma-separated list of the contenders (names of ``_COUNTED``) and
    kinds (``async``, ``gen``, ``agen``) to count; all when None.
    """
    chosen = None if only is None else {part.strip() for part in only.split(",")}
    if shutil.which("valgrind") is None:
        print("instructions: valgrind is not installed (apt-get install valgrind)")
        return
    if callmetrics.implementation != "c":
        print("instructions: the C accelerator is not in use; counting pure Python only")

    def per_call(contender: str) -> float:
        return (_instructions(contender, large) - _instructions(contender, small)) / (
            large - small)

    base = per_call("undecorated")
    print(f"{'instructions per call (callgrind)':42} {'total':>9} {'overhead':>9}")
    print(f"{'undecorated':42} {base:9.0f} {0:9.0f}")
    for contender in _COUNTED:
        if "C accelerator" in contender and callmetrics.implementation != "c":
            continue
        if chosen is not None and contender not in chosen:
            continue
        value = per_call(contender)
        print(f"{contender:42} {value:9.0f} {value - base:9.0f}")
    for kind in _KINDS:
        if chosen is not None and kind not in chosen:
            continue
        plain = per_call(f"{kind}:undecorated")
        print(f"{kind + ' undecorated':42} {plain:9.0f} {0:9.0f}")
        for which in _STEPPED[1:]:
            value = per_call(f"{kind}:{which}")
            print(f"{kind + ' ' + which:42} {value:9.0f} {value - plain:9.0f}")


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000, help="calls per round")
    parser.add_argument("--memory-calls", type=int, default=2_000_000)
    parser.add_argument("--quick", action="store_true", help="fewer calls, for a smoke run")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count instructions per call with valgrind's callgrind")
    parser.add_argument("--callgrind-only", metavar="NAMES",
                        help="only these contenders and kinds (comma-separated: e.g. "
                             "'C accelerator,async,gen,agen'); implies --callgrind")
    parser.add_argument("--count-only", nargs=2, metavar=("CONTENDER", "CALLS"),
                        help=argparse.SUPPRESS)  # the workload callgrind runs
    args = parser.parse_args()
    if args.count_only:
        _count_only(args.count_only[0], int(args.count_only[1]))
        return
    if args.callgrind_only:  # instructions only: no timing
        instruction_counts(only=args.callgrind_only)
        return
    calls = 20_000 if args.quick else args.calls

    sync_rows = {name: (best_sync(fn, calls) if fn else None)
                 for name, fn in contenders().items()}
    print(f"sync (hot path in use: {callmetrics.implementation}):")
    report(sync_rows, "floor (wraps + 2 perf_counter_ns)")

    fail_rows = {name: (best_sync(fn, calls) if fn else None)
                 for name, fn in failing().items()}
    print("\nfailing calls (each raises ValueError, caught by the caller):")
    plain_fail = fail_rows["undecorated, raising"]
    assert plain_fail is not None
    for name, value in fail_rows.items():
        if value is None:
            print(f"{name:42} {'(not in this version)':>28}")
        else:
            print(f"{name:42} {value:9.1f} {value - plain_fail:9.1f}")

    async_rows: dict[str, float | None] = {
        "undecorated": best_async(async_work, calls),
        "async floor": best_async(async_floor(async_work), calls),
        "callmetrics async": best_async(Analytics().track("bench")(async_work), calls),
        "callmetrics async, pure Python": best_async(_python_stepping(async_work, "async"),
                                                     calls),
    }
    concurrent_async = _concurrent(async_work)
    async_rows["callmetrics async, track_concurrency=True"] = (
        best_async(concurrent_async, calls) if concurrent_async else None)
    print("\nasync (await of a tracked coroutine, in one event loop):")
    report(async_rows, "async floor")

    gen_rows: dict[str, float | None] = {
        "undecorated": best_gen(gen_work, calls),
        "generator floor (Python wrapper)": best_gen(gen_floor(gen_work), calls),
        "callmetrics generator": best_gen(Analytics().track("bench")(gen_work), calls),
        "callmetrics generator, pure Python": best_gen(_python_stepping(gen_work, "gen"), calls),
    }
    print("\ngenerators (a call iterated to its end, one item):")
    report(gen_rows, "generator floor (Python wrapper)")

    agen_rows: dict[str, float | None] = {
        "undecorated": best_agen(agen_work, calls),
        "async generator floor (Python wrapper)": best_agen(agen_floor(agen_work), calls),
        "callmetrics async generator": best_agen(Analytics().track("bench")(agen_work), calls),
        "callmetrics async generator, pure Python": best_agen(
            _python_stepping(agen_work, "agen"), calls),
    }
    print("\nasync generators (`async for` over a call to its end, one item):")
    report(agen_rows, "async generator floor (Python wrapper)")

    measured = sync_rows["callmetrics"]
    base = sync_rows["undecorated"]
    assert measured is not None
    assert base is not None
    print()
    blocks(sync_rows)
    overhead_accuracy(calls, measured - base)
    memory(200_000 if args.quick else args.memory_calls)
    if args.callgrind:
        print()
        instruction_counts()


if __name__ == "__main__":
    main()
