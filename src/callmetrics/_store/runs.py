"""Reading a store back: the runs it holds, and the checked contents of chosen runs.

Every value read from a file is checked before use (types, ranges, finiteness and
the sums that must agree): a damaged store raises ``StoreError`` naming the run, the
field and the value, and the file is never changed.  Reading leaves no ``-wal`` or
``-shm`` file beside a store that no writer has open (see :func:`read_store`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from callmetrics._engine.columns import CallColumns, columns_of
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._engine.view import RetainedCall
from callmetrics._store.bulk import bulk_calls
from callmetrics._store.checks import (
    Row,
    check_call,
    check_environment,
    check_function,
    check_run,
)
from callmetrics._store.limits import (
    MAX_COUNT,
    MAX_RUN_ID,
)
from callmetrics._store.read import read_store
from callmetrics._store.schema import (
    StoreError,
    has_attribution,
    has_failure_details,
    has_failure_types,
)

__all__ = ["RunInfo", "list_runs", "read_stored", "read_stored_runs",
           "read_stored_view", "since_to_unix", "span"]

_log = logging.getLogger("callmetrics.store")
_R = TypeVar("_R")

@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run of a store: an ``Analytics`` instance of one process."""

    id: int
    label: str | None
    pid: int
    host: str
    program: str
    started: float
    ended: float
    closed: bool
    calls: int
    functions: int
    events: int
    environment: dict[str, str | None] | None = None
    """Python, platform, hot path, argv, host, pid and label as the run recorded them
    (``_engine.environment``); None: not recorded (a run written before)."""


def since_to_unix(since: float | datetime | timedelta) -> float:
    """Turn ``since`` (Unix time, a datetime, or a span back from now) into Unix time.

    A naive datetime is local time.
    """
    if isinstance(since, timedelta):
        return time.time() - since.total_seconds()
    if isinstance(since, datetime):
        return since.timestamp()
    if isinstance(since, bool) or not isinstance(since, int | float):
        raise TypeError(f"since must be a Unix time, a datetime or a timedelta, "
                        f"got {type(since).__name__}")
    return float(since)


def span(runs: Iterable[tuple[float, float]]) -> float:
    """Seconds covered by the (started, ended) intervals, overlaps counted once."""
    covered = 0.0
    reach = None
    for started, ended in sorted(runs):
        if reach is None or started > reach:
            covered += max(0.0, ended - started)
            reach = ended
        elif ended > reach:
            covered += ended - reach
            reach = ended
    return covered


# ---------------------------------------------------------------------------- runs
def list_runs(path: str | Path) -> list[RunInfo]:
    """Return the runs of the store at ``path``, newest first.

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable callmetrics store, or is damaged.

    """
    def work(conn: sqlite3.Connection, _: Path) -> tuple[list[Any], list[Any], list[Any]]:
        environment = "environment" if has_attribution(conn) else "NULL"  # version 3 on
        return (conn.execute("SELECT id, label, pid, host, program, started, ended, closed, "  # noqa: S608  # fixed columns
                             f"{environment} FROM runs").fetchall(),
                conn.execute("SELECT run_id, name, calls FROM functions").fetchall(),
                conn.execute("SELECT run_id, count(*) FROM events GROUP BY run_id").fetchall())

    checked = Path(path).expanduser()
    runs, functions, events = read_store(checked, work)
    calls: dict[object, int] = {}
    names: dict[object, int] = {}
    for run_id, name, count in functions:
        check = Row(checked, "functions", run_id, name if isinstance(name, str) else "")
        calls[run_id] = calls.get(run_id, 0) + check.integer("calls", count, 0, MAX_COUNT)
        names[run_id] = names.get(run_id, 0) + 1
    stored = dict(events)
    infos = []
    for row in runs:
        run_id, label, pid, host, program, started, ended, closed = check_run(checked, row)
        infos.append(RunInfo(run_id, label, pid, host, program, started, ended, closed,
                             calls.get(run_id, 0), names.get(run_id, 0), stored.get(run_id, 0),
                             check_environment(checked, run_id, row[8])))
    infos.sort(key=lambda run: (run.started, run.id), reverse=True)
    return infos


def _run_ids(runs: Iterable[int] | None) -> list[int] | None:
    if runs is None:
        return None
    if isinstance(runs, str | bytes) or not isinstance(runs, Iterable):
        raise TypeError(f"runs must be an iterable of int run ids, got {type(runs).__name__}")
    wanted = list(runs)
    if not all(isinstance(r, int) and not isinstance(r, bool) for r in wanted):
        raise TypeError("runs must hold int run ids")
    return sorted(set(wanted))


def _chosen_runs(conn: sqlite3.Connection, path: Path, wanted: list[int] | None,
                 since: float | None, label: str | None) -> list[int]:
    clauses: list[str] = []
    params: list[object] = []
    if wanted is not None:
        if any(not 1 <= r <= MAX_RUN_ID for r in wanted):
            missing = [r for r in wanted if not 1 <= r <= MAX_RUN_ID]
            raise StoreError(f"{path} has no run {', '.join(map(str, missing))}")
        found = {row[0] for row in conn.execute(
            "SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),))}
        missing = [r for r in wanted if r not in found]
        if missing:
            raise StoreError(f"{path} has no run {', '.join(map(str, missing))}")
        clauses.append("id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(wanted))
    if since is not None:
        clauses.append("ended >= ?")
        params.append(since)
    if label is not None:
        clauses.append("label = ?")
        params.append(label)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return [row[0] for row in conn.execute(f"SELECT id FROM runs{where} ORDER BY id",  # noqa: S608  # fixed clauses, values bound
                                           params)]


def read_stored(path: str | Path, *, runs: Iterable[int] | None = None,
                since: float | datetime | timedelta | None = None, label: str | None = None,
                events: bool = True, time_format: str = "%Y-%m-%d %H:%M:%S",
                compact: bool = False) -> tuple[list[FunctionSnapshot], list[RetainedCall]]:
    """Read and check the chosen runs' aggregates (run by run) and retained calls.

    Failed calls carry their message and location (None from a version-1 store),
    successful ones their note, if any (``message``, with no error);
    ``event_type`` of a call is ``"unknown"`` (the store keeps it per function).

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable store, is damaged, or a run id is
            not in it.

    """
    snapshots, retained, _ = read_stored_runs(
        path, runs=runs, since=since, label=label, events=events, time_format=time_format,
        compact=compact)
    return snapshots, retained


def read_stored_runs(path: str | Path, *, runs: Iterable[int] | None = None,
                     since: float | datetime | timedelta | None = None,
                     label: str | None = None, events: bool = True,
                     time_format: str = "%Y-%m-%d %H:%M:%S", compact: bool = False,
                     ) -> tuple[list[FunctionSnapshot], list[RetainedCall], float]:
    """Do what :func:`read_stored` does; also return the chosen runs' wall time.

    That is the seconds their spans (started to ended) cover, overlaps counted once.
    """
    snapshots, calls, wall = read_stored_view(
        path, runs=runs, since=since, label=label, events=events, time_format=time_format,
        compact=compact)
    return snapshots, calls.calls(), wall


def _function_fields(conn: sqlite3.Connection) -> str:
    """The columns of ``functions`` read, as far as the store's version has them."""
    extra = (", slowest_message, slowest_location, fastest_message, fastest_location"
             if has_failure_details(conn) else "")
    if has_attribution(conn):
        extra += ", self_time, inclusive_time, active_time, active_self_time, callers"
    if has_failure_types(conn):
        extra += ", failure_types, cpu_time"
    return ("run_id, name, event_type, module, calls, successes, failures, total, "
            "fast, medium, slow, overhead, sketch, slowest_start, slowest_duration, "
            "slowest_error, fastest_start, fastest_duration, fastest_error" + extra)


def read_stored_view(path: str | Path, *, runs: Iterable[int] | None = None,
                     since: float | datetime | timedelta | None = None,
                     label: str | None = None, events: bool = True,
                     time_format: str = "%Y-%m-%d %H:%M:%S", compact: bool = False,
                     ) -> tuple[list[FunctionSnapshot], CallColumns, float]:
    """Do what :func:`read_stored_runs` does, the retained calls as columns (by start).

    The calls are checked a column at a time (``bulk_calls``); when a value breaks a
    rule, row by row, so that the damaged run is named (and left out, as ever).
    """
    checked = Path(path).expanduser()
    cutoff = since_to_unix(since) if since is not None else None
    wanted = _run_ids(runs)
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a str, got {type(label).__name__}")

    def work(conn: sqlite3.Connection, where: Path) -> tuple[list[Any], list[Any], list[Any]]:
        chosen = _chosen_runs(conn, where, wanted, cutoff, label)
        if not chosen:
            return [], [], []
        ids = (json.dumps(chosen),)
        runs_read = conn.execute(
            "SELECT id, label, pid, host, program, started, ended, closed FROM runs "
            "WHERE id IN (SELECT value FROM json_each(?))", ids).fetchall()
        details = has_failure_details(conn)
        query = (f"SELECT {_function_fields(conn)} FROM functions "  # noqa: S608  # fixed columns
                 "WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, name")
        functions = conn.execute(query, ids).fetchall()  # fixed columns, values bound
        columns = "message, location" if details else "NULL, NULL"
        calls = conn.execute(
            f"SELECT run_id, start, duration, error, function, {columns} FROM events "  # noqa: S608  # fixed columns
            "WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY start",
            ids).fetchall() if events else []
        return runs_read, functions, calls

    chosen_runs, functions, calls = read_store(checked, work)
    # A damaged row makes its own run unreadable, never the others.
    damaged: dict[object, StoreError] = {}

    def checked_rows(rows: list[Any], check: Callable[[Any], _R]) -> list[tuple[object, _R]]:
        out = []
        for row in rows:
            if row[0] in damaged:
                continue
            try:
                out.append((row[0], check(row)))
            except StoreError as exc:
                damaged[row[0]] = exc
        return out

    read_runs = checked_rows(chosen_runs, lambda row: check_run(checked, row))
    read_functions = checked_rows(
        functions, lambda row: check_function(checked, row, time_format, compact))
    bulk = bulk_calls(calls)
    if bulk is None:  # a damaged call: row by row, to name it and leave its run out
        read_calls = checked_rows(calls, lambda row: check_call(checked, row))
        bulk = _columns(read_calls)
    if damaged:
        readable = {row[0] for row in chosen_runs} - damaged.keys()
        if wanted is not None or not readable:
            raise next(iter(damaged.values()))  # runs asked for by id, or none readable
        for exc in damaged.values():
            _log.warning("callmetrics: %s; that run is left out", exc)
    spans = [(run[5], max(run[5], run[6])) for run_id, run in read_runs
             if run_id not in damaged]
    snapshots = [snap for run_id, snap in read_functions if run_id not in damaged]
    columns, run_of = bulk
    if damaged:
        kept = [i for i, run_id in enumerate(run_of) if run_id not in damaged]
        if len(kept) < len(columns):
            columns = columns.take(kept)
    types = {snap.name: snap.event_type for snap in snapshots}
    columns.types = [types.get(name, "unknown") for name in columns.names]
    return snapshots, columns, span(spans)


def _columns(read: list[tuple[object, RetainedCall]]) -> tuple[CallColumns, array[int]]:
    """Calls checked row by row, as columns, and each one's run id."""
    ids = array("q", [run_id if isinstance(run_id, int) else 0 for run_id, _ in read])
    return columns_of([call for _, call in read]), ids
