"""The SQLite store: one run per ``Analytics`` instance, written in the background.

Layout (schema version 1, also in ``PRAGMA user_version``; ``PRAGMA application_id``
marks the file as a callmetrics store):

- ``meta(key, value)``: ``format`` = ``callmetrics-store``, ``schema_version``, ``created``.
- ``runs``: one row per writing instance: id, label, pid, host, program, started,
  ended (time of its last write), closed (1 after a clean close).
- ``functions``: the run's cumulative per-function aggregates, replaced on every
  write; ``sketch`` is ``DurationSketch.to_dict()`` as JSON.
- ``events``: the run's retained calls (at most ``max_events`` of them).

The hot path never touches the disk, and pays nothing for the store: a daemon
thread writes the instance's aggregates and the retained calls not stored yet
every ``flush_interval`` seconds, as do ``flush()``, ``close()`` and the end of the
interpreter.  Each write is one ``BEGIN IMMEDIATE`` transaction, so a hard kill
loses at most one interval and readers never see half a write.  Several
processes share a file through WAL mode, a busy timeout and retries.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import random
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from callmetrics._logging import report_internal_error
from callmetrics._state import FunctionSnapshot, RawEvent

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics

__all__ = [
    "LABEL_ENV",
    "SCHEMA_VERSION",
    "StoreError",
    "StoreWriter",
    "attach_store",
    "connect_readonly",
    "connect_writable",
    "prune",
    "read_error",
]

SCHEMA_VERSION: Final = 1
# "cmtr": tells a callmetrics store from any other SQLite file before reading tables.
APPLICATION_ID: Final = 0x636D7472
FORMAT_NAME: Final = "callmetrics-store"
# The run label comes from this environment variable (CI: the commit or branch).
LABEL_ENV: Final = "CALLMETRICS_RUN_LABEL"

_SQLITE_HEADER = b"SQLite format 3\x00"
# Seconds SQLite itself waits on a lock, then whole-transaction retries on top.
_BUSY_TIMEOUT = 10.0
_RETRIES = 5
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_CANTOPEN = 5, 6, 8, 14

_log = logging.getLogger("callmetrics.store")

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
    PRIMARY KEY (run_id, name)
);
CREATE TABLE events (
    run_id INTEGER NOT NULL,
    start REAL NOT NULL,
    duration REAL NOT NULL,
    error TEXT,
    function TEXT NOT NULL
);
CREATE INDEX events_run_start ON events(run_id, start);
CREATE INDEX events_start ON events(start);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

_TABLES = frozenset({"meta", "runs", "functions", "events"})


def _version() -> str:
    # callmetrics/__init__ sets __version__ after importing this module (through load).
    from callmetrics import __version__  # noqa: PLC0415

    return __version__


class StoreError(Exception):
    """A file is not a usable callmetrics store (foreign, corrupt or of a newer schema)."""


# ------------------------------------------------------------------ opening files
def _uri(path: Path, mode: str) -> str:
    return f"{path.resolve().as_uri()}?mode={mode}"


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    # Autocommit: every write is an explicit BEGIN IMMEDIATE ... COMMIT.
    return sqlite3.connect(_uri(path, mode), uri=True, timeout=_BUSY_TIMEOUT,
                           isolation_level=None, check_same_thread=False)


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


def read_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """Describe a failed read of ``path``: locked by another process, or corrupt."""
    if _is_busy(exc):
        return StoreError(f"{path} is locked by another process ({exc}); try again")
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"{path} is corrupt ({exc})")
    return StoreError(f"cannot read {path} ({exc})")


def _open_checked(path: Path) -> sqlite3.Connection:
    """Open an existing, non-empty file read-only and check it is a usable store.

    Raises:
        StoreError: when the file is not a usable callmetrics store.
        sqlite3.Error: when it cannot be opened or stays locked.

    """
    conn = _connect(path, "ro")
    try:
        _validate(conn, path)
    except sqlite3.OperationalError as exc:
        conn.close()
        if not _unshareable(exc, path):
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


def _unshareable(exc: sqlite3.OperationalError, path: Path) -> bool:
    """Tell whether ``exc`` says a WAL store can't be opened for want of a writable folder."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (isinstance(code, int) and code & 0xFF in (_SQLITE_READONLY, _SQLITE_CANTOPEN)
            and not path.with_name(path.name + "-wal").exists())


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """Open an existing store for reading, after checking it (the file is never changed).

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable callmetrics store, or cannot be read.

    """
    path = Path(path).expanduser()
    if not _has_content(path):
        if not path.exists():
            raise FileNotFoundError(f"no such store: {path}")
        raise StoreError(f"{path} is empty, not a callmetrics store")
    try:
        return _open_checked(path)
    except sqlite3.Error as exc:
        raise read_error(path, exc) from exc


def connect_writable(path: str | Path, *, create: bool) -> sqlite3.Connection:
    """Open a store for writing, creating it when ``create`` and there is no file yet.

    An existing file is checked through a read-only connection first, so a foreign,
    corrupt or newer file is left exactly as it was.

    Raises:
        FileNotFoundError: when the file is missing and ``create`` is false.
        StoreError: when the file is not a usable callmetrics store.
        OSError, sqlite3.Error: when the file or its directory cannot be written.

    """
    path = Path(path).expanduser()
    if _has_content(path):
        _open_checked(path).close()
        conn = _connect(path, "rw")
    else:
        if not create:
            raise FileNotFoundError(f"no such store: {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(path, "rwc")
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


def _retrying(conn: sqlite3.Connection, work: Any) -> Any:
    """Run ``work(conn)`` in a write transaction, retrying when the file stays locked."""
    for attempt in range(_RETRIES):
        try:
            with _transaction(conn):
                return work(conn)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or attempt == _RETRIES - 1:
                raise
            time.sleep(0.05 * 2 ** attempt * (1 + random.random()))  # noqa: S311  # jitter
    raise AssertionError("unreachable")  # pragma: no cover


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

        result: tuple[int, int] = _retrying(conn, work)
        if vacuum:
            conn.execute("VACUUM")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot prune {path}: {exc}") from exc
    finally:
        conn.close()
    return result


# -------------------------------------------------------------------------- writer
def _function_row(run_id: int, snap: FunctionSnapshot) -> tuple[Any, ...]:
    slowest, fastest = snap.slowest, snap.fastest
    return (
        run_id, snap.name, snap.event_type, snap.module, snap.calls, snap.successes,
        snap.failures, snap.total, snap.min, snap.max, snap.fast, snap.medium, snap.slow,
        snap.overhead, json.dumps(snap.sketch.to_dict(), separators=(",", ":")),
        slowest.start if slowest else None, slowest.duration if slowest else None,
        slowest.error if slowest else None,
        fastest.start if fastest else None, fastest.duration if fastest else None,
        fastest.error if fastest else None,
    )


_UPSERT_FUNCTION = (
    "INSERT OR REPLACE INTO functions(run_id, name, event_type, module, calls, successes, "
    "failures, total, min, max, fast, medium, slow, overhead, sketch, slowest_start, "
    "slowest_duration, slowest_error, fastest_start, fastest_duration, fastest_error) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class StoreWriter:
    """Persists one ``Analytics`` instance as one run of a store.

    Created by :func:`attach_store`; ``Analytics.flush()``, ``close()`` and
    ``clear_old_events()`` call into it.  No method raises because the store cannot
    be written: the failure is logged once and the instance goes on in memory.

    Each write takes the instance's retained events (its ring, at most ``max_events``)
    and stores those not yet stored, told apart by a hash of (start, duration,
    function) kept for the previous write's events.  That costs one pass over the ring
    per write and nothing per call: a drain listener would have the engine build a
    tuple for every call.
    """

    def __init__(self, analytics: Analytics, path: Path, *, label: str | None = None) -> None:
        """Open (or create) the store and start the background flush.

        Raises:
            StoreError: when ``path`` holds a file that is not a usable store.
            TypeError: when ``label`` is not a str or None.

        """
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a str or None, got {type(label).__name__}")
        self.path = Path(path).expanduser()
        self.label = label if label is not None else (os.environ.get(LABEL_ENV) or None)
        self._analytics = analytics
        self._interval = analytics.config.flush_interval
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._inactive = False  # inherited by a forked child that must not write
        self._reset_run()
        try:
            self._conn = connect_writable(self.path, create=True)
        except StoreError:
            raise
        except (OSError, sqlite3.Error) as exc:
            self._report(exc)
        _OPEN.add(self)
        _install_exit_hooks()
        self._start_thread()

    def _reset_run(self) -> None:
        self._write_lock = threading.Lock()  # one write at a time on the connection
        self._run_id: int | None = None
        self._pid = os.getpid()
        self._started = time.time()
        self._host = socket.gethostname()
        self._program = _program()
        self._written: dict[str, int] = {}  # calls per function as last committed
        self._stored: set[int] = set()  # keys of the retained events already stored
        self._stop = threading.Event()

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="callmetrics-store-flush",
                                        daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        """Name the file and the run."""
        return f"StoreWriter({str(self.path)!r}, run={self._run_id}, label={self.label!r})"

    @property
    def run_id(self) -> int | None:
        """The id of this instance's run, once it has been written."""
        return self._run_id

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    # ----------------------------------------------------------------- writing
    def flush(self) -> None:
        """Write the run, its aggregates and the retained calls not stored yet."""
        if not self._closed:
            self._flush(final=False)

    def _read(self) -> tuple[list[FunctionSnapshot], list[RawEvent], set[int]]:
        """Read aggregates and retained events together, with the events' keys."""
        analytics = self._analytics
        with analytics._lock:  # one drain for both: events and counts agree
            snaps = analytics.snapshot()
            if {snap.name: snap.calls for snap in snaps} == self._written:
                return snaps, [], self._stored  # no call since: no new event either
            ring = analytics.raw_events()
        keys = [hash((start, duration, stats.name)) for start, duration, _, stats in ring]
        stored = self._stored
        new = [raw for raw, key in zip(ring, keys, strict=True) if key not in stored]
        return snaps, new, set(keys)

    def _flush(self, *, final: bool) -> None:
        if self._inactive:
            return
        with self._write_lock:
            if self._closed and not final:
                return  # close() has already written the last of it
            try:
                snaps, events, retained = self._read()
            except Exception as exc:  # noqa: BLE001  # never raise into the caller's code
                report_internal_error("reading aggregates for the store", exc)
                return
            # Calls only grow, so a function whose count is unchanged needs no rewrite.
            written = {snap.name: snap.calls for snap in snaps}
            if not events and written == self._written and not (final and self._run_id):
                return
            if self._run_id is None and not snaps and not events:
                return  # nothing recorded: leave no empty run behind
            try:
                if self._conn is None:
                    self._conn = connect_writable(self.path, create=True)
                # The id sticks only once the transaction that inserted it committed.
                self._run_id = _retrying(self._conn,
                                         lambda db: self._write(db, snaps, events, final))
            except Exception as exc:  # noqa: BLE001  # disk full, read-only, locked...
                # Nothing is marked written: the next write tries the same calls again.
                self._report(exc)
                return
            self._written = written
            self._stored = retained

    def _write(self, db: sqlite3.Connection, snaps: Sequence[FunctionSnapshot],
               events: Sequence[RawEvent], final: bool) -> int:
        """Write one flush inside the caller's transaction; return the run id."""
        run = (self.label, self._pid, self._host, self._program, self._started, time.time(),
               int(final))
        before = self._written
        run_id = self._run_id
        if run_id is not None and db.execute("SELECT 1 FROM runs WHERE id = ?",
                                              (run_id,)).fetchone() is None:
            # Pruned by another process while quiet: write it again, whole, same id
            # (AUTOINCREMENT never hands a deleted id to another run).
            db.execute("DELETE FROM functions WHERE run_id = ?", (run_id,))
            db.execute("INSERT INTO runs(id, label, pid, host, program, started, ended, closed) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (run_id, *run))
            before = {}
        elif run_id is None:
            cursor = db.execute("INSERT INTO runs(label, pid, host, program, started, ended, "
                                "closed) VALUES (?, ?, ?, ?, ?, ?, ?)", run)
            assert cursor.lastrowid is not None  # noqa: S101  # set by every INSERT
            run_id = cursor.lastrowid
        else:
            db.execute("UPDATE runs SET ended = ?, closed = ? WHERE id = ?",
                       (run[5], run[6], run_id))
        # Cumulative rows replace the previous ones, for the functions that changed.  A
        # function gone from the instance (merge_with moved it to another) takes its
        # events along: the instance it moved to stores them.
        current = {snap.name for snap in snaps}
        gone = [(run_id, name) for name in before if name not in current]
        db.executemany("DELETE FROM functions WHERE run_id = ? AND name = ?", gone)
        db.executemany("DELETE FROM events WHERE run_id = ? AND function = ?", gone)
        db.executemany(_UPSERT_FUNCTION, [_function_row(run_id, snap) for snap in snaps
                                          if before.get(snap.name) != snap.calls])
        db.executemany("INSERT INTO events(run_id, start, duration, error, function) "
                       "VALUES (?, ?, ?, ?, ?)",
                       [(run_id, start, duration, error, stats.name)
                        for start, duration, error, stats in events])
        limit = self._analytics.max_events
        if limit and events:
            db.execute("DELETE FROM events WHERE rowid IN (SELECT rowid FROM events "
                       "WHERE run_id = ? ORDER BY start DESC LIMIT -1 OFFSET ?)",
                       (run_id, limit))
        return run_id

    def _report(self, exc: BaseException) -> None:
        report_internal_error(f"writing the store {self.path}", exc)

    # ------------------------------------------------------------- maintenance
    def prune_events(self, cutoff: float) -> int:
        """Delete this store's events (every run's) that started before ``cutoff``.

        Returns:
            How many stored events were deleted (0 when the store can't be written).

        """
        if self._inactive or self._closed:
            return 0
        with self._write_lock:
            if self._closed:
                return 0
            try:
                if self._conn is None:
                    self._conn = connect_writable(self.path, create=True)
                deleted: int = _retrying(self._conn, lambda db: db.execute(
                    "DELETE FROM events WHERE start < ?", (cutoff,)).rowcount)
            except Exception as exc:  # noqa: BLE001  # never raise into the caller's code
                self._report(exc)
                return 0
        return deleted

    def close(self) -> None:
        """Stop the background flush, write everything left, and close the file."""
        if self._closed:
            return
        self._closed = True
        _OPEN.discard(self)
        if self._inactive:
            return  # a forked child's copy: its locks may be held by vanished threads
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._flush(final=True)
        with self._write_lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

    # ---------------------------------------------------------------- fork
    def _after_fork_in_child(self) -> None:
        """Start a fresh run in a forked child, or go quiet if it inherited calls."""
        # The parent's connection may be mid-transaction: never use or close it here
        # (closing could checkpoint the parent's WAL), just keep it from being freed.
        if self._conn is not None:
            _ORPHANS.append(self._conn)
            self._conn = None
        # Only this thread survived the fork: a lock another one held is held for good.
        self._inactive = True  # until decided below
        self._write_lock = threading.Lock()
        inherited = None
        lock = self._analytics._lock
        if lock.acquire(blocking=False):
            try:
                inherited = sum(self._analytics.call_counts.values())
            finally:
                lock.release()
        if inherited != 0:
            _log.warning(
                "callmetrics: the store %s is not written from forked process %s: it "
                "inherited calls recorded before the fork; create the Analytics in the "
                "worker (pool initializer) instead", self.path, os.getpid())
            return
        self._inactive = False
        self._reset_run()
        self._start_thread()


def _program() -> str:
    """Return the program's name (``python -m x`` gives ``x``), never its arguments.

    Arguments are left out on purpose: command lines can carry secrets.
    """
    if not sys.argv or not sys.argv[0] or sys.argv[0] == "-c":
        return Path(sys.executable).name
    program = Path(sys.argv[0])
    return program.parent.name if program.name == "__main__.py" else program.name


# Writers still open, closed at interpreter exit (and at a multiprocessing child's exit).
_OPEN: set[StoreWriter] = set()
# Connections inherited across fork, kept alive so they are never closed in the child.
_ORPHANS: list[sqlite3.Connection] = []
_hooks_installed = False


def _close_all() -> None:
    for writer in list(_OPEN):
        try:
            writer.close()
        except Exception as exc:  # noqa: BLE001  # exit must go on for the other writers
            report_internal_error("closing the store at exit", exc)


# Instance locks held by the forking thread across a fork (see _before_fork).
_FORK_HELD: list[Any] = []


def _before_fork() -> None:
    """Take the written instances' locks, so no fork happens while the flush thread holds one.

    A child inheriting a lock held by a thread it does not have would hang on its first
    read, and its writer, unable to count the inherited calls, would never write.
    """
    instances = {id(w._analytics): w._analytics for w in list(_OPEN) if not w._inactive}
    # The order merge_with takes two instances' locks in, so the two can't deadlock.
    for analytics in sorted(instances.values(), key=lambda a: a.instance_id):
        analytics._lock.acquire()
        _FORK_HELD.append(analytics._lock)


def _release_fork_locks() -> None:
    while _FORK_HELD:
        _FORK_HELD.pop().release()


def _after_fork_in_child() -> None:
    _release_fork_locks()  # the child's one thread is the one that took them
    if not _OPEN:
        return
    for writer in list(_OPEN):
        writer._after_fork_in_child()
    _hook_multiprocessing()


class _Anchor:
    """A weak-referenceable object for multiprocessing's after-fork registry."""


_ANCHOR = _Anchor()
_finalizer: Any = None
_hooked_pid = 0


def _finalize_at_process_exit(_anchor: object = None) -> None:
    """Have multiprocessing close the writers when this process ends (idempotent)."""
    global _finalizer  # noqa: PLW0603  # one finalizer per process
    util = sys.modules.get("multiprocessing.util")
    if util is not None and (_finalizer is None or not _finalizer.still_active()):
        _finalizer = util.Finalize(None, _close_all, exitpriority=100)


def _hook_multiprocessing() -> None:
    """Close the writers at the end of multiprocessing children too.

    Those end with ``os._exit`` (fork, forkserver), so ``atexit`` never runs there,
    but multiprocessing's finalizers do.  A child clears the finalizers it inherited,
    and those registered while its main module was imported, before it runs its
    after-fork callbacks: register the finalizer again from one of those.
    """
    global _hooked_pid  # noqa: PLW0603  # once per process
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    _finalize_at_process_exit()
    if _hooked_pid != os.getpid():
        _hooked_pid = os.getpid()
        util.register_after_fork(_ANCHOR, _finalize_at_process_exit)


def _install_exit_hooks() -> None:
    global _hooks_installed  # noqa: PLW0603  # installed once per process
    _hook_multiprocessing()
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_close_all)
    os.register_at_fork(before=_before_fork, after_in_parent=_release_fork_locks,
                        after_in_child=_after_fork_in_child)


def attach_store(analytics: Analytics, path: Path, *, label: str | None = None) -> StoreWriter:
    """Persist ``analytics`` to the store at ``path`` as a new run.

    Args:
        analytics: the instance to persist.
        path: the SQLite file; created (with its directory) when missing.
        label: the run's label; defaults to the ``CALLMETRICS_RUN_LABEL`` environment
            variable, else none.

    Raises:
        StoreError: when ``path`` holds a file that is not a usable store (it is left
            untouched).  A store that merely cannot be written is logged once instead.

    """
    return StoreWriter(analytics, path, label=label)
