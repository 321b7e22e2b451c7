"""Stored calls checked in bulk: a column at a time instead of a row at a time.

``callmetrics report`` of a store with 200,000 retained calls spent most of its time
checking each row in Python.  Here the same rules hold (a start from 0 to
``MAX_TIME``, a duration from 0 to ``MAX_DURATION``, a function a non-empty text,
error, message and location text or NULL) and are checked per column: ``array('d')``
refuses anything but numbers, ``min``/``max``/``sum`` catch the ranges, NaN and
infinities, each distinct function name is checked once, and only the few rows that
carry an error or a note have their texts checked.  When anything fails, the caller
checks row by row (``_store.runs``), which names the run, field and value at fault.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from itertools import compress, repeat
from operator import is_not, itemgetter
from typing import Any

from callmetrics._engine.columns import CallColumns, Detail
from callmetrics._store.limits import MAX_DURATION, MAX_TEXT, MAX_TIME

__all__ = ["bulk_calls"]


def _numbers(values: Sequence[Any], high: float) -> array[float] | None:
    """``values`` as ``array('d')`` when each is a number from 0 to ``high`` (else None)."""
    try:
        column = array("d", values)  # refuses None, text and blobs
    except TypeError:
        return None
    if column and not (math.isfinite(sum(column)) and min(column) >= 0
                       and max(column) <= high):
        return None
    return column


def _text(value: object, *, optional: bool) -> bool:
    if value is None:
        return optional
    return isinstance(value, str) and len(value) <= MAX_TEXT and (optional or value != "")


def bulk_calls(rows: Sequence[tuple[Any, ...]]) -> tuple[CallColumns, array[int]] | None:
    """Check stored calls in bulk, ``(run_id, start, duration, error, function, ...)`` rows.

    Each row ends with message and location.  Returns the calls as columns (event
    types still unknown) and each call's run id; None when a value breaks a rule
    (then check row by row to say which).
    """
    if not rows:
        return CallColumns(), array("q")
    run_ids, starts, durations, errors, functions, messages, locations = (
        list(map(itemgetter(k), rows)) for k in range(7))
    try:
        runs = array("q", run_ids)
    except (TypeError, OverflowError):
        return None
    began = _numbers(starts, MAX_TIME)
    took = _numbers(durations, MAX_DURATION)
    if began is None or took is None:
        return None
    index = {name: i for i, name in enumerate(dict.fromkeys(functions))}
    if not all(_text(name, optional=False) for name in index):
        return None
    out = CallColumns(names=list(index), types=["unknown"] * len(index),
                      functions=array("l", map(index.__getitem__, functions)),
                      starts=began, durations=took)
    details = _details(errors, messages, locations)
    if details is None:
        return None
    out.details = details
    return out, runs


def _details(errors: list[Any], messages: list[Any],
             locations: list[Any]) -> dict[int, Detail] | None:
    """The error, message and location of the calls that have one, checked (None: damaged)."""
    n = len(errors)
    marked = {*compress(range(n), map(is_not, errors, repeat(None))),
              *compress(range(n), map(is_not, messages, repeat(None))),
              *compress(range(n), map(is_not, locations, repeat(None)))}
    found = {}
    for i in sorted(marked):
        detail = (errors[i], messages[i], locations[i])
        if not all(_text(value, optional=True) for value in detail):
            return None
        found[i] = detail
    return found
