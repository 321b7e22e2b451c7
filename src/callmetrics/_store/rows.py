"""One flush of a run's rows, inside the writer's transaction.

The run's row is inserted, written again (pruned by another process meanwhile) or
updated; the functions whose call count changed replace their cumulative rows; the
new retained calls are appended in one statement, and the run keeps at most
``limit`` of them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from callmetrics._store.schema import INSERT_EVENT, INSERT_EVENTS, UPSERT_FUNCTION, function_row

if TYPE_CHECKING:
    from callmetrics._engine.state import FunctionSnapshot
    from callmetrics._engine.view import RetainedCall

__all__ = ["write_rows"]


def write_rows(db: sqlite3.Connection, run_id: int | None, run: tuple[Any, ...],
               before: Mapping[str, int], snaps: Sequence[FunctionSnapshot],
               calls: Sequence[RetainedCall], limit: int) -> int:
    """Write one flush of a run in ``db``'s open transaction; return the run's id.

    ``run`` is the run's row (label, pid, host, program, started, ended, closed, probe,
    environment; the last written when the run's row is);
    ``before`` the call count of each function as last written (empty: none yet).
    """
    if run_id is not None and db.execute("SELECT 1 FROM runs WHERE id = ?",
                                          (run_id,)).fetchone() is None:
        # Pruned by another process while quiet: write it again, whole, same id
        # (AUTOINCREMENT never hands a deleted id to another run).
        db.execute("DELETE FROM functions WHERE run_id = ?", (run_id,))
        db.execute("INSERT INTO runs(id, label, pid, host, program, started, ended, closed, "
                   "probe, environment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (run_id, *run))
        before = {}
    elif run_id is None:
        cursor = db.execute("INSERT INTO runs(label, pid, host, program, started, ended, "
                            "closed, probe, environment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            run)
        assert cursor.lastrowid is not None  # noqa: S101  # set by every INSERT
        run_id = cursor.lastrowid
    else:
        db.execute("UPDATE runs SET ended = ?, closed = ?, probe = ? WHERE id = ?",
                   (run[5], run[6], run[7], run_id))
    # Cumulative rows replace the previous ones, for the functions that changed.  A
    # function gone from the recorder (merge_with moved it to another) takes its
    # calls along: the recorder it moved to stores them.
    current = {snap.name for snap in snaps}
    gone = [(run_id, name) for name in before if name not in current]
    db.executemany("DELETE FROM functions WHERE run_id = ? AND name = ?", gone)
    db.executemany("DELETE FROM events WHERE run_id = ? AND function = ?", gone)
    db.executemany(UPSERT_FUNCTION, [function_row(run_id, snap) for snap in snaps
                                      if before.get(snap.name) != snap.calls])
    rows = [(run_id, call.start, call.duration, call.error, call.name, call.message,
             call.location) for call in calls]
    if rows:
        batch = json.dumps([row[1:] for row in rows], ensure_ascii=False,
                           separators=(",", ":"))
        if "\\u0000" in batch:  # SQLite's JSON text stops at a NUL: row by row then
            db.executemany(INSERT_EVENT, rows)
        else:
            db.execute(INSERT_EVENTS, (run_id, batch))
    if limit and calls:
        db.execute("DELETE FROM events WHERE rowid IN (SELECT rowid FROM events "
                   "WHERE run_id = ? ORDER BY start DESC LIMIT -1 OFFSET ?)",
                   (run_id, limit))
    return run_id
