"""Where the time goes: self time per function against the run's wall time, and the call tree.

Self time (a call's duration less the tracked calls it made directly; for coroutines
and generators the *active* self time, the steps it actually ran) does not count a
nested or awaited call twice, so the bars of one thread add up to at most the wall
time; what they leave is drawn as untracked code or waiting.  When self time is
unknown (a store written before it was recorded) the chart falls back to total
time per function and says so.  The call tree starts from the wall time, as a
profiler's does, and goes from callers to callees along the recorded caller edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from callmetrics._engine.state import OTHER_CALLERS, FunctionSnapshot
from callmetrics._format import duration, percent, printable
from callmetrics._outputs.names import natural_key

__all__ = ["TimeChart", "TreeNode", "call_tree", "own_time", "time_chart"]

_MAX_BARS = 20
# The call tree: at most this deep and this many nodes (the rest summed in "…").
_MAX_DEPTH = 12
_MAX_NODES = 400
# A node below this share of the wall time is folded into its parent's "other" line.
_MIN_SHARE = 0.001


def own_time(snap: FunctionSnapshot) -> float | None:
    """A function's own time: active self time when known (async), else self time; None: unknown."""
    if snap.active_self_time is not None:
        return snap.active_self_time
    return snap.self_time


@dataclass(frozen=True, slots=True)
class Bar:
    """One row of the chart: width in percent of the scale (the wall time when known)."""

    label: str
    name: str
    width: float
    value: str
    share: str
    tip: str
    kind: str = ""
    """``""`` a function, ``"other"`` the smaller ones summed, ``"rest"`` untracked/waiting."""


@dataclass(slots=True)
class TimeChart:
    """The bars, and what they measure."""

    bars: list[Bar]
    by_self: bool
    note: str
    overlap: bool


def _share(part: float, whole: float) -> str:
    if whole > 0 and 0 < part / whole < 0.0005:
        return "<0.1%"
    return percent(part, whole)


def time_chart(snaps: Sequence[FunctionSnapshot], wall_time: float | None) -> TimeChart:
    """Self time per function (total time when unknown), largest first, with the remainder."""
    by_self = bool(snaps) and all(own_time(s) is not None for s in snaps)
    value = (lambda s: own_time(s) or 0.0) if by_self else (lambda s: s.total)
    ranked = sorted(snaps, key=lambda s: (-value(s), natural_key(s.name)))
    entries = [(printable(s.name), value(s), s.calls, "") for s in ranked[:_MAX_BARS]]
    rest = ranked[_MAX_BARS:]
    if rest:
        entries.append((f"{len(rest)} other functions", math.fsum(value(s) for s in rest),
                        sum(s.calls for s in rest), "other"))
    summed = math.fsum(value(s) for s in snaps)
    total = math.fsum(s.total for s in snaps)
    wall = wall_time if wall_time is not None and wall_time > 0 else None
    overlap = wall is not None and total > wall * 1.001
    bars: list[Bar] = []
    # Self-time bars against the wall time (they add up to it at most); otherwise (they may
    # overlap) against the longest bar.
    top = max((e[1] for e in entries), default=0.0)
    scale = (max(wall, summed) if by_self and wall is not None else top) or 1.0
    whole = wall if wall is not None else summed
    what = "self time" if by_self else "total time"
    for label, seconds, calls, kind in entries:
        share = _share(seconds, whole)
        of = "of the wall time" if wall is not None else "of the tracked time"
        bars.append(Bar(label=label, name="" if kind else label,
                        width=max(seconds / scale * 100, 0.3), value=duration(seconds),
                        share=share, kind=kind,
                        tip=f"{label}: {duration(seconds)} {what} ({share} {of}), "
                            f"{calls:,} call{'' if calls == 1 else 's'}"))
    if by_self and wall is not None and summed < wall:
        rest_time = wall - summed
        share = _share(rest_time, wall)
        bars.append(Bar(label="untracked code or waiting", name="",
                        width=max(rest_time / scale * 100, 0.3), value=duration(rest_time),
                        share=share, kind="rest",
                        tip=f"{duration(rest_time)} of the wall time ({share}) outside the "
                            "tracked functions' own time: untracked code, or waiting"))
    if by_self:
        note = ("Self time per function (for coroutines and generators, the time their steps "
                "ran), so that a nested or awaited call is counted once")
        if wall is not None:
            note += f"; bars are shares of the wall time, {duration(wall)}"
            if summed > wall * 1.001:
                note += (f". The self times add up to {duration(summed)}, more than the wall "
                         "time: threads ran at the same time")
    else:
        note = ("Total time per function: self time is unknown (not recorded, as in stores "
                "written before callmetrics measured it), so a nested call is counted in each "
                "caller too")
        if wall is not None:
            note += f"; the wall time is {duration(wall)}"
    if overlap:
        note += (f". Durations overlap: summed over calls they make {duration(total)}, "
                 f"{total / wall:.1f}\u00d7 the wall time" if wall else "")
    return TimeChart(bars, by_self, note + ".", overlap)


# ------------------------------------------------------------------ call tree
@dataclass(slots=True)
class TreeNode:
    """One node: a function reached along a path of callers, with its time on that path."""

    label: str
    time: float
    calls: int
    value: str = ""
    share: str = ""
    width: float = 0.0
    estimated: bool = False
    """Shared out in proportion: its caller is reached by several paths, so the time of
    this edge is split between them by the caller's time on each, not measured per path."""
    children: list[TreeNode] = field(default_factory=list)


def call_tree(snaps: Sequence[FunctionSnapshot], wall_time: float | None) -> TreeNode | None:
    """The tree of tracked calls from the wall time down, or None without caller data.

    The root's children are the functions called from untracked code (their calls
    not made by a tracked caller); a node's children are the functions it called.
    Times are running time: for coroutines and generators their active share of the
    durations (see ``_running``), for plain functions their durations.
    A function reached by several paths has its time shared out in proportion to
    its time along each caller edge; a recursion stops at the repeated function.
    """
    if not snaps or not any(s.callers for s in snaps):
        return None
    by_name = {s.name: s for s in snaps}
    callees: dict[str, list[tuple[FunctionSnapshot, float, int]]] = {}
    roots: list[tuple[FunctionSnapshot, float, int]] = []
    for snap in snaps:
        edge_time = math.fsum(e.time for e in snap.callers)
        edge_calls = sum(e.calls for e in snap.callers)
        for edge in snap.callers:
            if edge.name in by_name and edge.name != OTHER_CALLERS:
                callees.setdefault(edge.name, []).append((snap, edge.time, edge.calls))
        outside = (snap.total - edge_time) * _running(snap)
        if snap.calls - edge_calls > 0 and outside > 0:
            roots.append((snap, outside, snap.calls - edge_calls))
    wall = wall_time if wall_time and wall_time > 0 else \
        math.fsum(t for _, t, _ in roots) or 1.0
    budget = [_MAX_NODES]

    def grow(snap: FunctionSnapshot, time: float, calls: int, path: frozenset[str],
             depth: int, estimated: bool) -> TreeNode:
        budget[0] -= 1
        node = TreeNode(printable(snap.name), time, calls, estimated=estimated)
        if depth >= _MAX_DEPTH:
            return node
        # The share of this function's (active) time spent on this path.
        whole = snap.total * _running(snap)
        fraction = min(time / whole, 1.0) if whole > 0 else 0.0
        kids = sorted(callees.get(snap.name, ()), key=lambda k: (-k[1], natural_key(k[0].name)))
        for child, edge_time, edge_calls in kids:
            part = edge_time * _running(child) * fraction
            if child.name in path or part < wall * _MIN_SHARE or budget[0] <= 0:
                continue
            node.children.append(grow(child, part, round(edge_calls * fraction),
                                      path | {child.name}, depth + 1,
                                      estimated or fraction < 0.999))
        return node

    root = TreeNode("wall time", wall, 0)
    for snap, time, calls in sorted(roots, key=lambda r: (-r[1], natural_key(r[0].name))):
        if budget[0] <= 0 or time < wall * _MIN_SHARE:
            continue
        root.children.append(grow(snap, time, calls, frozenset({snap.name}), 1, False))
    _label(root, wall)
    return root


def _running(snap: FunctionSnapshot) -> float:
    """The share of a function's durations it was running: active over total time.

    1 for plain functions; for a coroutine that mostly awaits I/O, its steps' share. The
    tree shows running time, so that concurrent calls waiting together do not add up
    past the wall time; an awaited coroutine's steps run inside its caller's, as in the
    tree.
    """
    if snap.active_time is None or snap.total <= 0:
        return 1.0
    return min(snap.active_time / snap.total, 1.0)


def _label(node: TreeNode, wall: float) -> None:
    node.value = duration(node.time)
    node.share = _share(node.time, wall)
    node.width = max(min(node.time / wall, 1.0) * 100, 0.3)
    for child in node.children:
        _label(child, wall)
