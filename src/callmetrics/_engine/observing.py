"""``Observing``: the part of ``Analytics`` that keeps its call observers.

Observers (OpenTelemetry spans, calls in progress) see each tracked call start and
end; the wrappers consult the list only while it holds one (``_engine/ends.py``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from callmetrics._engine.concurrency import InFlight
from callmetrics._engine.cputime import CpuTimes
from callmetrics._engine.ends import CallObserver

if TYPE_CHECKING:
    from callmetrics._engine.recorder import Recorder

__all__ = ["Observing"]


class Observing:
    """Registered call observers, and the calls in progress when they are counted."""

    _observers: list[CallObserver]
    _in_flight: InFlight | None
    _lock: threading.Lock | threading.RLock
    _recorder: Recorder

    def _start_observing(self, track_concurrency: bool, cpu_time: bool = False) -> None:
        """No observer yet; with ``track_concurrency``, the one counting calls in progress.

        With ``cpu_time``, the one measuring each sync call's thread CPU time (last, so
        that it brackets the call the most closely), folded by the recorder.
        """
        self._observers = []
        # Decided here, for every wrapper: counting calls in progress is an observer.
        self._in_flight = InFlight() if track_concurrency else None
        if self._in_flight is not None:
            self._observers.append(self._in_flight)
        if cpu_time:
            self._recorder.cpu = CpuTimes(self._recorder.drain_soon)
            self._observers.append(self._recorder.cpu)

    @property
    def observers(self) -> list[CallObserver]:
        """Registered call observers, mutated in place (part of the wrappers' runtime)."""
        return self._observers

    def calls_in_progress(self) -> dict[tuple[str, str, str], int] | None:
        """Calls started and not yet ended, by (recorded name, module, event type).

        None unless the instance tracks concurrency (``track_concurrency=True``).
        """
        return None if self._in_flight is None else self._in_flight.counts()

    def add_observer(self, observer: CallObserver) -> None:
        """Have ``observer`` see every tracked call from now on."""
        with self._lock:
            self._observers.append(observer)

    def remove_observer(self, observer: CallObserver) -> None:
        """Stop sending calls to ``observer`` (no error if it was not registered)."""
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)
