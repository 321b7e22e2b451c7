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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from callmetrics._engine.records import Event
from callmetrics._engine.sketch import DurationSketch
from callmetrics._engine.state import CallerEdge, FunctionSnapshot
from callmetrics._engine.view import RetainedCall
from callmetrics._store.failure_types import parse_failure_types
from callmetrics._store.read import read_store
from callmetrics._store.schema import (
    StoreError,
    has_attribution,
    has_failure_details,
    has_failure_types,
)

__all__ = ["RunInfo", "list_runs", "read_stored", "read_stored_runs", "since_to_unix", "span"]

_log = logging.getLogger("callmetrics.store")
_R = TypeVar("_R")

# Sane ranges for stored values; anything outside is damage, not data.
MAX_COUNT: Final = 2 ** 53  # calls of one function: exact as a float, far past any run
MAX_TIME: Final = 1e11  # Unix time (the year 5138): every datetime formats it
MAX_DURATION: Final = 1e9  # seconds of one call (31 years)
MAX_RUN_ID: Final = 2 ** 63 - 1  # SQLite's INTEGER
MAX_PID: Final = 2 ** 32
MAX_TEXT: Final = 100_000  # characters of a name, label, message...


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


# ------------------------------------------------------------------- checking values
def _short(value: object) -> str:
    """``repr(value)``, cut to 60 characters: enough to recognise it, never a whole field."""
    shown = repr(value[:61] if isinstance(value, str | bytes) else value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


class _Row:
    """Checks the values of one stored row, naming the run and the field at fault."""

    def __init__(self, path: Path, table: str, run_id: object, what: str = "") -> None:
        self.path, self.table, self.run_id, self.what = path, table, run_id, what

    def damaged(self, field: str, value: object, rule: str) -> StoreError:
        shown = _short(value)
        of = f" of {_short(self.what)}" if self.what else ""
        return StoreError(f"{self.path} is damaged: run {self.run_id}: {self.table}.{field}"
                          f"{of} is {shown} ({rule}); the file was left as it is")

    def integer(self, field: str, value: object, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.damaged(field, value, f"must be an integer from {low} to {high}")
        return value

    def real(self, field: str, value: object, low: float, high: float) -> float:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not low <= value <= high):  # also rejects NaN
            raise self.damaged(field, value, f"must be a number from {low:g} to {high:g}")
        return float(value)

    def text(self, field: str, value: object, *, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or len(value) > MAX_TEXT or not (value or optional):
            rule = "text" if optional else "non-empty text"
            raise self.damaged(field, value, f"must be {rule} of at most {MAX_TEXT} "
                                             "characters" + (" or NULL" if optional else ""))
        return value

    def name(self, field: str, value: object) -> str:
        result = self.text(field, value)
        assert result is not None  # noqa: S101  # not optional
        return result


def _check_run(path: Path, row: tuple[Any, ...]) -> tuple[
        int, str | None, int, str, str, float, float, bool]:
    run_id = row[0]
    check = _Row(path, "runs", run_id)
    check.integer("id", run_id, 1, MAX_RUN_ID)
    started = check.real("started", row[5], 0.0, MAX_TIME)
    return (run_id, check.text("label", row[1], optional=True),
            check.integer("pid", row[2], 0, MAX_PID), check.name("host", row[3]),
            check.name("program", row[4]), started,
            check.real("ended", row[6], 0.0, MAX_TIME),
            bool(check.integer("closed", row[7], 0, 1)))


def _check_call(path: Path, row: tuple[Any, ...]) -> RetainedCall:
    run_id, start, duration, error, function, message, location = row
    check = _Row(path, "events", run_id, function if isinstance(function, str) else "")
    return RetainedCall(
        check.real("start", start, 0.0, MAX_TIME),
        check.real("duration", duration, 0.0, MAX_DURATION),
        check.name("function", function), "unknown", check.text("error", error, optional=True),
        check.text("message", message, optional=True),
        check.text("location", location, optional=True))


def _check_function(path: Path, row: tuple[Any, ...], time_format: str,
                    compact: bool) -> FunctionSnapshot:
    (run_id, name, event_type, module, calls, successes, failures, total, fast, medium,
     slow, overhead, sketch, s_start, s_duration, s_error, f_start, f_duration,
     f_error) = row[:19]
    check = _Row(path, "functions", run_id, name if isinstance(name, str) else "")
    name = check.name("name", name)
    event_type = check.name("event_type", event_type)
    calls = check.integer("calls", calls, 0, MAX_COUNT)
    successes = check.integer("successes", successes, 0, calls)
    check.integer("failures", failures, calls - successes, calls - successes)
    total = check.real("total", total, 0.0, calls * MAX_DURATION)
    fast = check.integer("fast", fast, 0, calls)
    medium = check.integer("medium", medium, 0, calls - fast)
    slow = check.integer("slow", slow, calls - fast - medium, calls - fast - medium)
    try:
        data = json.loads(check.name("sketch", sketch))
        parsed = DurationSketch.from_dict(data if isinstance(data, dict) else {})
    except (TypeError, ValueError, RecursionError) as exc:
        raise check.damaged("sketch", sketch, f"not a duration sketch: {exc}") from None
    if parsed.count != calls:
        raise check.damaged("sketch", f"count {parsed.count}", f"must count calls = {calls}")

    def extreme(prefix: str, start: object, duration: object, error: object,
                details: tuple[object, ...]) -> Event | None:
        if start is None and duration is None:
            return None
        stored = (*details, None, None)  # a version-1 store has neither column
        message = check.text(f"{prefix}_message", stored[0], optional=True)
        location = check.text(f"{prefix}_location", stored[1], optional=True)
        return Event(name, event_type, check.real(f"{prefix}_start", start, 0.0, MAX_TIME),
                     check.real(f"{prefix}_duration", duration, 0.0, MAX_DURATION),
                     check.text(f"{prefix}_error", error, optional=True), time_format,
                     compact=compact, message=message, location=location)

    self_time, inclusive, active, active_self, callers = _attribution(check, total,
                                                                      row[23:28])
    types, cpu = (*row[28:30], None, None)[:2]  # NULL, or a store before version 4
    try:
        by_type = parse_failure_types(types, calls - successes)
    except (TypeError, ValueError) as exc:
        raise check.damaged("failure_types", types, str(exc)) from None
    return FunctionSnapshot(
        name=name, event_type=event_type, module=check.name("module", module), calls=calls,
        successes=successes, total=total, fast=fast, medium=medium, slow=slow,
        overhead=check.real("overhead", overhead, 0.0, calls * MAX_DURATION),
        sketch=parsed,
        slowest=extreme("slowest", s_start, s_duration, s_error, row[19:21]),
        fastest=extreme("fastest", f_start, f_duration, f_error, row[21:23]),
        self_time=self_time, inclusive_time=inclusive, active_time=active,
        active_self_time=active_self, callers=callers, failures_by_type=by_type,
        cpu_time=None if cpu is None else check.real("cpu_time", cpu, 0.0,
                                                      calls * MAX_DURATION),
    )


def _attribution(check: _Row, total: float, stored: tuple[object, ...]) -> tuple[
        float | None, float | None, float | None, float | None, tuple[CallerEdge, ...]]:
    """Self, inclusive, active, active self time and callers (None: unknown, old store)."""
    self_time, inclusive, active, active_self, callers = (*stored, None, None, None, None,
                                                          None)[:5]
    # Each is at most the total (a sum of the same durations less some), give or take
    # the rounding of that subtraction.
    bound = total * (1 + 1e-9) + 1e-9

    def seconds(field: str, value: object) -> float | None:
        return None if value is None else check.real(field, value, 0.0, bound)

    if self_time is None:
        return None, None, None, None, ()
    edges: list[CallerEdge] = []
    try:
        data = json.loads(check.name("callers", callers))
    except (TypeError, ValueError, RecursionError) as exc:
        raise check.damaged("callers", callers, f"not JSON: {exc}") from None
    if not isinstance(data, list):
        raise check.damaged("callers", callers, "must be a list")
    for item in data:
        if not (isinstance(item, list) and len(item) == 3):
            raise check.damaged("callers", item, "must be [name, calls, seconds]")
        edges.append(CallerEdge(check.name("callers name", item[0]),
                                check.integer("callers calls", item[1], 0, MAX_COUNT),
                                check.real("callers time", item[2], 0.0, bound)))
    return (seconds("self_time", self_time), seconds("inclusive_time", inclusive),
            seconds("active_time", active), seconds("active_self_time", active_self),
            tuple(edges))


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
        return (conn.execute("SELECT id, label, pid, host, program, started, ended, closed "
                             "FROM runs").fetchall(),
                conn.execute("SELECT run_id, name, calls FROM functions").fetchall(),
                conn.execute("SELECT run_id, count(*) FROM events GROUP BY run_id").fetchall())

    checked = Path(path).expanduser()
    runs, functions, events = read_store(checked, work)
    calls: dict[object, int] = {}
    names: dict[object, int] = {}
    for run_id, name, count in functions:
        check = _Row(checked, "functions", run_id, name if isinstance(name, str) else "")
        calls[run_id] = calls.get(run_id, 0) + check.integer("calls", count, 0, MAX_COUNT)
        names[run_id] = names.get(run_id, 0) + 1
    stored = dict(events)
    infos = []
    for row in runs:
        run_id, label, pid, host, program, started, ended, closed = _check_run(checked, row)
        infos.append(RunInfo(run_id, label, pid, host, program, started, ended, closed,
                             calls.get(run_id, 0), names.get(run_id, 0), stored.get(run_id, 0)))
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
        extra = (", slowest_message, slowest_location, fastest_message, fastest_location"
                 if details else "")
        if has_attribution(conn):
            extra += ", self_time, inclusive_time, active_time, active_self_time, callers"
        if has_failure_types(conn):
            extra += ", failure_types, cpu_time"
        fields = ("run_id, name, event_type, module, calls, successes, failures, total, "
                  "fast, medium, slow, overhead, sketch, slowest_start, slowest_duration, "
                  "slowest_error, fastest_start, fastest_duration, fastest_error" + extra)
        query = (f"SELECT {fields} FROM functions "  # noqa: S608  # fixed columns
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

    read_runs = checked_rows(chosen_runs, lambda row: _check_run(checked, row))
    read_functions = checked_rows(
        functions, lambda row: _check_function(checked, row, time_format, compact))
    read_calls = checked_rows(calls, lambda row: _check_call(checked, row))
    if damaged:
        readable = {row[0] for row in chosen_runs} - damaged.keys()
        if wanted is not None or not readable:
            raise next(iter(damaged.values()))  # runs asked for by id, or none readable
        for exc in damaged.values():
            _log.warning("callmetrics: %s; that run is left out", exc)
    spans = [(run[5], max(run[5], run[6])) for run_id, run in read_runs
             if run_id not in damaged]
    snapshots = [snap for run_id, snap in read_functions if run_id not in damaged]
    retained = [call for run_id, call in read_calls if run_id not in damaged]
    types = {snap.name: snap.event_type for snap in snapshots}
    retained = [call._replace(event_type=types.get(call.name, "unknown")) for call in retained]
    return snapshots, retained, span(spans)
