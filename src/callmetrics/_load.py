"""``load()``: a store's chosen runs as one read-only ``Analytics``.

The store reads and checks (``_store.runs.read_stored_view``); this module, above the
façade, turns what it read into an ``Analytics`` view.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from callmetrics._analytics import Analytics
from callmetrics._store.runs import read_stored_view

__all__ = ["load", "read_view"]


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
        StoreError: when the file is not a usable store, is damaged, or a run id is
            not in it.

    """
    return read_view(path, runs=runs, since=since, label=label)


def read_view(path: str | Path, *, runs: Iterable[int] | None = None,
              since: float | datetime | timedelta | None = None, label: str | None = None,
              events: bool = True) -> Analytics:
    """Do what :func:`load` does; ``events=False`` skips the events (aggregates only)."""
    view = Analytics(max_events=0)
    snapshots, calls, wall = read_stored_view(
        path, runs=runs, since=since, label=label, events=events,
        time_format=view.time_format, compact=view.compact_time)
    # Columns, by start: failures keep message and location.  The view's wall time is
    # the runs' spans (overlaps once), not its own short life.
    view.restore(snapshots, calls, wall_time=wall)
    return view
