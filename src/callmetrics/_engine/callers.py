"""Who called whom: the per-thread stack of tracked calls, and the edges calls are keyed by.

Where the time goes is read off the buffer, as everything else: a call made while
another tracked call runs on the same thread is buffered under an ``Edge`` (its
function, the nearest tracked caller, and whether an outer call of the same function
was already running) instead of its ``FunctionStats``.  A drain counts each edge's
calls and seconds (``fold_edges``) and puts the function back in the chunk, so the
ring and every count see the function as before.  From the edges:

* self time of ``f`` = its calls' durations less the durations of the calls whose
  nearest tracked caller is ``f`` (``children_times``);
* inclusive time of ``f`` = its durations less those of its nested calls (made while
  an outer call of ``f`` ran on the same thread): recursion counted once;
* callers of ``f`` = its edges, by caller.

Nothing is added per call beyond the buffered key: no float is widened, so drains,
reads and merges stay exact and consistent (the buffer is the one record).

The stack: with the accelerator, a fixed array of the thread's running tracked calls
in C thread-local storage (``_speedups.frames_push``/``frames_pop``); else a list per
thread (``STACK.calls``).  Each call pushes its ``FunctionStats`` and, when it ends,
truncates the stack back to where it pushed it (so a block left open below, or a
generator's interleaving, can never leave the stack corrupt).  Coroutines and
generators are pushed for each of their steps (``steps``): calls made during a step
have them as their caller, and an awaited tracked coroutine nests under its awaiter.

Edges are bounded per instance (``EdgeBudget``, ``MAX_CALLER_EDGES``): past the cap a
function's new callers share its "other callers" edge, and the caller's share of
those seconds is credited to it directly (``FunctionStats.folded_children``), so
self times stay exact.
"""

from __future__ import annotations

import threading
from collections.abc import MutableSequence, Sequence
from typing import Any, Final

from callmetrics._engine.accel import speedups as _speedups

__all__ = [
    "MAX_CALLER_EDGES",
    "STACK",
    "Edge",
    "EdgeBudget",
    "Idle",
    "fold_edges",
    "frames_caller",
    "frames_pop",
    "frames_push",
    "key_for",
    "unwind",
]

# Caller edges one instance keeps apart (each a small object: about 100 bytes).
MAX_CALLER_EDGES: Final = 10_000


class PythonEdge:
    """Calls of ``stats`` whose nearest tracked caller was ``caller`` (None: folded).

    ``outer`` is False for nested calls (an outer call of the same function was
    running on the thread).  ``calls`` and ``time`` are counted by drains.
    """

    __slots__ = ("caller", "calls", "folded", "outer", "stats", "time")

    def __init__(self, stats: Any, caller: Any, outer: bool, folded: bool) -> None:
        """An edge with no call counted yet."""
        self.stats = stats
        self.caller = caller
        self.outer = outer
        self.folded = folded
        self.calls = 0
        self.time = 0.0


# The edge type keys are made of: the C one with the accelerator (drains count it in C).
Edge: Final[Any] = PythonEdge if _speedups is None else _speedups.Edge


class PythonIdle:
    """A function's suspended seconds (coroutine and generator calls; see ``steps``).

    ``inactive``: the seconds its calls were suspended; ``gap``: that less the
    suspended seconds of the tracked calls it made directly.  Credited when a call
    ends, in place (the hot path holds the object).
    """

    __slots__ = ("gap", "inactive")

    def __init__(self) -> None:
        """Both sums at 0."""
        self.inactive = 0.0
        self.gap = 0.0


# The type of a function's Idle: the C one with the accelerator (its proxy credits it).
Idle: Final[Any] = PythonIdle if _speedups is None else _speedups.Idle


class EdgeBudget:
    """How many caller edges an instance may still make (shared by its functions)."""

    __slots__ = ("left",)

    def __init__(self, cap: int = MAX_CALLER_EDGES) -> None:
        """Allow ``cap`` edges."""
        self.left = cap


# The stack's bottom: None entries (a call's caller is None: untracked code).  Four of
# them in a list with room for eight: pushing and popping the first call then never
# reallocates the list (it would, between empty and one item).
BOTTOM: Final = 4


class _Stack(threading.local):
    """The pure-Python path's stack of running tracked calls, one list per thread."""

    def __init__(self) -> None:
        calls: list[Any] = [None] * (2 * BOTTOM)
        del calls[BOTTOM:]
        self.calls = calls


STACK: Final = _Stack()


def unwind(stack: list[Any], top: Any, stats: Any) -> None:
    """A call of ``stats`` ended and popped ``top``, which was not its entry: repair.

    Something was left above its entry (a block never exited, interleaved
    generators): drop it with the entry.  Or its entry had been cut already (popped
    ``top`` is the bottom): put that back.
    """
    if top is None:
        stack.append(None)
        return
    while stack[-1] is not None and stack.pop() is not stats:
        pass


def _python_push(stats: Any) -> int:
    calls = STACK.calls
    at = len(calls)
    calls.append(stats)
    return at


def _python_pop(stats: Any, at: int, duration: float) -> Any:
    """Truncate the stack to ``at``; return the call's key (``stats`` or its edge)."""
    calls = STACK.calls
    del calls[max(at, BOTTOM):]
    caller = calls[-1]
    if caller is None:
        return stats
    return key_for(stats, caller, stats not in calls, duration)


def _python_caller(stats: Any, at: int) -> tuple[Any, bool]:
    if at < 0:
        return None, True
    calls = STACK.calls
    del calls[max(at, BOTTOM):]
    return calls[-1], stats not in calls


def _c_pop(stats: Any, at: int, duration: float) -> Any:
    caller = _speedups.frames_pop(stats, at)
    if caller is None:
        return stats
    if type(caller) is tuple:  # (caller,): a nested call
        return key_for(stats, caller[0], False, duration)
    return key_for(stats, caller, True, duration)


def _c_caller(stats: Any, at: int) -> tuple[Any, bool]:
    caller = _speedups.frames_pop(stats, at)
    if type(caller) is tuple:  # (caller,): a nested call
        return caller[0], False
    return caller, True


# push(stats) -> at; pop(stats, at, duration) -> the key to buffer the call under.  For the
# Python code paths (observed calls, generators' blocks, the pure-Python measure());
# the pure-Python sync wrapper inlines the list operations.
frames_push: Final = _python_push if _speedups is None else _speedups.frames_push
frames_pop: Final = _python_pop if _speedups is None else _c_pop
# caller(stats, at) -> (nearest tracked caller or None, outer?): truncate the stack to
# ``at`` (a call pushed there ends) and say who called it, making no edge.
frames_caller: Final = _python_caller if _speedups is None else _c_caller


def key_for(stats: Any, caller: Any, outer: bool, duration: float) -> Any:
    """The key of a call of ``stats`` made by ``caller`` that took ``duration`` s.

    Its edge (made if new, within the instance's budget).  Past the cap, the
    function's folded edge, and ``duration`` is credited to the caller at once (the
    folded edge no longer says who called).
    """
    table = stats.edges if outer else stats.nested
    edge = table.get(caller)
    if edge is not None:
        return edge
    budget = stats.budget
    if budget.left <= 0:
        caller.folded_children += duration
        return stats.folded_edge(outer)
    budget.left -= 1
    return table.setdefault(caller, Edge(stats, caller, outer, False))


def fold_edges(keys: list[Any], durations: Sequence[float] | MutableSequence[float],
               plain: type) -> None:
    """Count each edge's calls and seconds in a drained chunk; put its function in its place.

    A key of type ``plain`` (``FunctionStats``) is a call from untracked code; any other
    key that is not an edge (a failure's or a note's description) counts in its
    ``edge`` (None: no tracked caller).
    """
    if _speedups is not None:
        _speedups.fold_edges(keys, durations, plain)
        return
    for at, key in enumerate(keys):
        kind = type(key)
        if kind is plain:
            continue
        if kind is PythonEdge:
            key.calls += 1
            key.time += durations[at]
            keys[at] = key.stats
            continue
        edge = key.edge
        if edge is not None:
            edge.calls += 1
            edge.time += durations[at]
