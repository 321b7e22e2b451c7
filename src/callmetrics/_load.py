"""Reading a store back: the runs it holds, and a merged view of chosen runs."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from callmetrics._analytics import Analytics
from callmetrics._records import Event
from callmetrics._sketch import DurationSketch
from callmetrics._state import FunctionSnapshot
from callmetrics._store import StoreError, connect_readonly, read_error

__all__ = ["RunInfo", "list_runs", "load", "read_view", "since_to_unix"]


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


def list_runs(path: str | Path) -> list[RunInfo]:
    """Return the runs of the store at ``path``, newest first.

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable callmetrics store.

    """
    conn = connect_readonly(path)
    try:
        rows = conn.execute(
            "SELECT r.id, r.label, r.pid, r.host, r.program, r.started, r.ended, r.closed, "
            "(SELECT coalesce(sum(calls), 0) FROM functions f WHERE f.run_id = r.id), "
            "(SELECT count(*) FROM functions f WHERE f.run_id = r.id), "
            "(SELECT count(*) FROM events e WHERE e.run_id = r.id) "
            "FROM runs r ORDER BY r.started DESC, r.id DESC").fetchall()
    except sqlite3.Error as exc:
        raise read_error(Path(path), exc) from exc
    finally:
        conn.close()
    return [RunInfo(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]),
                    row[8], row[9], row[10]) for row in rows]


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


def load(path: str | Path, *, runs: Iterable[int] | None = None,
         since: float | datetime | timedelta | None = None,
         label: str | None = None) -> Analytics:
    """Return a read-only view of a store: one ``Analytics`` merging the chosen runs.

    ``get_stats``, ``events``, ``call_counts``, ``print_summary``, ``generate_reports``
    and ``to_dict`` work on it as on a live instance; it keeps every stored event and
    never writes to the store.  The filters combine (all must match).

    Args:
        path: the store file.
        runs: run ids to include (None: every run).
        since: only runs written at or after this time: Unix time, a datetime (naive is
            local time), or a timedelta back from now.
        label: only runs with this label.

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable store, or a run id is not in it.

    """
    return read_view(path, runs=runs, since=since, label=label)


def read_view(path: str | Path, *, runs: Iterable[int] | None = None,
              since: float | datetime | timedelta | None = None, label: str | None = None,
              events: bool = True) -> Analytics:
    """Do what :func:`load` does; ``events=False`` skips the events (aggregates only)."""
    path = Path(path).expanduser()
    cutoff = since_to_unix(since) if since is not None else None
    wanted = _run_ids(runs)
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a str, got {type(label).__name__}")
    view = Analytics(max_events=0)
    conn = connect_readonly(path)
    try:
        # One read transaction: a consistent picture while other processes write.
        conn.execute("BEGIN")
        chosen = _chosen_runs(conn, path, wanted, cutoff, label)
        if not chosen:
            return view
        ids = (json.dumps(chosen),)
        functions = conn.execute(
            "SELECT name, event_type, module, calls, successes, total, fast, medium, slow, "
            "overhead, sketch, slowest_start, slowest_duration, slowest_error, "
            "fastest_start, fastest_duration, fastest_error FROM functions "
            "WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, name",
            ids).fetchall()
        calls = conn.execute(
            "SELECT start, duration, error, function FROM events "
            "WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY start",
            ids).fetchall() if events else []
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise read_error(path, exc) from exc
    finally:
        conn.close()
    try:
        snapshots = [_snapshot(row, view) for row in functions]
    except (TypeError, ValueError, KeyError) as exc:
        raise StoreError(f"{path} holds damaged aggregates ({exc})") from exc
    view.restore(snapshots, calls)
    return view


def _snapshot(row: tuple[Any, ...], view: Analytics) -> FunctionSnapshot:
    (name, event_type, module, calls, successes, total, fast, medium, slow, overhead,
     sketch, s_start, s_duration, s_error, f_start, f_duration, f_error) = row

    def extreme(start: float | None, duration: float | None, error: str | None) -> Event | None:
        if start is None or duration is None:
            return None
        return Event(name, event_type, start, duration, error, view.time_format,
                     compact=view.compact_time)

    return FunctionSnapshot(
        name=name, event_type=event_type, module=module, calls=calls, successes=successes,
        total=total, fast=fast, medium=medium, slow=slow, overhead=overhead,
        sketch=DurationSketch.from_dict(json.loads(sketch)),
        slowest=extreme(s_start, s_duration, s_error),
        fastest=extreme(f_start, f_duration, f_error),
    )
