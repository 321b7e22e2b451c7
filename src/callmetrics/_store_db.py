"""The SQLite store's file: schema, opening, checking, migrating, reading and pruning.

Layout (schema version 2, also in ``PRAGMA user_version``; ``PRAGMA application_id``
marks the file as a callmetrics store):

- ``meta(key, value)``: ``format`` = ``callmetrics-store``, ``schema_version``, ``created``.
- ``runs``: one row per writing instance: id, label, pid, host, program, started,
  ended (time of its last write), closed (1 after a clean close).
- ``functions``: the run's cumulative per-function aggregates, replaced on every
  write; ``sketch`` is ``DurationSketch.to_dict()`` as JSON.
- ``events``: the run's retained calls (at most ``max_events`` of them), with the
  exception's type, message and location for failed ones.

Version 2 added ``events.message`` and ``events.location`` (and the same for the
slowest and fastest calls of ``functions``).  A version-1 file is migrated when it is
opened for writing, and read as it is (without changing it) otherwise.

Readers never leave files beside a store nobody writes: a WAL database opened the
usual way gets ``-wal`` and ``-shm`` files, so a store without a ``-wal`` file (no
writer has it open: the last one to close removes it) is read with ``immutable=1``,
and the read is done again the usual way if the file changed meanwhile.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, TypeVar

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "StoreError",
    "connect_readonly",
    "connect_writable",
    "file_identity",
    "has_failure_details",
    "prune",
    "read_error",
    "read_store",
    "write_transaction",
]

_T = TypeVar("_T")

SCHEMA_VERSION: Final = 2
# "cmtr": tells a callmetrics store from any other SQLite file before reading tables.
APPLICATION_ID: Final = 0x636D7472
FORMAT_NAME: Final = "callmetrics-store"

_SQLITE_HEADER = b"SQLite format 3\x00"
# Seconds SQLite itself waits on a lock when no deadline is given (readers, prune).
_BUSY_TIMEOUT = 10.0
# A write waits on a lock in slices of this many seconds, checking its deadline between.
_BUSY_SLICE = 0.25
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_CANTOPEN = 5, 6, 8, 14

_SCHEMA = f"""
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
    closed INTEGER NOT NULL DEFAULT 0
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
_MIGRATE_1_TO_2 = (
    "ALTER TABLE events ADD COLUMN message TEXT",
    "ALTER TABLE events ADD COLUMN location TEXT",
    "ALTER TABLE functions ADD COLUMN slowest_message TEXT",
    "ALTER TABLE functions ADD COLUMN slowest_location TEXT",
    "ALTER TABLE functions ADD COLUMN fastest_message TEXT",
    "ALTER TABLE functions ADD COLUMN fastest_location TEXT",
)

_TABLES = frozenset({"meta", "runs", "functions", "events"})


def _version() -> str:
    # callmetrics/__init__ sets __version__ after importing this module (through load).
    from callmetrics import __version__  # noqa: PLC0415

    return __version__


class StoreError(Exception):
    """A file is not a usable callmetrics store (foreign, corrupt, damaged or newer)."""


# ------------------------------------------------------------------ opening files
def _uri(path: Path, mode: str) -> str:
    return f"{path.resolve().as_uri()}?mode={mode}"


def _connect(path: Path, mode: str, timeout: float = _BUSY_TIMEOUT) -> sqlite3.Connection:
    # Autocommit: every write is an explicit BEGIN IMMEDIATE ... COMMIT.
    return sqlite3.connect(_uri(path, mode), uri=True, timeout=timeout,
                           isolation_level=None, check_same_thread=False)


def file_identity(path: Path) -> tuple[int, int] | None:
    """Return ``(st_dev, st_ino)`` of the file at ``path``, or None when there is none."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _has_content(path: Path) -> bool:
    """Return whether ``path`` holds a file to check (False: absent or empty, may be created).

    Raises:
        StoreError: when ``path`` is a directory or not a SQLite database at all.

    """
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a callmetrics store")
    try:
        with path.open("rb") as handle:
            data = handle.read(100)  # the database header
    except FileNotFoundError:
        return False
    if not data:
        return False
    if data[:len(_SQLITE_HEADER)] != _SQLITE_HEADER:
        raise StoreError(f"{path} is not a callmetrics store (not a SQLite database)")
    # Refuse other applications' and newer files before SQLite opens them: opening a
    # WAL database, even read-only, adds -wal and -shm files beside it.
    if len(data) == 100:
        _check_ids(path, int.from_bytes(data[68:72], "big"), int.from_bytes(data[60:64], "big"))
    return True


def _check_ids(path: Path, app_id: int | None, version: int) -> None:
    if app_id != APPLICATION_ID:
        raise StoreError(f"{path} is not a callmetrics store (a SQLite database of "
                         "another application)")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} has store schema version {version}, newer than this "
                         f"callmetrics {_version()} reads ({SCHEMA_VERSION}); upgrade "
                         "callmetrics")


def _validate(conn: sqlite3.Connection, path: Path) -> None:
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
    _check_ids(path, app_id if fmt == FORMAT_NAME else None, version)
    if version < 1 or not tables >= _TABLES:
        raise StoreError(f"{path} is a damaged callmetrics store (schema version {version}, "
                         f"tables {', '.join(sorted(tables)) or 'none'})")


def has_failure_details(conn: sqlite3.Connection) -> bool:
    """Tell whether an open store has the failure-detail columns (schema version 2+)."""
    return bool(conn.execute("PRAGMA user_version").fetchone()[0] >= 2)


def read_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """Describe a failed read of ``path``: locked by another process, or corrupt."""
    if _is_busy(exc):
        return StoreError(f"{path} is locked by another process ({exc}); try again")
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"{path} is corrupt ({exc})")
    return StoreError(f"cannot read {path} ({exc})")


def _open_checked(path: Path, *, immutable: bool = False,
                  timeout: float = _BUSY_TIMEOUT) -> sqlite3.Connection:
    """Open an existing, non-empty file read-only and check it is a usable store.

    ``immutable`` opens it without locks or side files (no writer may have it open).

    Raises:
        StoreError: when the file is not a usable callmetrics store.
        sqlite3.Error: when it cannot be opened or stays locked.

    """
    conn = _connect(path, "ro&immutable=1" if immutable else "ro", timeout)
    try:
        _validate(conn, path)
    except sqlite3.OperationalError as exc:
        conn.close()
        if immutable or not _unshareable(exc, path):
            raise
        # No writer has the file open (it would keep a -wal file), and SQLite can't
        # create the -shm file that sharing takes: read the file as it stands.
        conn = _connect(path, "ro&immutable=1")
        try:
            _validate(conn, path)
        except BaseException:
            conn.close()
            raise
    except BaseException:
        conn.close()
        raise
    return conn


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _unshareable(exc: sqlite3.OperationalError, path: Path) -> bool:
    """Tell whether ``exc`` says a WAL store can't be opened for want of a writable folder."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (isinstance(code, int) and code & 0xFF in (_SQLITE_READONLY, _SQLITE_CANTOPEN)
            and not _wal(path).exists())


def _existing(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not _has_content(path):
        if not path.exists():
            raise FileNotFoundError(f"no such store: {path}")
        raise StoreError(f"{path} is empty, not a callmetrics store")
    return path


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """Open an existing store for reading, after checking it (the file is never changed).

    When no writer has the store open (no ``-wal`` file beside it), the connection is
    opened with ``immutable=1``: it leaves no file behind, and does not see writes
    made after it was opened.  Keep it open briefly; :func:`read_store` reads with a
    check that the file did not change meanwhile.

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable callmetrics store, or cannot be read.

    """
    path = _existing(path)
    try:
        return _open_checked(path, immutable=not _wal(path).exists())
    except sqlite3.Error as exc:
        raise read_error(path, exc) from exc


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def read_store(path: str | Path, work: Callable[[sqlite3.Connection, Path], _T]) -> _T:
    """Run ``work(conn, path)`` in one read transaction of the store at ``path``.

    The file is never changed, and no ``-wal``/``-shm`` file is left beside a store
    that no writer has open.  ``work`` may raise ``StoreError`` for damaged values.

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable store, or cannot be read.

    """
    path = _existing(path)
    for attempt in range(3):
        stamp = _stamp(path)
        # The last writer to close removes the -wal file: without one, nobody writes
        # now, and the file can be read as immutable.  A writer that starts meanwhile
        # changes the file only when it checkpoints, which the stamp check catches.
        quiet = attempt < 2 and not _wal(path).exists()  # then share
        try:
            conn = _open_checked(path, immutable=quiet)
        except sqlite3.Error as exc:
            raise read_error(path, exc) from exc
        try:
            conn.execute("BEGIN")  # one consistent picture while other processes write
            result = work(conn, path)
            conn.execute("COMMIT")
        except (sqlite3.Error, StoreError) as exc:
            if quiet and _stamp(path) != stamp:
                continue  # changed under an immutable read: read again
            if isinstance(exc, StoreError):
                raise
            raise read_error(path, exc) from exc
        finally:
            conn.close()
        if not quiet or _stamp(path) == stamp:
            return result
    raise AssertionError("unreachable: the last attempt shares the file")  # pragma: no cover


def _migrate(conn: sqlite3.Connection, path: Path, timeout: float) -> None:
    """Bring a store opened for writing to the current schema version."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return

    def work(db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return  # another process migrated it first
        for statement in _MIGRATE_1_TO_2:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                   (str(SCHEMA_VERSION),))

    try:
        write_transaction(conn, work, deadline=time.monotonic() + timeout)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):
            raise
        raise StoreError(f"{path} is corrupt ({exc})") from exc


def connect_writable(path: str | Path, *, create: bool,
                     timeout: float = _BUSY_TIMEOUT) -> sqlite3.Connection:
    """Open a store for writing, creating it when ``create`` and there is no file yet.

    An existing file is checked through a read-only connection first, so a foreign,
    corrupt or newer file is left exactly as it was; an older one is migrated.
    ``timeout`` bounds the wait for another process's lock.

    Raises:
        FileNotFoundError: when the file is missing and ``create`` is false.
        StoreError: when the file is not a usable callmetrics store.
        OSError, sqlite3.Error: when the file or its directory cannot be written.

    """
    path = Path(path).expanduser()
    if _has_content(path):
        _open_checked(path, immutable=not _wal(path).exists(), timeout=timeout).close()
        conn = _connect(path, "rw", timeout)
    else:
        if not create:
            raise FileNotFoundError(f"no such store: {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(path, "rwc", timeout)
        try:
            _initialise(conn, path)
        except BaseException:
            conn.close()
            raise
    try:
        conn.execute("PRAGMA synchronous = NORMAL")
        # WAL lets readers and several writing processes share the file; the
        # setting is stored in the file, so one success is enough.
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("PRAGMA journal_mode = WAL")
        _migrate(conn, path, timeout)
    except BaseException:
        conn.close()
        raise
    return conn


def _initialise(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new, empty file (another process may have just done it)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            conn.execute("ROLLBACK")
            _validate(conn, path)
            return
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [
            ("format", FORMAT_NAME),
            ("schema_version", str(SCHEMA_VERSION)),
            ("created", repr(time.time())),
            ("created_by", f"callmetrics {_version()}"),
        ])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT too: the next try needs a clean slate
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def write_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], _T], *,
                      deadline: float, cancelled: Callable[[], bool] | None = None) -> _T:
    """Run ``work(conn)`` in one write transaction, retrying while the file is locked.

    Gives up (raising the last ``sqlite3.OperationalError``) at ``deadline``
    (``time.monotonic()``) or as soon as ``cancelled()`` is true between tries.
    """
    attempt = 0
    while True:
        remaining = deadline - time.monotonic()
        wait = max(0.001, min(remaining, _BUSY_SLICE))
        conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        try:
            with _transaction(conn):
                return work(conn)
        except sqlite3.OperationalError as exc:
            if (not _is_busy(exc) or time.monotonic() >= deadline
                    or (cancelled is not None and cancelled())):
                raise
        attempt += 1
        pause = 0.01 * min(2 ** attempt, 16) * (1 + random.random())  # noqa: S311  # jitter
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))


# ----------------------------------------------------------------------- retention
def prune(path: str | Path, cutoff: float, *, vacuum: bool = False) -> tuple[int, int]:
    """Delete runs last written before ``cutoff`` (Unix time) and events that started before it.

    A deleted run takes its aggregates and events with it.

    Returns:
        ``(runs deleted, events deleted)``, the events counted apart from whole runs'.

    Raises:
        FileNotFoundError: when there is no file at ``path`` (none is created).
        StoreError: when the file is not a usable store, or cannot be written.

    """
    try:
        conn = connect_writable(path, create=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot prune {path}: {exc}") from exc
    try:
        def work(db: sqlite3.Connection) -> tuple[int, int]:
            old = [row[0] for row in db.execute("SELECT id FROM runs WHERE ended < ?",
                                                (cutoff,))]
            for table, column in (("events", "run_id"), ("functions", "run_id"),
                                  ("runs", "id")):
                db.executemany(f"DELETE FROM {table} WHERE {column} = ?",  # noqa: S608  # fixed names
                               [(run_id,) for run_id in old])
            events = db.execute("DELETE FROM events WHERE start < ?", (cutoff,)).rowcount
            return len(old), events

        result = write_transaction(conn, work, deadline=time.monotonic() + _BUSY_TIMEOUT * 5)
        if vacuum:
            conn.execute("VACUUM")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot prune {path}: {exc}") from exc
    finally:
        conn.close()
    return result
