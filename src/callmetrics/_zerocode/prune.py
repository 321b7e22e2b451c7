"""Stop tracking functions too short to track cheaply (``callmetrics run``, not ``--exact``).

A Python wrapper costs a fraction of a microsecond per call; on functions that take
about as long, tracking would dominate the program's time (and cost more than
cProfile, whose C hook costs less per call).  A background thread looks at the
counts folded so far now and then (every 10 ms at first, backing off to once a
second; no drain: a look costs one pass over the functions, the program's own drains
fold the calls), and once a function has ``after`` calls with a median under
``below`` seconds, stops
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

    def folded_counts(self, at_least: int = 1) -> dict[str, int]:
        """Calls per function folded so far, of those with ``at_least`` (no drain)."""

    def medians(self, names: Iterable[str], *, drain: bool = True) -> dict[str, float | None]:
        """Median call of each named function."""


# The pause between looks: from the first, doubling up to the longest.
_FIRST, _LONGEST = 0.01, 1.0


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
        delay = _FIRST
        while not self._stop.wait(delay):
            try:
                self._look(drain=False)
            except Exception as exc:  # noqa: BLE001  # the program goes on, fully tracked
                report_internal_error("dropping short functions", exc)
                return
            delay = min(delay * 2, _LONGEST)

    def check(self) -> list[str]:
        """Drain, then drop the functions that qualify now; return their names."""
        return self._look(drain=True)

    def _look(self, *, drain: bool) -> list[str]:
        """Drop the functions that qualify; return their names.

        ``drain=False`` (the watching thread's way) judges the calls folded so far:
        the program's own drains fold the others, at most a chunk later.
        """
        ours = self.inst.names()
        due: dict[str, int] = {}
        counts = (self.analytics.call_counts if drain
                  else self.analytics.folded_counts(self.after))
        for name, calls in counts.items():
            if name in ours and calls >= max(self.after, 2 * self._checked.get(name, 0)):
                self._checked[name] = calls  # look again once the count has doubled
                due[name] = calls
        found: dict[str, tuple[int, float]] = {}
        for name, median in self.analytics.medians(due, drain=drain).items():
            if isinstance(median, float) and median < self.below:
                found[name] = (due[name], median)
        if found:
            self.inst.drop(set(found))
            self.dropped.update(found)
        return sorted(found)
