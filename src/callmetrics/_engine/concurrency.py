"""Calls in progress per function: ``InFlight``, a call observer.

An ``Analytics(track_concurrency=True)`` registers one at construction; without it
nothing here runs, and the wrappers pay nothing (observers are consulted only while
one is registered).  With it, every tracked call (sync, async, generators, measured
blocks) takes the observed path: ``on_start`` appends to the function's list of calls
in progress and ``on_end`` pops from it.  ``list.append`` and ``list.pop`` are single
C calls, atomic under the GIL and under free-threading's per-list lock alike, so the
counts stay exact under threads without a lock of our own; a list's length is read
without disturbing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats

__all__ = ["InFlight"]


class InFlight:
    """Counts the calls of each function that have started and not yet ended."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        """Start with no call in progress."""
        self._calls: dict[FunctionStats, list[None]] = {}

    def on_start(self, stats: FunctionStats) -> list[None]:
        """Count a call of ``stats`` as in progress; its list is the token ``on_end`` gets."""
        calls = self._calls.get(stats)
        if calls is None:
            calls = self._calls.setdefault(stats, [])  # atomic: one list per function
        calls.append(None)
        return calls

    def on_end(self, token: object, stats: FunctionStats, duration: float,
               error: BaseException | None) -> None:
        """The call has ended (returned or raised): no longer in progress."""
        del stats, duration, error
        cast("list[None]", token).pop()  # the list on_start returned

    def counts(self) -> dict[tuple[str, str, str], int]:
        """Calls in progress by (recorded name, module, event type), as they stand."""
        found: dict[tuple[str, str, str], int] = {}
        for stats, calls in list(self._calls.items()):
            key = (stats.name, stats.module, stats.event_type)
            found[key] = found.get(key, 0) + len(calls)
        return found
