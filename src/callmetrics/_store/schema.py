"""The store's format: its tables, its versions, and the checks that a file is one.

Layout (schema version 4, also in ``PRAGMA user_version``; ``PRAGMA application_id``
marks the file as a callmetrics store):

- ``meta(key, value)``: ``format`` = ``callmetrics-store``, ``schema_version``, ``created``.
- ``runs``: one row per writing instance: id, label, pid, host, program, started,
  ended (time of its last write), closed (1 after a clean close).
- ``functions``: the run's cumulative per-function aggregates, replaced on every
  write; ``sketch`` is ``DurationSketch.to_dict()`` as JSON.
- ``events``: the run's retained calls (at most ``max_events`` of them), with the
  exception's type, message and location for failed ones, and the note (``message``,
  no error) of successful ones that carry one.

Version 2 added ``events.message`` and ``events.location`` (and the same for the
slowest and fastest calls of ``functions``).  Version 3 added where the time goes
(``functions.self_time``, ``inclusive_time``, ``active_time``, ``active_self_time``,
``callers`` as JSON) and what a run knows of its machine (``runs.probe``, the
machine-speed probe as JSON; ``runs.environment``, Python, platform, hot path, argv
as JSON); NULL in rows written before, read as unknown.  Version 4 added the
failures by exception type (``functions.failure_types``, JSON ``{"name": count}``
adding up to ``failures``; NULL before: their types unknown) and
``functions.cpu_time`` (seconds of thread CPU time; NULL: not measured).  An older file is migrated
when it is opened for writing, and read as it is (without changing it) otherwise.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from callmetrics._version import __version__

if TYPE_CHECKING:
    from callmetrics._engine.state import FunctionSnapshot

__all__ = [
    "APPLICATION_ID",
    "FORMAT_NAME",
    "INSERT_EVENT",
    "INSERT_EVENTS",
    "MIGRATE_1_TO_2",
    "MIGRATE_2_TO_3",
    "MIGRATE_3_TO_4",
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "UPSERT_FUNCTION",
    "StoreError",
    "check_ids",
    "function_row",
    "has_attribution",
    "has_failure_details",
    "has_failure_types",
    "library_version",
    "validate",
]

SCHEMA_VERSION: Final = 4
# "cmtr": tells a callmetrics store from any other SQLite file before reading tables.
APPLICATION_ID: Final = 0x636D7472
FORMAT_NAME: Final = "callmetrics-store"

SCHEMA = f"""
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    program TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    probe TEXT,
    environment TEXT
);
CREATE INDEX runs_label ON runs(label);
CREATE TABLE functions (
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    event_type TEXT NOT NULL,
    module TEXT NOT NULL,
    calls INTEGER NOT NULL,
    successes INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    total REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    fast INTEGER NOT NULL,
    medium INTEGER NOT NULL,
    slow INTEGER NOT NULL,
    overhead REAL NOT NULL,
    sketch TEXT NOT NULL,
    slowest_start REAL,
    slowest_duration REAL,
    slowest_error TEXT,
    fastest_start REAL,
    fastest_duration REAL,
    fastest_error TEXT,
    slowest_message TEXT,
    slowest_location TEXT,
    fastest_message TEXT,
    fastest_location TEXT,
    self_time REAL,
    inclusive_time REAL,
    active_time REAL,
    active_self_time REAL,
    callers TEXT,
    failure_types TEXT,
    cpu_time REAL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE events (
    run_id INTEGER NOT NULL,
    start REAL NOT NULL,
    duration REAL NOT NULL,
    error TEXT,
    function TEXT NOT NULL,
    message TEXT,
    location TEXT
);
CREATE INDEX events_run_start ON events(run_id, start);
CREATE INDEX events_start ON events(start);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

# Version 1 -> 2: failure details (issue 10).  Columns added last, NULL in old rows.
MIGRATE_1_TO_2 = (
    "ALTER TABLE events ADD COLUMN message TEXT",
    "ALTER TABLE events ADD COLUMN location TEXT",
    "ALTER TABLE functions ADD COLUMN slowest_message TEXT",
    "ALTER TABLE functions ADD COLUMN slowest_location TEXT",
    "ALTER TABLE functions ADD COLUMN fastest_message TEXT",
    "ALTER TABLE functions ADD COLUMN fastest_location TEXT",
)
# Version 2 -> 3: attribution (self, inclusive and active time, callers) and the
# run's machine probe and environment.  NULL in old rows: unknown, never zero.
MIGRATE_2_TO_3 = (
    "ALTER TABLE functions ADD COLUMN self_time REAL",
    "ALTER TABLE functions ADD COLUMN inclusive_time REAL",
    "ALTER TABLE functions ADD COLUMN active_time REAL",
    "ALTER TABLE functions ADD COLUMN active_self_time REAL",
    "ALTER TABLE functions ADD COLUMN callers TEXT",
    "ALTER TABLE runs ADD COLUMN probe TEXT",
    "ALTER TABLE runs ADD COLUMN environment TEXT",
)
# Version 3 -> 4: failures by exception type, and thread CPU time.  NULL in old rows:
# the types unknown (never no failures), the CPU time not measured.
MIGRATE_3_TO_4 = (
    "ALTER TABLE functions ADD COLUMN failure_types TEXT",
    "ALTER TABLE functions ADD COLUMN cpu_time REAL",
)
# The statements that bring a store of version v (the key) to v + 1.
MIGRATIONS: Final = {1: MIGRATE_1_TO_2, 2: MIGRATE_2_TO_3, 3: MIGRATE_3_TO_4}

_TABLES = frozenset({"meta", "runs", "functions", "events"})


def library_version() -> str:
    return __version__


class StoreError(Exception):
    """A file is not a usable callmetrics store (foreign, corrupt, damaged or newer)."""


def check_ids(path: Path, app_id: int | None, version: int) -> None:
    if app_id != APPLICATION_ID:
        raise StoreError(f"{path} is not a callmetrics store (a SQLite database of "
                         "another application)")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} has store schema version {version}, newer than this "
                         f"callmetrics {library_version()} reads ({SCHEMA_VERSION}); upgrade "
                         "callmetrics")


def validate(conn: sqlite3.Connection, path: Path) -> None:
    """Check that an open database is a callmetrics store this version can use."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        fmt = None
        if app_id == APPLICATION_ID and "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            fmt = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):
            # Locked, unreadable, no room for the -shm file...: not the file's fault.
            raise
        raise StoreError(f"{path} is corrupt or not a callmetrics store ({exc})") from exc
    check_ids(path, app_id if fmt == FORMAT_NAME else None, version)
    if version < 1 or not tables >= _TABLES:
        raise StoreError(f"{path} is a damaged callmetrics store (schema version {version}, "
                         f"tables {', '.join(sorted(tables)) or 'none'})")


def has_failure_details(conn: sqlite3.Connection) -> bool:
    """Tell whether an open store has the failure-detail columns (schema version 2+)."""
    return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= 2)


def has_attribution(conn: sqlite3.Connection) -> bool:
    """Tell whether an open store has the attribution and probe columns (version 3+)."""
    return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= 3)


def has_failure_types(conn: sqlite3.Connection) -> bool:
    """Tell whether an open store has the failure-type and CPU-time columns (version 4+)."""
    return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= 4)


# ------------------------------------------------------------------ writing rows
def function_row(run_id: int, snap: FunctionSnapshot) -> tuple[Any, ...]:
    def extreme(event: Any) -> tuple[Any, ...]:
        if event is None:
            return None, None, None, None, None
        return (event.start, event.duration, event.error, getattr(event, "message", None),
                getattr(event, "location", None))

    slowest, fastest = extreme(snap.slowest), extreme(snap.fastest)
    return (
        run_id, snap.name, snap.event_type, snap.module, snap.calls, snap.successes,
        snap.failures, snap.total, snap.min, snap.max, snap.fast, snap.medium, snap.slow,
        snap.overhead, _sketch_json(snap), *slowest[:3], *fastest[:3], *slowest[3:],
        *fastest[3:], snap.self_time, snap.inclusive_time, snap.active_time,
        snap.active_self_time, _callers_json(snap),
        json.dumps(snap.failure_types(), ensure_ascii=False, separators=(",", ":")),
        snap.cpu_time,
    )


def _callers_json(snap: FunctionSnapshot) -> str | None:
    """The callers as JSON ``[[name, calls, seconds], ...]``; None when self time is unknown."""
    if snap.self_time is None:
        return None
    return json.dumps([[edge.name, edge.calls, edge.time] for edge in snap.callers],
                      separators=(",", ":"))


def _sketch_json(snap: FunctionSnapshot) -> str:
    return json.dumps(snap.sketch.to_dict(), separators=(",", ":"))


UPSERT_FUNCTION = (
    "INSERT OR REPLACE INTO functions(run_id, name, event_type, module, calls, successes, "
    "failures, total, min, max, fast, medium, slow, overhead, sketch, slowest_start, "
    "slowest_duration, slowest_error, fastest_start, fastest_duration, fastest_error, "
    "slowest_message, slowest_location, fastest_message, fastest_location, self_time, "
    "inclusive_time, active_time, active_self_time, callers, failure_types, cpu_time) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?, ?, ?, ?, ?)"
)
INSERT_EVENT = ("INSERT INTO events(run_id, start, duration, error, function, message, "
                 "location) VALUES (?, ?, ?, ?, ?, ?, ?)")
# All of a write's calls in one statement: the thread leaves and retakes the GIL once
# for them, where a row at a time it waits for it again at every row while the
# program's threads compute (measured: the write takes about half as long under a
# CPU-bound main thread).  JSON carries floats exactly (repr in, the same double out).
INSERT_EVENTS = (
    "INSERT INTO events(run_id, start, duration, error, function, message, location) "
    "SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
    "json_extract(value, '$[5]') FROM json_each(?)")
