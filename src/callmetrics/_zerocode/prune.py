"""Stop tracking functions too short to track cheaply (``callmetrics run``, not ``--exact``).

A Python wrapper costs a fraction of a microsecond per call; on functions that take
about as long, tracking would dominate the program's time (and cost more than
cProfile, whose C hook costs less per call).  A background thread looks at the
recorded counts now and then (every 10 ms at first, backing off to once a second),
and once a function has ``after`` calls with a median under ``below`` seconds, stops
tracking it (3.12+: its monitoring events go off; 3.11: its wrapper turns into a
pass-through in place, so nothing is rebound and every reference to it keeps
working): its counts stop there, and the run's note names it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
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

    def medians(self, names: Iterable[str]) -> dict[str, float | None]:
        """Median call of each named function."""


class Pruner:
    """Drops instrumented functions whose median call is shorter than ``below`` seconds."""

    def __init__(self, analytics: Reader, inst: Instrumentation | MonitoredInstrumentation,
                 *, below: float = 5e-6,
                 after: int = 1_000) -> None:
        """Watch ``analytics`` and drop from ``inst``; call :meth:`start` to begin."""
        self.analytics = analytics
        self.inst = inst
        self.below = below
        self.after = after
        self.dropped: dict[str, tuple[int, float]] = {}  # name -> (calls then, median)
        self._checked: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="callmetrics-prune",
                                        daemon=True)

    def start(self) -> None:
        """Start watching in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (waits at most a second for the thread)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        delay = 0.01
        while not self._stop.wait(delay):
            delay = min(delay * 2, 1.0)
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001  # the program goes on, fully tracked
                report_internal_error("dropping short functions", exc)
                return

    def check(self) -> list[str]:
        """Drop the functions that qualify now; return their names."""
        ours = self.inst.names()
        due: dict[str, int] = {}
        for name, calls in self.analytics.call_counts.items():
            if name in ours and calls >= max(self.after, 2 * self._checked.get(name, 0)):
                self._checked[name] = calls  # look again once the count has doubled
                due[name] = calls
        found: dict[str, tuple[int, float]] = {}
        for name, median in self.analytics.medians(due).items():  # one drain for them all
            if isinstance(median, float) and median < self.below:
                found[name] = (due[name], median)
        if found:
            self.inst.drop(set(found))
            self.dropped.update(found)
        return sorted(found)
