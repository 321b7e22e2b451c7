"""The store's writer: one run per recorder, written in the background with bounded waits.

The hot path never touches the disk, and pays nothing for the store: a daemon
thread reads the recorder through :meth:`Source.read` (aggregates and retained calls
taken together, the only moment the recorder's lock is held) every
``flush_interval`` seconds and writes what changed in one ``BEGIN IMMEDIATE``
transaction, outside any lock of the recorder; ``flush()``, ``close()`` and the end of
the interpreter do the same.  Readers never see half a write.

Waits are bounded: ``flush()`` and ``close()`` wait at most ``store_timeout`` seconds
for the file (another process may hold its lock), and the interpreter's exit at most
that long for all its stores together; what could not be written is said in one line.
A hard kill loses the calls made since the last completed write: at most one
``flush_interval`` plus the time one write takes.

Before each write the writer checks that the path still names the file it has open
(device and inode): a store deleted or replaced meanwhile is created again, and the
whole run written to it, with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from callmetrics._engine.logs import report_internal_error
from callmetrics._store.db import connect_writable, file_identity, write_transaction
from callmetrics._store.hooks import (
    FORK_HELD,
    OPEN,
    ORPHANS,
    install_exit_hooks,
    program_name,
    run_environment,
    say,
)
from callmetrics._store.probe import MachineProbe
from callmetrics._store.rows import write_rows

if TYPE_CHECKING:
    from callmetrics._engine.state import FunctionSnapshot
    from callmetrics._engine.view import RetainedCall, Source

__all__ = ["LABEL_ENV", "StoreWriter", "attach_store"]

# The run label comes from this environment variable (CI: the commit or branch).
LABEL_ENV: Final = "CALLMETRICS_RUN_LABEL"
# Used when a source's settings predate the store_timeout field.
_DEFAULT_TIMEOUT = 3.0

_log = logging.getLogger("callmetrics.store")


class StoreWriter:
    """Persists one recorder (any :class:`~callmetrics._engine.view.Source`) as one run of a store.

    Created by :func:`attach_store`; ``Analytics.flush()``, ``close()`` and
    ``clear_old_events()`` call into it.  No method raises because the store cannot
    be written: the failure is logged once and the recorder goes on in memory.

    Each write stores the retained calls not stored yet, told apart from the set of
    those the previous write held: one pass over the retained calls per write,
    nothing per call.
    """

    def __init__(self, source: Source, path: Path, *, label: str | None = None) -> None:
        """Open (or create) the store and start the background flush.

        Raises:
            StoreError: when ``path`` holds a file that is not a usable store.
            TypeError: when ``label`` is not a str or None.

        """
        from callmetrics._store.schema import StoreError  # noqa: PLC0415  # re-raised as is

        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a str or None, got {type(label).__name__}")
        self.path = Path(path).expanduser()
        self.label = label if label is not None else (os.environ.get(LABEL_ENV) or None)
        self._source = source
        settings = source.settings
        self._interval = settings.flush_interval
        self.timeout = float(getattr(settings, "store_timeout", _DEFAULT_TIMEOUT))
        self._max_events = settings.max_events
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._closed = False
        self._inactive = False  # inherited by a forked child that must not write
        self._fork_calls: int | None = None  # calls recorded when this process forked
        self._reset_run()
        try:
            self._open()
        except StoreError:
            raise
        except (OSError, sqlite3.Error) as exc:
            self._report(exc)
        OPEN.add(self)
        install_exit_hooks()
        self._start_thread()

    def _reset_run(self) -> None:
        self._write_lock = threading.Lock()  # one write at a time on the connection
        self._run_id: int | None = None
        self._pid = os.getpid()
        self._started = time.time()
        self._host = socket.gethostname()
        self._program = program_name()
        self._probe = MachineProbe()  # the machine's speed, sampled by the flush thread
        self._environment = run_environment(self.label, self._program)
        self._forget_written()
        self._stop = threading.Event()

    def _forget_written(self) -> None:
        self._written: dict[str, int] = {}  # calls per function as last committed
        self._stored: set[RetainedCall] = set()  # the retained calls already stored
        self._unwritten = 0  # calls recorded but not in the file, as last seen
        self._why = ""  # why the last write failed
        self._busy = False  # whether the last read found new calls

    def _open(self) -> None:
        self._conn = connect_writable(self.path, create=True, timeout=self.timeout)
        self._identity = file_identity(self.path)

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="callmetrics-store-flush",
                                        daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        """Name the file and the run."""
        return f"StoreWriter({str(self.path)!r}, run={self._run_id}, label={self.label!r})"

    @property
    def inactive(self) -> bool:
        """Whether this is a forked child's copy that must not write."""
        return self._inactive

    @property
    def run_id(self) -> int | None:
        """The id of this recorder's run, once it has been written."""
        return self._run_id

    def _loop(self) -> None:
        self._sample_probe(force=True)  # the start of the run
        while not self._stop.wait(self._interval):
            self._sample_probe(force=False)  # within its budget of the run's time
            # A locked file is tried until the next interval at most, and given up at
            # once when close() takes over.
            self._flush(final=False, deadline=time.monotonic() + max(self.timeout,
                                                                     self._interval),
                        cancelled=self._stop.is_set)

    def _sample_probe(self, *, force: bool) -> None:
        try:
            self._probe.sample(force=force)
        except Exception as exc:  # noqa: BLE001  # never raise into the caller's code
            report_internal_error("timing the machine-speed probe", exc)

    # ----------------------------------------------------------------- writing
    def flush(self) -> bool:
        """Write the run, its aggregates and the retained calls not stored yet.

        Waits at most ``store_timeout`` seconds (for a write under way and for the
        file's lock); what could not be written is tried again by the next write.

        Returns:
            Whether everything recorded so far is now in the file.

        """
        if self._closed:
            return False
        return self._flush(final=False, deadline=time.monotonic() + self.timeout)

    def _read(self) -> tuple[Sequence[FunctionSnapshot], list[RetainedCall],
                             set[RetainedCall]]:
        """Read aggregates and the retained calls not stored yet (the only locked moment)."""
        source = self._source
        if not self._busy:
            # Quiet lately: the aggregates alone tell whether anything is new, which
            # spares building the retained calls.
            snaps = source.snapshot()
            if {snap.name: snap.calls for snap in snaps} == self._written:
                return snaps, [], self._stored  # no call since: no new retained call either
        reading = source.read()  # aggregates and calls that agree
        self._busy = any(self._written.get(snap.name) != snap.calls
                         for snap in reading.functions)
        # The calls themselves are the keys (tuples of floats and cached-hash strings):
        # the set is built and probed in C, with no Python-level work per call.
        stored = self._stored
        new = [call for call in reading.calls if call not in stored]
        return reading.functions, new, set(reading.calls)

    def _flush(self, *, final: bool, deadline: float,
               cancelled: Callable[[], bool] | None = None) -> bool:
        """Write what changed, waiting until ``deadline`` at most; return whether all is in."""
        if self._inactive:
            return True
        if not self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            # A write under way still waits for the file: what it holds stays pending.
            self._why = "another write to it did not finish in time"
            return False
        try:
            if self._closed and not final:
                return True  # close() has already written the last of it
            return self._flush_locked(final, deadline, cancelled)
        finally:
            self._write_lock.release()

    def _flush_locked(self, final: bool, deadline: float,
                      cancelled: Callable[[], bool] | None) -> bool:
        try:
            self._check_file()  # before reading: a new file needs every retained call
        except Exception as exc:  # noqa: BLE001  # never raise into the caller's code
            self._report(exc)
            return False
        try:
            snaps, calls, retained = self._read()
        except Exception as exc:  # noqa: BLE001  # never raise into the caller's code
            report_internal_error("reading aggregates for the store", exc)
            return False
        written = {snap.name: snap.calls for snap in snaps}
        self._unwritten = sum(max(0, n - self._written.get(name, 0))
                              for name, n in written.items())
        try:
            # Calls only grow, so a function whose count is unchanged needs no rewrite.
            unchanged = not calls and written == self._written
            if (unchanged and not (final and self._run_id)) or (
                    self._run_id is None and not snaps and not calls):
                return True  # nothing new; nothing recorded leaves no empty run behind
            if self._conn is None:
                self._open()
            assert self._conn is not None  # noqa: S101  # set by _open
            # The id sticks only once the transaction that inserted it committed.
            self._run_id = write_transaction(
                self._conn, lambda db: self._write(db, snaps, calls, final),
                deadline=deadline, cancelled=cancelled)
        except Exception as exc:  # noqa: BLE001  # disk full, read-only, locked...
            # Nothing is marked written: the next write tries the same calls again.
            self._report(exc)
            return False
        self._written = written
        self._stored = retained
        self._unwritten = 0
        self._why = ""
        return True

    def _check_file(self) -> None:
        """Notice a store deleted or replaced since it was opened, and start it again."""
        if self._conn is None or file_identity(self.path) == self._identity:
            return
        conn, self._conn = self._conn, None
        with contextlib.suppress(sqlite3.Error):
            conn.close()  # the unlinked file's: its last connection removes its -wal
        say(logging.WARNING, "the store %s was deleted or replaced while this process "
             "wrote to it; writing run again, whole, to a new file there", self.path)
        self._run_id = None
        self._forget_written()
        self._open()

    def _write(self, db: sqlite3.Connection, snaps: Sequence[FunctionSnapshot],
               calls: Sequence[RetainedCall], final: bool) -> int:
        """Write one flush inside the caller's transaction; return the run id."""
        if final:
            self._sample_probe(force=False)  # the end of the run, within the budget too
        run = (self.label, self._pid, self._host, self._program, self._started, time.time(),
               int(final), self._probe.to_json(), self._environment)
        return write_rows(db, self._run_id, run, self._written, snaps, calls,
                          self._max_events)

    def _report(self, exc: BaseException) -> None:
        self._why = f"{type(exc).__name__}: {exc}"
        report_internal_error(f"writing the store {self.path}", exc)

    # ------------------------------------------------------------- maintenance
    def prune_events(self, cutoff: float) -> int:
        """Delete this store's events (every run's) that started before ``cutoff``.

        Waits at most ``store_timeout`` seconds.

        Returns:
            How many stored events were deleted (0 when the store can't be written).

        """
        if self._inactive or self._closed:
            return 0
        deadline = time.monotonic() + self.timeout
        if not self._write_lock.acquire(timeout=self.timeout):
            return 0
        try:
            if self._closed:
                return 0
            try:
                self._check_file()
                if self._conn is None:
                    self._open()
                assert self._conn is not None  # noqa: S101  # set by _open
                deleted: int = write_transaction(self._conn, lambda db: db.execute(
                    "DELETE FROM events WHERE start < ?", (cutoff,)).rowcount, deadline=deadline)
            except Exception as exc:  # noqa: BLE001  # never raise into the caller's code
                self._report(exc)
                return 0
        finally:
            self._write_lock.release()
        return deleted

    def close(self, deadline: float | None = None) -> bool:
        """Stop the background flush, write everything left, and close the file.

        Waits at most ``store_timeout`` seconds (or until ``deadline``, a
        ``time.monotonic()`` time); calls that could not be written are counted in one
        logged line (also on stderr when logging is not configured).

        Returns:
            Whether everything recorded was written.

        """
        if self._closed:
            return True
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        self._closed = True
        OPEN.discard(self)
        if self._inactive:
            return True  # a forked child's copy: its locks may be held by vanished threads
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        done = self._flush(final=True, deadline=deadline)
        if not done:
            say(logging.ERROR, "%s calls recorded since the last write were not written to "
                 "the store %s (%s; waited at most store_timeout=%s s)",
                 self._unwritten or "the", self.path, self._why or "no reason given",
                 self.timeout)
        if self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                if self._conn is not None:
                    conn, self._conn = self._conn, None
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
            finally:
                self._write_lock.release()
        return done

    # ---------------------------------------------------------------- fork
    def before_fork(self) -> None:
        """Hold the write lock across a fork and count the calls the child inherits."""
        self._write_lock.acquire()
        FORK_HELD.append(self._write_lock)
        try:
            self._fork_calls = sum(snap.calls for snap in self._source.snapshot())
        except Exception:  # noqa: BLE001  # unknown: the child stays quiet, as if inherited
            self._fork_calls = None

    def after_fork_in_child(self) -> None:
        """Start a fresh run in a forked child, or go quiet if it inherited calls."""
        # The parent's connection may be mid-transaction: never use or close it here
        # (closing could checkpoint the parent's WAL), just keep it from being freed.
        if self._conn is not None:
            ORPHANS.append(self._conn)
            self._conn = None
        self._inactive = True  # until decided below
        if self._fork_calls != 0:
            _log.warning(
                "callmetrics: the store %s is not written from forked process %s: it "
                "inherited calls recorded before the fork; create the Analytics in the "
                "worker (pool initializer) instead", self.path, os.getpid())
            return
        self._inactive = False
        self._reset_run()
        self._start_thread()


def attach_store(source: Source, path: Path, *, label: str | None = None) -> StoreWriter:
    """Persist ``source`` (an ``Analytics``, or any ``Source``) to the store at ``path``.

    Args:
        source: the recorder to persist, read only through ``snapshot()``/``read()``.
        path: the SQLite file; created (with its directory) when missing.
        label: the run's label; defaults to the ``CALLMETRICS_RUN_LABEL`` environment
            variable, else none.

    Raises:
        StoreError: when ``path`` holds a file that is not a usable store (it is left
            untouched).  A store that merely cannot be written is logged once instead.

    """
    return StoreWriter(source, path, label=label)
