"""Stop tracking functions too short to track cheaply (``callmetrics run``, not ``--exact``).

A Python wrapper costs a fraction of a microsecond per call; on functions that take
about as long, tracking would dominate the program's time (and cost more than
cProfile, whose C hook costs less per call).  A background thread looks at the
recorded counts now and then (every 10 ms at first, backing off to once a second) and
whenever ``every`` more calls have been recorded (a hot function is dropped within a
few thousand calls of qualifying, not up to a second later), and once a function has
``after`` calls with a median under ``below`` seconds, stops
tracking it (3.12+: its monitoring events go off; 3.11: its wrapper turns into a
pass-through in place, so nothing is rebound and every reference to it keeps
working): its counts stop there, and the run's note names it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from callmetrics._engine.logs import report_internal_error
from callmetrics._zerocode.instrument import Instrumentation
from callmetrics._zerocode.monitored import MonitoredInstrumentation

__all__ = ["Pruner"]


class Reader(Protocol):
    """What the pruner reads of an ``Analytics``."""

    @property
    def call_counts(self) -> dict[str, int]:
        """Calls per function."""

    def medians(self, names: Iterable[str], *, drain: bool = True) -> dict[str, float | None]:
        """Median call of each named function (``drain=False``: of the calls folded so far)."""

    def folded_counts(self) -> dict[str, int]:
        """Calls per function folded so far."""

    def watch_folds(self, hook: Callable[[int], None] | None) -> None:
        """Have ``hook(n)`` told of every ``n`` calls recorded (in the draining thread)."""


class Pruner:
    """Drops instrumented functions whose median call is shorter than ``below`` seconds."""

    def __init__(self, analytics: Reader, inst: Instrumentation | MonitoredInstrumentation,
                 *, below: float = 5e-6, after: int = 1_000, every: int = 8_192,
                 first_look: float = 0.01) -> None:
        """Watch ``analytics`` and drop from ``inst``; call :meth:`start` to begin.

        The thread first looks after ``first_look`` seconds, then after twice as long
        each time (at most a second), and whenever ``every`` calls were recorded.
        """
        self.analytics = analytics
        self.inst = inst
        self.below = below
        self.after = after
        self.every = every
        self.first_look = first_look
        self.dropped: dict[str, tuple[int, float]] = {}  # name -> (calls then, median)
        self._checked: dict[str, int] = {}  # name -> the count at which to look again
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by _folded, and by stop()
        self._recorded = 0  # calls recorded since the last look (counted under the lock)
        self._thread = threading.Thread(target=self._loop, name="callmetrics-prune",
                                        daemon=True)

    def start(self) -> None:
        """Start watching in a daemon thread."""
        self.analytics.watch_folds(self._folded)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (waits at most a second for the thread)."""
        self.analytics.watch_folds(None)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def _folded(self, calls: int) -> None:
        """Count calls recorded; wake the thread every ``every`` of them (drain's thread)."""
        self._recorded += calls
        if self._recorded >= self.every:
            self._recorded = 0
            self._wake.set()

    def _loop(self) -> None:
        delay = self.first_look
        while True:
            woken = self._wake.wait(delay)
            if self._stop.is_set():
                return
            if woken:
                self._wake.clear()
            else:
                delay = max(min(delay * 2, 1.0), delay)
            try:
                self.check(drain=not woken)  # woken by a fold: what it folded is there
            except Exception as exc:  # noqa: BLE001  # the program goes on, fully tracked
                self.analytics.watch_folds(None)
                report_internal_error("dropping short functions", exc)
                return

    def check(self, *, drain: bool = True) -> list[str]:
        """Drop the functions that qualify now; return their names.

        ``drain=False`` looks at the calls folded so far (not the buffer's newest).
        """
        due: dict[str, int] = {}
        after, looked = self.after, self._checked
        counts = self.analytics.call_counts if drain else self.analytics.folded_counts()
        for name, calls in counts.items():
            if calls >= looked.get(name, after):
                looked[name] = 2 * calls  # look again once the count has doubled
                due[name] = calls
        found: dict[str, tuple[int, float]] = {}
        for name, median in self.analytics.medians(due, drain=drain).items():  # one drain
            if isinstance(median, float) and median < self.below:
                found[name] = (due[name], median)
        if found:  # the instrumentation's own functions only (not those decorated)
            ours = self.inst.names()
            found = {name: seen for name, seen in found.items() if name in ours}
            self.inst.drop(set(found))
            self.dropped.update(found)
        return sorted(found)
