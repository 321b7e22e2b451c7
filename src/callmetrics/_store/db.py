"""The store's file: opening, creating, migrating, write transactions and pruning.

Writers open a store through :func:`connect_writable`, which checks an existing file
through a read-only connection first (a foreign, corrupt or newer file is left as it
was) and migrates an older one; every write is one ``BEGIN IMMEDIATE`` transaction
retried while another process holds the lock, until a deadline.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from callmetrics._store.schema import (
    FORMAT_NAME,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    StoreError,
    check_ids,
    library_version,
    validate,
)

__all__ = [
    "connect_writable",
    "file_identity",
    "has_content",
    "is_busy",
    "open_checked",
    "prune",
    "wal_path",
    "write_transaction",
]

_T = TypeVar("_T")

_SQLITE_HEADER = b"SQLite format 3\x00"
# Seconds SQLite itself waits on a lock when no deadline is given (readers, prune).
_BUSY_TIMEOUT = 10.0
# A write waits on a lock in slices of this many seconds, checking its deadline between.
_BUSY_SLICE = 0.25
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_CANTOPEN = 5, 6, 8, 14


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


def has_content(path: Path) -> bool:
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
        check_ids(path, int.from_bytes(data[68:72], "big"), int.from_bytes(data[60:64], "big"))
    return True


def open_checked(path: Path, *, immutable: bool = False,
                  timeout: float = _BUSY_TIMEOUT) -> sqlite3.Connection:
    """Open an existing, non-empty file read-only and check it is a usable store.

    ``immutable`` opens it without locks or side files (no writer may have it open).

    Raises:
        StoreError: when the file is not a usable callmetrics store.
        sqlite3.Error: when it cannot be opened or stays locked.

    """
    conn = _connect(path, "ro&immutable=1" if immutable else "ro", timeout)
    try:
        validate(conn, path)
    except sqlite3.OperationalError as exc:
        conn.close()
        if immutable or not _unshareable(exc, path):
            raise
        # No writer has the file open (it would keep a -wal file), and SQLite can't
        # create the -shm file that sharing takes: read the file as it stands.
        conn = _connect(path, "ro&immutable=1")
        try:
            validate(conn, path)
        except BaseException:
            conn.close()
            raise
    except BaseException:
        conn.close()
        raise
    return conn


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _unshareable(exc: sqlite3.OperationalError, path: Path) -> bool:
    """Tell whether ``exc`` says a WAL store can't be opened for want of a writable folder."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (isinstance(code, int) and code & 0xFF in (_SQLITE_READONLY, _SQLITE_CANTOPEN)
            and not wal_path(path).exists())


def _migrate(conn: sqlite3.Connection, path: Path, timeout: float) -> None:
    """Bring a store opened for writing to the current schema version."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return

    def work(db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return  # another process migrated it first
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
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
    if has_content(path):
        _check_existing(path, timeout)
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


def _check_existing(path: Path, timeout: float) -> None:
    """Check an existing file before writing to it (see :func:`open_checked`).

    Without a ``-wal`` file nobody writes, or a writer is creating the store (its
    first transaction is not in WAL mode yet): the lock-free immutable check may then
    see a half-written file, so a failure is checked again sharing the file, which
    waits for that writer.
    """
    if not wal_path(path).exists():
        try:
            open_checked(path, immutable=True, timeout=timeout).close()
        except (sqlite3.Error, StoreError):
            pass
        else:
            return
    open_checked(path, timeout=timeout).close()


def _initialise(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new, empty file (another process may have just done it)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            conn.execute("ROLLBACK")
            validate(conn, path)
            return
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [
            ("format", FORMAT_NAME),
            ("schema_version", str(SCHEMA_VERSION)),
            ("created", repr(time.time())),
            ("created_by", f"callmetrics {library_version()}"),
        ])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def is_busy(exc: sqlite3.Error) -> bool:
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
            if (not is_busy(exc) or time.monotonic() >= deadline
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
