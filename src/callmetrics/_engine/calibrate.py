"""Calibration of the wrappers' own per-call cost, measured once per process.

``decorator_overhead`` reports what the wrapper adds to each call.  Timing the
wrapper inside every call would itself cost as much as the wrapper, so the hot
path is timed once, on a no-op function, the first time an overhead is read; the
bulk work done later (draining buffers) is measured where it happens and added.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any

from callmetrics._engine.accel import new_buffer
from callmetrics._engine.aggregate import FunctionStats
from callmetrics._engine.logs import CACHE_KEY, CallLogger
from callmetrics._engine.records import LoggerContainer
from callmetrics._engine.wrap import CallObserver, Ends, wrap

# Drain once the buffer holds this many calls, as the recorder does (3 items per call).
_CAPACITY = 3 * 1024

__all__ = ["per_call_overhead"]

_ROUNDS = 7
_CALLS = 2_000


class _QuietRuntime:
    """A runtime whose logging is off and whose drains just empty the buffer."""

    def __init__(self) -> None:
        quiet = logging.getLogger("callmetrics.calibration")
        quiet.propagate = False
        self.call_logger = CallLogger(LoggerContainer(quiet, quiet, quiet), long_max=1e9,
                                      capacity=_CAPACITY)
        self.call_logger.cache = {CACHE_KEY: _CAPACITY}
        self.observers: list[CallObserver] = []
        self.buffer: Any = new_buffer()
        self.ends = Ends(self)

    def drain_soon(self, wait: float = 0.0) -> bool:  # noqa: ARG002  # the Runtime protocol
        self.buffer.clear()
        return True


def _best_loop(run: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(_ROUNDS):
        began = perf_counter()
        run()
        best = min(best, perf_counter() - began)
    return best / _CALLS


def _sync_cost() -> float:
    def noop(x: int) -> int:
        return x

    stats = FunctionStats("calibration", "calibration", __name__)
    tracked = wrap(noop, "sync", stats, _QuietRuntime())

    def run_tracked() -> None:
        for i in range(_CALLS):
            tracked(i)

    def run_plain() -> None:
        for i in range(_CALLS):
            noop(i)

    return max(0.0, _best_loop(run_tracked) - _best_loop(run_plain))


def _async_cost() -> float:
    async def noop(x: int) -> int:
        return x

    stats = FunctionStats("calibration", "calibration", __name__)
    tracked = wrap(noop, "async", stats, _QuietRuntime())

    def drive(factory: Callable[[int], Any]) -> Callable[[], None]:
        def run() -> None:
            for i in range(_CALLS):
                with contextlib.suppress(StopIteration):
                    factory(i).send(None)
        return run

    return max(0.0, _best_loop(drive(tracked)) - _best_loop(drive(noop)))


@functools.cache
def per_call_overhead() -> dict[str, float]:
    """Return the wrapper's own cost per call, in seconds, by kind of callable.

    ``sync`` and ``async`` are measured; generators and blocks, whose wrappers
    do the same bookkeeping through one more function call, use the async figure.
    """
    sync, asynchronous = _sync_cost(), _async_cost()
    return {"sync": sync, "async": asynchronous, "gen": asynchronous, "agen": asynchronous,
            "block": asynchronous}
