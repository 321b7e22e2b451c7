"""When calls were made: the machine's state they met, within a run and across functions.

A machine shared with other work does not run at one speed for a whole run: another
process takes a core for a few hundred milliseconds, then leaves, and every call made
in that stretch is slower, whatever its function (by different amounts: a function
waiting on memory suffers more from a neighbour than one looping in registers).
Three consequences for ``diff`` (:mod:`callmetrics._outputs.verdicts` applies them):

1. **A run's slower stretches are left out.**  A run's retained calls are cut into
   :data:`WINDOWS` windows of equal numbers of calls (all functions together, in the
   order they started; equal numbers, not equal time, so that a run idle for a minute
   then busy for a second gets its windows where the calls are).  Each function
   called at least :data:`_MIN_CELL` times in a window, and so in at least
   :data:`_MIN_SPREAD` windows, shows how much slower than its own median it ran
   there; the window's *level* is the median of that over the functions (at least
   :data:`_MIN_FUNCTIONS`, so one function's own change does not move it).  Other
   work on a machine only ever adds time, so the run's *best* is its fastest level
   that at least :data:`_REACHED` windows reach (one window alone may be fast by the
   chance of its few calls), and a window
   more than 1.1x slower than that (:data:`_TOLERANCE`, several times the noise of a
   level of a few functions' medians, below the 1.2x-2x a busy neighbour costs) is a
   slower stretch: its calls are left out of the comparison, for every function.
   Leaving them out, rather than dividing them by the level, does not assume every
   function slows alike.  With levels in fewer than :data:`_MIN_LEVELS` windows
   nothing is left out.  This is timeit's reasoning (the fastest repetitions are the
   closest to the code alone) applied to stretches of a run instead of repetitions.

2. **A function called in one moment is not gated.**  The rank test's batch means
   (:func:`callmetrics._outputs.compare.rank_test`) count on a run's calls sampling
   the machine's states; calls of a function falling in fewer than
   :data:`MIN_WINDOWS` windows of a run (a test module's few milliseconds) met one
   state of the machine, whatever their number.

3. **Across runs, a function is judged against the functions called alongside it.**
   The common shift of all functions tells how much slower the head's machine was
   *when they ran*; a function called at other times (the tests of one module, a job
   run once at the end) met the machine at those times only.  Two functions are
   called *alongside* when the windows holding the other's calls hold at least half
   of the function's calls, in both runs (:func:`alongside`); a function with fewer
   than :data:`MIN_ALONGSIDE` of them cannot tell a change of its code from the
   machine's state at its times.
"""

from __future__ import annotations

import bisect
import math
import operator
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain, compress, repeat

__all__ = ["MIN_ALONGSIDE", "MIN_WINDOWS", "WINDOWS", "Stretches", "alongside", "cut", "kept",
           "moment_reason", "stretches"]

WINDOWS = 20
"""Windows a run is cut into (of equal numbers of calls)."""
_MIN_CELL = 3
"""Calls of a function in a window for its median there to say anything."""
_MIN_SPREAD = 3
"""Windows a function must be called in (each with _MIN_CELL calls) to tell levels."""
MIN_WINDOWS = 3
"""Windows a function's calls must fall in, in each run, for it to be gated."""
_MIN_FUNCTIONS = 4
"""Functions a window's level is the median of, at the fewest."""
_MIN_LEVELS = 8
"""Windows with a level, at the fewest, for a run's best to be told."""
_REACHED = 3
"""Windows that must reach a level for it to be the run's best (one may be noise)."""
_TOLERANCE = math.log(1.1)
"""A window this much slower than the run's best is a slower stretch."""
MIN_ALONGSIDE = 4
"""Functions called alongside a function, at the fewest, to judge it by their shift."""

Calls = Mapping[str, tuple[Sequence[float], Sequence[float]]]
_positive = partial(operator.lt, 0)
"""``_positive(v)`` is ``0 < v``, in C."""


def cut(calls: Calls, count: int = WINDOWS, *,
        starts: Sequence[float] | None = None) -> dict[str, list[int]]:
    """Each function's calls' window indices (0 to ``count - 1``), in the calls' order.

    Each function's starts must be in time order (as :class:`~callmetrics._outputs.
    verdicts.Side` holds them): its windows are then runs of equal indices, found by
    bisection at each window's edge rather than call by call, and written by C
    (``repeat`` each index as many times as the window has calls).  ``starts``, when
    given, are all the calls' starts sorted (else they are gathered and sorted here).
    """
    if starts is None:
        starts = sorted(chain.from_iterable(st for st, _ in calls.values()))
    if not starts:
        return {name: [] for name in calls}
    edges = [starts[len(starts) * b // count] for b in range(1, count)]
    found = {}
    for name, (st, _) in calls.items():
        bounds = [0, *(bisect.bisect_left(st, edge) for edge in edges), len(st)]
        found[name] = list(chain.from_iterable(map(repeat, range(count),
                                                   map(operator.sub, bounds[1:], bounds))))
    return found


def _cells(calls: Calls, windows: Mapping[str, Sequence[int]],
           ordered: Mapping[str, Sequence[float]]) -> dict[int, dict[str, float]]:
    """Per window, per spread function: log(median there / median in the run)."""
    cells: dict[int, dict[str, float]] = {}
    for name, (_, durations) in calls.items():
        indices = windows[name]
        groups: dict[int, list[float]] = {}
        low = 0
        while low < len(indices):  # each window's calls are one slice (see cut)
            high = bisect.bisect_right(indices, indices[low], low)
            values = list(filter(_positive, durations[low:high]))
            if len(values) >= _MIN_CELL:
                groups[indices[low]] = values
            low = high
        if len(groups) < _MIN_SPREAD:
            continue
        everything = ordered[name]  # sorted: the positive durations are its end
        center = math.log(statistics.median(everything[bisect.bisect_right(everything, 0):]))
        for window, values in groups.items():
            cells.setdefault(window, {})[name] = math.log(statistics.median(values)) - center
    return cells


@dataclass(frozen=True, slots=True)
class Stretches:
    """Which windows of a run were left out as slower stretches of the machine."""

    windows: int
    """Windows with a level (enough functions called in them)."""
    left_out: frozenset[int]
    slowest: float
    """The slowest window's level over the run's best (1: none left out)."""


def stretches(calls: Calls, windows: Mapping[str, Sequence[int]],
              ordered: Mapping[str, Sequence[float]] | None = None) -> Stretches:
    """Find the windows where the machine ran slower than at its best (point 1).

    ``ordered`` holds each function's durations sorted, when the caller has them.
    """
    if ordered is None:
        ordered = {name: sorted(durations) for name, (_, durations) in calls.items()}
    levels = {window: statistics.median(row.values()) for window, row
              in _cells(calls, windows, ordered).items() if len(row) >= _MIN_FUNCTIONS}
    if len(levels) < _MIN_LEVELS:
        return Stretches(len(levels), frozenset(), 1.0)
    ranked = sorted(levels.values())
    best = ranked[_REACHED - 1]
    left = frozenset(w for w, level in levels.items() if level - best > _TOLERANCE)
    return Stretches(len(levels), left, math.exp(ranked[-1] - best) if left else 1.0)


def kept(calls: Calls, windows: Mapping[str, Sequence[int]], left_out: frozenset[int],
         name: str) -> tuple[list[float], list[float]]:
    """A function's (starts, durations) without its calls in ``left_out`` windows."""
    starts, durations = calls[name]
    if not left_out:
        return list(starts), list(durations)
    keep = [w not in left_out for w in range(max(windows[name], default=0) + 1)]
    chosen = list(map(keep.__getitem__, windows[name]))
    return list(compress(starts, chosen)), list(compress(durations, chosen))


def _shares(windows: Mapping[str, Sequence[int]], names: Sequence[str],
            ) -> dict[str, tuple[Counter[int], int]]:
    """Per function, its calls per window, and their number."""
    found = {}
    for name in names:
        counts = Counter(windows[name])
        found[name] = (counts, len(windows[name]))
    return found


def alongside(base: Mapping[str, Sequence[int]], head: Mapping[str, Sequence[int]],
              names: Sequence[str]) -> dict[str, list[str]]:
    """For each of ``names``, the others of ``names`` called alongside it in both runs."""
    sides = (_shares(base, names), _shares(head, names))
    found: dict[str, list[str]] = {}
    for name in names:
        found[name] = [other for other in names if other != name and all(
            2 * sum(map(side[name][0].__getitem__, side[name][0].keys() & side[other][0].keys()))
            >= side[name][1] for side in sides)]
    return found


def moment_reason(name: str, cuts: tuple[Mapping[str, Sequence[int]], ...],
                   spans: tuple[Stretches, ...]) -> str | None:
    """Why a function is not gated when a run's calls of it met one moment (point 2)."""
    for side, windows, span in zip(("base", "head"), cuts, spans, strict=True):
        met = len(set(windows[name]) - span.left_out)
        if met < MIN_WINDOWS:
            return (f"not gated: its calls in {side} fall in {met} of the run's {WINDOWS} "
                    "windows: one moment of the machine, not a sample of it")
    return None
