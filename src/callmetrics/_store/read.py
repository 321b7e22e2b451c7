"""Reading a store without changing it, and without leaving files beside it.

A WAL database opened the usual way gets ``-wal`` and ``-shm`` files, even read-only.
The last writer to close a store removes its ``-wal`` file, so a store without one
has no writer now: it is read with ``immutable=1`` (no locks, no side files), and read
again the usual way if the file changed meanwhile (a writer that started during the
read).  While a writer has the store open, readers share its ``-wal`` file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from callmetrics._store.db import has_content, is_busy, open_checked, wal_path
from callmetrics._store.schema import StoreError

__all__ = ["connect_readonly", "read_error", "read_store"]

_T = TypeVar("_T")


def read_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """Describe a failed read of ``path``: locked by another process, or corrupt."""
    if is_busy(exc):
        return StoreError(f"{path} is locked by another process ({exc}); try again")
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"{path} is corrupt ({exc})")
    return StoreError(f"cannot read {path} ({exc})")


def _existing(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not has_content(path):
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
        return open_checked(path, immutable=not wal_path(path).exists())
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
        # An immutable read takes no lock, so it may see a file a writer is changing (a
        # new store's first transaction is not yet in WAL mode): whatever fails then is
        # read again, and the last attempt, sharing the file, waits for the writer.
        quiet = attempt < 2 and not wal_path(path).exists()  # then share
        conn = None
        try:
            conn = open_checked(path, immutable=quiet)
            conn.execute("BEGIN")  # one consistent picture while other processes write
            result = work(conn, path)
            conn.execute("COMMIT")
        except (sqlite3.Error, StoreError) as exc:
            if quiet:
                continue
            if isinstance(exc, StoreError):
                raise
            raise read_error(path, exc) from exc
        finally:
            if conn is not None:
                conn.close()
        if not quiet or _stamp(path) == stamp:
            return result
    raise AssertionError("unreachable: the last attempt shares the file")  # pragma: no cover
