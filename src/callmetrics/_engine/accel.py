"""Which hot path runs: the optional C accelerator, or the pure-Python wrappers.

``callmetrics._engine._speedups`` (built from ``src/speedups/`` when a compiler is present)
provides the sync wrapper and the ``measure()`` block in C.  It is used unless

- it was not built (no compiler: ``pip install`` says so in one line),
- ``CALLMETRICS_PURE_PYTHON=1`` is set in the environment when callmetrics is imported,
- the interpreter is a free-threaded build (the C code relies on the GIL).

``IMPLEMENTATION`` says which (``"c"`` or ``"python"``), ``REASON`` why Python.

The C types follow the engine's seam (``docs/engine.md``): with the accelerator,
an instance's call buffer is a ``CallBuffer`` (C arrays of keys, starts and
durations) instead of a list, speaking the same flat protocol (``len``,
``extend``, ``clear``; ``take`` for drains).  A ``Sink`` stores each call there
and calls the engine's Python ``after``/``failed`` (``_ends.Ends``) exactly where
the Python wrapper does.  This module only loads them, and imports nothing of the
package (it is the bottom of the engine); ``sinks`` builds the C wrappers from the
engine's parts.
"""

from __future__ import annotations

import importlib
import os
import sysconfig
from collections.abc import Callable, MutableSequence, Sequence
from typing import Any, Final, Literal, cast

__all__ = [
    "IMPLEMENTATION",
    "REASON",
    "average_ranks",
    "count_values",
    "fold_group",
    "fold_setup",
    "group_calls",
    "new_buffer",
    "speedups",
    "summary",
    "take",
]


def _load() -> tuple[Any, str]:
    if os.environ.get("CALLMETRICS_PURE_PYTHON") == "1":
        return None, "CALLMETRICS_PURE_PYTHON=1 is set"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None, "free-threaded CPython: the C accelerator relies on the GIL"
    try:  # optional, built by setup.py; imported by name (a compiled module has no stub)
        return importlib.import_module("callmetrics._engine._speedups"), ""
    except ImportError:
        return None, "the C accelerator was not built"


_speedups, REASON = _load()
# speedups: the loaded C module, or None on the pure-Python path.
speedups: Final[Any] = _speedups
IMPLEMENTATION: Final[str] = "python" if _speedups is None else "c"
# count_values(values, dense, first): the sketch's bulk counting in C, dense[key - first]
# += 1 for the bucket key of each value of a list of floats or an array('d') (None:
# count in Python).
count_values: Final[Callable[[Any, Any, int], None] | None] = getattr(
    _speedups, "count_values", None)
# average_ranks(values): each value's average rank and the tie term, for the rank test
# of `callmetrics diff` (not the hot path); None when the C code leaves it to Python.
average_ranks: Final[Callable[[list[float]], tuple[list[float], float] | None] | None] = (
    getattr(_speedups, "average_ranks", None))
# fold_group(stats, durations, successes, short_max): FunctionStats.add's common case
# (every call short, the sketch covering them) for one function of a drained chunk, in
# C: None when not that case (nothing changed), False when folded with no new extreme,
# else (low, high) for the caller to set the extremes.  None: fold in Python.
fold_group: Final[Callable[[Any, Any, int, float], tuple[float, float] | Literal[False] | None]
                  | None] = getattr(_speedups, "fold_group", None)
# fold_setup(stats_type, sketch_type): fold_group's slots found (True) for exactly these
# classes (FunctionStats, DurationSketch); until then, or on False, it answers None.
fold_setup: Final[Callable[[type, type], bool] | None] = getattr(_speedups, "fold_setup", None)
# summary(values): (sum, min, max) of a drained chunk's durations in one C pass.
summary: Final[Callable[[Sequence[float]], tuple[float, float, float]] | None] = getattr(
    _speedups, "summary", None)


def new_buffer() -> Any:
    """Return an empty call buffer: a ``CallBuffer`` with the accelerator, else a list.

    Both hold calls flat, ``key, start, duration``: ``len()`` counts three items a
    call, ``extend((key, start, duration))`` appends whole calls atomically, and
    ``take(buffer, n)`` removes the oldest ones.
    """
    return [] if _speedups is None else _speedups.CallBuffer()


# What a drain takes: the calls' keys, starts and durations, oldest first (lists from
# the pure-Python buffer, two array('d') from a CallBuffer).
Taken = tuple[list[Any], MutableSequence[float], MutableSequence[float]]


def take(buffer: Any, n: int, groups: int = 0, plain: type | None = None) -> Taken:
    """Remove the oldest ``n // 3`` calls of ``buffer`` (0: all); return their parts.

    With ``groups`` (at most 64), stop before the first call of a function beyond the
    first ``groups`` met, so that a drain folds at most that many functions: a key
    of type ``plain`` (``FunctionStats``) is its own function, any other (a
    failure's or a note's description) stands for its ``stats``.  Only drains call
    this, holding the recorder's lock: appends by other threads meanwhile go to the
    end and stay.
    """
    if type(buffer) is not list:
        return buffer.take(n, groups, plain)  # type: ignore[no-any-return]  # CallBuffer.take: see src/speedups/buffer.c
    end = min(n, len(buffer)) if n else len(buffer)
    keys = None
    if groups and end:
        end, keys = _cut(buffer, end, groups, plain)
    flat = buffer[:end]
    del buffer[:end]
    return flat[0::3] if keys is None else keys, flat[1::3], flat[2::3]


def _cut(buffer: list[Any], end: int, groups: int,
         plain: type | None) -> tuple[int, list[Any] | None]:
    """Where the calls of the first ``groups`` functions of ``buffer[:end]`` end.

    Also returns their keys when it had to slice them all (one function's chunk).
    """
    first = buffer[0]
    if type(first) is plain:
        # One function's calls (the hot loop) are found without a Python loop.
        probe = buffer[0:min(end, 12 * groups):3]
        if probe.count(first) == len(probe):
            keys = buffer[0:end:3]
            if keys.count(first) == len(keys):
                return end, keys
    seen: set[int] = set()
    for at in range(0, end, 3):
        key = buffer[at]
        owner = key if type(key) is plain else key.stats
        if id(owner) not in seen:
            if len(seen) == groups:
                return at, None
            seen.add(id(owner))
    return end, None


# A function's calls in a drained chunk: the function, its durations (in chunk order),
# how many of them failed, and the chunk indices of its first lowest and first
# highest duration (-1: not known, to be found when needed).
Group = tuple[Any, Sequence[float], int, int, int]


def group_calls(keys: list[Any], durations: Sequence[float], plain: type,
                failed: type) -> list[Group]:
    """Group a drained chunk's calls by function, functions in order of first call.

    A key of type ``plain`` is its own function; any other key (a failure's or a
    note's description) stands for its ``stats``, and is a failure when of type
    ``failed``.  In C (one pass, a few nanoseconds a call) when built; the
    pure-Python twin leaves the extremes' indices at -1, found later if needed.
    """
    if _speedups is not None:
        return cast("list[Group]", _speedups.group_calls(keys, durations, plain, failed))
    groups: dict[Any, list[float]] = {}
    failures: dict[Any, int] = {}
    for key, duration in zip(keys, durations, strict=True):
        group = groups.get(key)
        if group is not None:
            group.append(duration)
        elif type(key) is plain:
            groups[key] = [duration]
        else:  # a failure's or a note's description: goes to its function's group
            owner = key.stats
            if type(key) is failed:
                failures[owner] = failures.get(owner, 0) + 1
            group = groups.get(owner)
            if group is None:
                groups[owner] = [duration]
            else:
                group.append(duration)
    return [(function, group, failures.get(function, 0), -1, -1)
            for function, group in groups.items()]
