"""Helpers that write real stores for the store, output and CLI tests (not a test module)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from callmetrics import Analytics, DurationSketch, FunctionSnapshot
from callmetrics._store import attach_store


def snapshot(name: str, durations: list[float], *, failures: int = 0) -> FunctionSnapshot:
    """A function's aggregates holding exactly ``durations``."""
    sketch = DurationSketch()
    for duration in durations:
        sketch.add(duration)
    return FunctionSnapshot(name=name, event_type="unit", module="tests", calls=len(durations),
                            successes=len(durations) - failures, total=sum(durations),
                            fast=len(durations), medium=0, slow=0, overhead=0.0, sketch=sketch,
                            slowest=None, fastest=None)


def write_run(store: Path, functions: dict[str, list[float]], *,
              label: str | None = None) -> None:
    """Write one run holding the given durations per function, through the real writer."""
    analytics = Analytics()
    writer = attach_store(analytics, store, label=label)
    analytics.restore([snapshot(name, durations) for name, durations in functions.items()], [])
    writer.close()


def record_calls(store: Path, name: str, calls: int, *, label: str | None = None) -> None:
    """Write one run of ``calls`` real tracked calls (events included)."""
    analytics = Analytics()
    writer = attach_store(analytics, store, label=label)
    work = analytics.track("unit", name=name)(lambda i: i)
    for i in range(calls):
        work(i)
    writer.close()


def run_workers(program: str, arguments: list[list[str]], *, quiet: bool = False,
                timeout: float = 120) -> list[int]:
    """Run ``python -c program ARGS`` once per argument list, all at once; their exit codes.

    ``quiet``: their standard error is discarded.  A worker still running when the
    wait ends (``subprocess.TimeoutExpired`` after ``timeout`` seconds) is killed:
    it must not outlive the test.
    """
    stderr = subprocess.DEVNULL if quiet else None
    workers = [subprocess.Popen([sys.executable, "-c", program, *args], stderr=stderr)
               for args in arguments]
    try:
        return [worker.wait(timeout=timeout) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
