"""Where the time goes, per function: self, inclusive and active time, and callers.

``Attributed`` is a part of ``aggregate.FunctionStats`` (a mixin): its caller edges
(``_callers``: counted by drains), what merges and restores added, and the figures
read off them.  ``children_times`` gives each function the seconds of the calls it
made, from every function's edges at once (a read's cost: one pass over the edges).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from callmetrics._engine.callers import Edge, EdgeBudget
from callmetrics._engine.state import OTHER_CALLERS

__all__ = ["Attributed", "children_times"]


class Attributed:
    """The attribution half of ``FunctionStats`` (its slots are declared there)."""

    __slots__ = ("active_known", "budget", "callers_extra", "children_extra", "edges",
                 "folded", "folded_children", "idle", "inactive_extra", "nested",
                 "nested_extra", "self_gap_extra", "self_known", "stepped")

    kind: str
    hot_calls: int
    total: float
    budget: EdgeBudget
    edges: dict[Any, Any]
    nested: dict[Any, Any]
    folded: dict[bool, Any] | None
    folded_children: float
    children_extra: float
    nested_extra: float
    callers_extra: dict[str, list[Any]] | None
    inactive_extra: float
    self_gap_extra: float
    self_known: bool
    active_known: bool
    idle: Any
    stepped: bool

    def _clear_attribution(self) -> None:
        """Forget what merges added, and what the hot path credited directly."""
        # Seconds of calls this function made whose edges were folded (past the cap).
        self.folded_children = 0.0
        # Merged in from other recorders or stores: the seconds of calls this function
        # made, of its nested calls, its callers by name [calls, seconds]; total less
        # active time, self less active self time.
        self.children_extra = 0.0
        self.nested_extra = 0.0
        self.callers_extra: dict[str, list[Any]] | None = None
        self.inactive_extra = 0.0
        self.self_gap_extra = 0.0
        # False once aggregates that did not know them were merged in (old stores).
        self.self_known = True
        self.active_known = True
        # Credited by the step proxy as calls end (see steps): zeroed in place.
        self.idle.inactive = 0.0
        self.idle.gap = 0.0

    def folded_edge(self, outer: bool) -> Any:
        """The edge calls past the instance's cap on edges are counted in."""
        folded = self.folded
        if folded is None:
            folded = self.folded = {}
        edge = folded.get(outer)
        if edge is None:
            edge = folded.setdefault(outer, Edge(self, None, outer, True))
        return edge

    def _nested_folded(self) -> float:
        """Seconds of nested calls whose callers were past the cap."""
        edge = self.folded.get(False) if self.folded else None
        return 0.0 if edge is None else float(edge.time)

    def all_edges(self) -> list[Any]:
        """Every edge of this function's calls (outer, nested, folded)."""
        return [*self.edges.values(), *self.nested.values(),
                *(self.folded.values() if self.folded else ())]

    def merge_attribution(self, other: Attributed, children: float) -> None:
        """Add ``other``'s self, inclusive and active time and callers (by name)."""
        self.children_extra += children + other.folded_children + other.children_extra
        self.nested_extra += other.nested_extra + sum(e.time for e in other.nested.values())
        self.nested_extra += other._nested_folded()
        self.inactive_extra += other.inactive_extra + other.idle.inactive
        self.self_gap_extra += other.self_gap_extra + other.idle.gap
        self.self_known = self.self_known and other.self_known and not other.async_kind()
        self.active_known = self.active_known and other.active_known and not other.async_kind()
        for name, calls, took in other.callers():
            if self.callers_extra is None:
                self.callers_extra = {}
            entry = self.callers_extra.setdefault(name, [0, 0.0])
            entry[0] += calls
            entry[1] += took

    def async_kind(self) -> bool:
        """Whether calls are coroutines or generators whose steps were not timed.

        Those recorded through the step proxy (``stepped``: coroutines, generators and
        async generators wrapped by ``track``) or, on 3.12+, zero-code tracking's
        ``sys.monitoring`` steps are.
        """
        return self.kind in ("async", "gen", "agen") and self.hot_calls > 0 and not self.stepped

    def callers(self) -> list[tuple[str, int, float]]:
        """Who called this function: (caller's name, calls, seconds), merged ones included."""
        found: dict[str, list[Any]] = {}
        for edge in self.all_edges():
            if edge.calls:
                name = OTHER_CALLERS if edge.caller is None else edge.caller.name
                entry = found.setdefault(name, [0, 0.0])
                entry[0] += edge.calls
                entry[1] += edge.time
        for name, (calls, took) in (self.callers_extra or {}).items():
            entry = found.setdefault(name, [0, 0.0])
            entry[0] += calls
            entry[1] += took
        return [(name, calls, took) for name, (calls, took) in found.items()]

    def times(self, children: float) -> tuple[float | None, float | None, float | None,
                                              float | None]:
        """(self, inclusive, active, active self) seconds; None: unknown.

        ``children`` is the seconds of the calls this function made (from
        :func:`children_times`).  Durations read off two clocks can differ from a sum
        by rounding: a figure never goes below 0.
        """
        if not self.self_known or self.async_kind():
            return None, None, None, None
        self_time = max(0.0, self.total - children - self.folded_children
                        - self.children_extra)
        nested = (self.nested_extra + sum(e.time for e in self.nested.values())
                  + self._nested_folded())
        inclusive = max(0.0, self.total - nested)
        if not self.active_known:
            return self_time, inclusive, None, None
        # The step proxy credits a call's suspended seconds when it ends, and a drain
        # adds its duration later: a read between the two sees both (its drain comes
        # first), but a call ending on another thread meanwhile may be credited only;
        # hence the floor at 0.  A generator ended (or dropped) under another call than
        # the one that ran it counts as that call's child: the ceiling keeps the
        # active self time within the active time, as self time is within the total.
        idle = self.idle
        active = max(0.0, self.total - self.inactive_extra - idle.inactive)
        return (self_time, inclusive, active,
                min(active, max(0.0, self_time - self.self_gap_extra - idle.gap)))


def children_times(functions: Iterable[Attributed]) -> dict[Any, float]:
    """Seconds of the calls each function made (as the nearest tracked caller), by function."""
    out: dict[Any, float] = {}
    for stats in functions:
        for edge in stats.all_edges():
            caller = edge.caller
            if caller is not None and edge.time:
                out[caller] = out.get(caller, 0.0) + edge.time
    return out
