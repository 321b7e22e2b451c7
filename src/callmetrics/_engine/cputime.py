"""Thread CPU time per call: ``CpuTimes``, a call observer.

An ``Analytics(cpu_time=True)`` registers one at construction; without it nothing
here runs and the wrappers pay nothing.  With it, every tracked call takes the
observed path: ``on_start`` reads the thread's CPU clock (``time.thread_time_ns``,
``clock_gettime(CLOCK_THREAD_CPUTIME_ID)``) and ``on_end`` reads it again on the
same thread.  Only calls that run on one thread from start to end are measured:
plain functions and ``with measure()`` blocks.  Coroutines, generators and
``async with measure()`` blocks suspend, and other work runs on their thread
meanwhile, so their CPU time is not measured: it stays unknown (None), never 0.

``on_end`` appends ``(stats, nanoseconds)`` to one list with a single ``extend``
(atomic under the GIL and under free-threading's per-list lock), so no call is lost
under threads.  The recorder folds that list into each function's ``cpu_time``
under its lock, whenever it drains its buffer or anything reads (``fold``); the
hot path asks for a drain when the list grows long, so it stays bounded.
"""

from __future__ import annotations

from time import thread_time_ns
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from callmetrics._engine.aggregate import FunctionStats

__all__ = ["CPU_KINDS", "CpuTimes", "suspending"]

# The kinds of calls whose thread CPU time is measured: they never suspend.
CPU_KINDS = frozenset({"sync", "block"})
# Measured calls (two items each) waiting for a fold before the hot path asks for one.
PENDING_LIMIT = 2 * 4096


class CpuTimes:
    """Measures the thread CPU time of each sync call and block; folded by the recorder."""

    __slots__ = ("_drain", "_folding", "pending", "unknown")

    def __init__(self, drain: Callable[[], Any]) -> None:
        """Start with nothing measured; ``drain()`` asks the recorder for a drain (no wait)."""
        self.pending: list[Any] = []  # stats, ns, stats, ns...: appended by whole pairs
        self._drain = drain
        self._folding = False
        # Blocks also entered with ``async with``: their CPU time is unknown from then on.
        self.unknown: set[FunctionStats] = set()

    def on_start(self, stats: FunctionStats) -> int | None:
        """Read the thread's CPU clock before a call that stays on its thread (else None)."""
        if stats.kind not in CPU_KINDS or stats in self.unknown:
            return None
        if stats.cpu_time is None:
            stats.cpu_time = 0.0  # measured from now on: 0 until the first fold adds to it
        return thread_time_ns()

    def on_end(self, token: object, stats: FunctionStats, duration: float,
               error: BaseException | None) -> None:
        """Read the clock again: the call's CPU time goes to the pending list."""
        del duration, error
        if token is None:
            return
        spent = thread_time_ns() - token  # type: ignore[operator]  # on_start's int
        pending = self.pending
        pending.extend((stats, spent))  # one atomic extend: a whole pair
        if len(pending) >= PENDING_LIMIT:
            self._drain()

    def suspends(self, stats: FunctionStats) -> None:
        """``stats`` (a block) also runs across suspensions: its CPU time is unknown."""
        self.unknown.add(stats)
        stats.cpu_time = None

    def fold(self) -> None:
        """Add the pending CPU times to their functions; the recorder's lock is held.

        Calls appended meanwhile by other threads stay (appends go to the end; only
        a fold, under the lock, takes from the front).  Not re-entered (a signal
        handler's read inside a fold sees the totals as they stand).
        """
        if self._folding or not self.pending:
            return
        self._folding = True
        try:
            pending = self.pending
            count = len(pending) & ~1
            taken = pending[:count]
            del pending[:count]
            sums: dict[FunctionStats, int] = {}
            for at in range(0, count, 2):
                stats = taken[at]
                sums[stats] = sums.get(stats, 0) + taken[at + 1]
            unknown = self.unknown
            for stats, spent in sums.items():
                if stats not in unknown:
                    stats.cpu_time = (stats.cpu_time or 0.0) + spent / 1e9
        finally:
            self._folding = False


def suspending(started: list[tuple[Any, object]], stats: FunctionStats) -> list[tuple[Any, object]]:
    """``started`` (a block's observers and tokens) without the CPU clock's, for ``async with``.

    The block suspends: its CPU time is not measured, and unknown from then on.
    """
    kept = []
    for observer, token in started:
        if type(observer) is CpuTimes:
            observer.suspends(stats)
        else:
            kept.append((observer, token))
    return kept
