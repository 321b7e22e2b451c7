"""What ``diff`` and ``history`` read from a store, read fast and checked.

``diff`` needs only the runs' ids and labels (to find the runs it compares) and each
function's retained (start, duration) pairs, in time order; ``history`` only each
run's per-function aggregates.  Reading them through ``load()``
builds an ``Analytics`` and a checked ``RetainedCall`` per stored call: seconds for a
pair of runs of 100,000 calls.  Here the same checks (types, ranges, finiteness) run
as C-speed passes over each function's values (``sum``, ``min``, ``max``), and a
damaged value raises ``StoreError`` naming the field and the value, as
``_store.runs`` does.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from callmetrics._engine.sketch import DurationSketch
from callmetrics._store.limits import MAX_COUNT, MAX_DURATION, MAX_RUN_ID, MAX_TIME
from callmetrics._store.probe import ProbeReading, parse
from callmetrics._store.read import read_store
from callmetrics._store.schema import StoreError, has_attribution

__all__ = ["HistoryPoint", "HistoryRun", "read_calls", "read_history", "run_labels"]


def _damaged(path: Path, run_id: object, field: str, value: object, rule: str) -> StoreError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return StoreError(f"{path} is damaged: run {run_id}: {field} is {shown} ({rule}); "
                      "the file was left as it is")


def run_labels(path: str | Path) -> list[tuple[int, str | None]]:
    """Each run's id and label, in no order (``list_runs`` also counts each run's calls).

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable store, or an id or label is damaged.

    """
    from callmetrics._store.checks import Row  # noqa: PLC0415  # history needs none of it

    checked = Path(path).expanduser()
    rows = read_store(checked, lambda conn, _: conn.execute("SELECT id, label FROM runs")
                      .fetchall())
    found = []
    for run_id, label in rows:
        check = Row(checked, "runs", run_id)
        found.append((check.integer("id", run_id, 1, MAX_RUN_ID),
                      check.text("label", label, optional=True)))
    return found


def read_calls(path: str | Path, runs: Iterable[int],
               ) -> tuple[dict[str, tuple[list[float], list[float]]], list[float]]:
    """Each function's retained calls in the chosen runs: (starts, durations), by start.

    Also every call's start, in order (all functions together), as read.

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable store, or a stored call is damaged.

    """
    checked = Path(path).expanduser()
    chosen = sorted(set(runs))
    ids = (json.dumps(chosen),)

    def work(conn: sqlite3.Connection, _: Path) -> list[Any]:
        if len(chosen) == 1:  # one run (diff's usual side): the index gives the order
            return conn.execute("SELECT function, start, duration FROM events WHERE "
                                "run_id = ? ORDER BY start", (chosen[0],)).fetchall()
        return conn.execute("SELECT function, start, duration FROM events WHERE run_id IN "
                            "(SELECT value FROM json_each(?)) ORDER BY start", ids).fetchall()

    rows = read_store(checked, work)
    found: dict[str, tuple[list[float], list[float]]] = {}
    get = found.get
    for function, start, duration in rows:
        pair = get(function)
        if pair is None:
            pair = found[function] = ([], [])
        pair[0].append(start)
        pair[1].append(duration)
    for function, (starts, durations) in found.items():
        _check_calls(checked, function, starts, durations)
    return found, list(map(itemgetter(1), rows))  # each start is one of a function's


def _check_calls(path: Path, function: object, starts: list[Any], durations: list[Any]) -> None:
    """Check one function's stored calls with C-speed passes (sum, min, max)."""
    ok = isinstance(function, str) and 0 < len(function) <= 100_000
    for values, high in ((starts, MAX_TIME), (durations, MAX_DURATION)):
        try:
            # sum() raises on NULL (None), text or blobs; min/max catch the range.
            ok = ok and math.isfinite(sum(values)) and min(values) >= 0 and max(values) <= high
        except TypeError:
            ok = False
    if not ok:
        bad = next((pair for pair in zip(starts, durations, strict=True)
                    if not all(isinstance(v, int | float) and not isinstance(v, bool)
                               for v in pair)), None)
        raise _damaged(path, "?", f"a call of {function!r} (events.start, duration)",
                       bad if bad is not None else (min(starts, default=None),
                                                    max(durations, default=None)),
                       f"start must be from 0 to {MAX_TIME:g}, duration from 0 to "
                       f"{MAX_DURATION:g}, function a name")


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One function in one run: how many calls, their median and p95, mean self time."""

    calls: int
    median: float
    p95: float
    self_time: float | None
    """Mean self time per call; None when the run did not record it."""


@dataclass(frozen=True, slots=True)
class HistoryRun:
    """One stored run, oldest first in :func:`read_history`'s answer."""

    id: int
    label: str | None
    started: float
    probe: ProbeReading | None
    functions: dict[str, HistoryPoint]


def read_history(path: str | Path, *, label_like: str | None = None,
                 functions: Iterable[str] | None = None) -> list[HistoryRun]:
    """Every run (or those whose label is SQL ``LIKE label_like``), oldest first.

    ``functions`` keeps only those names (None: all).  Medians and p95 come from each
    run's sketch (every call, within 1 %); self time from ``functions.self_time``
    when the run recorded it.

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable store, or a value read is damaged.

    """
    checked = Path(path).expanduser()
    names = None if functions is None else json.dumps(sorted(set(functions)))

    def work(conn: sqlite3.Connection, _: Path) -> tuple[list[Any], list[Any]]:
        v3 = has_attribution(conn)
        where = "" if label_like is None else " WHERE label LIKE ?"
        params: tuple[Any, ...] = () if label_like is None else (label_like,)
        runs = conn.execute(f"SELECT id, label, started, {'probe' if v3 else 'NULL'} "  # noqa: S608  # fixed text
                            f"FROM runs{where} ORDER BY started, id", params).fetchall()
        ids = json.dumps([row[0] for row in runs])
        only = "" if names is None else " AND name IN (SELECT value FROM json_each(?))"
        rows = conn.execute(
            f"SELECT run_id, name, calls, sketch, {'self_time' if v3 else 'NULL'} "  # noqa: S608  # fixed text
            f"FROM functions WHERE run_id IN (SELECT value FROM json_each(?)){only}",
            (ids,) if names is None else (ids, names)).fetchall()
        return runs, rows

    runs, rows = read_store(checked, work)
    found = [HistoryRun(run_id, label if isinstance(label, str) else None,
                        float(started) if isinstance(started, int | float) else 0.0,
                        None if probe is None else parse(run_id, probe, checked), {})
             for run_id, label, started, probe in runs]
    by_id = {run.id: run for run in found}
    for run_id, name, calls, sketch, self_time in rows:
        if (isinstance(calls, bool) or not isinstance(calls, int)
                or not 0 <= calls <= MAX_COUNT):
            raise _damaged(checked, run_id, f"functions.calls of {name!r}", calls,
                           f"must be an integer from 0 to {MAX_COUNT}")
        if not calls:
            continue
        try:
            data = json.loads(sketch)
            parsed = DurationSketch.from_dict(data if isinstance(data, dict) else {})
        except (TypeError, ValueError, RecursionError):
            raise _damaged(checked, run_id, f"functions.sketch of {name!r}", sketch,
                           "not a duration sketch") from None
        if self_time is not None and (isinstance(self_time, bool)
                                      or not isinstance(self_time, int | float)
                                      or not 0 <= self_time <= calls * MAX_DURATION):
            raise _damaged(checked, run_id, f"functions.self_time of {name!r}", self_time,
                           "must be a number of seconds from 0 or NULL")
        by_id[run_id].functions[name] = HistoryPoint(
            calls, parsed.quantile(0.5) or 0.0, parsed.quantile(0.95) or 0.0,
            None if self_time is None else float(self_time) / calls)
    return found
