"""The store's writer: deleted files, locked files at flush and exit, failure details."""

from __future__ import annotations

import logging
import operator
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from callmetrics import Analytics, AnalyticsConfig, load
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._engine.view import Reading, RetainedCall
from callmetrics._store.runs import list_runs, read_stored
from callmetrics._store.writer import attach_store
from conftest import make_calls

# Generous bounds for a loaded 2-core machine: far below the ~52 s exit of the old
# retry loop, far above the 1 s store_timeout the tests set.
EXIT_BOUND = 20.0
FLUSH_BOUND = 10.0


# ---------------------------------------------------------------- a deleted store
def test_a_store_deleted_while_running_is_written_again_whole(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Deleting the .db, -wal and -shm mid-run loses nothing: the run is written again."""
    path = tmp_path / "runs.db"
    analytics = Analytics(store=path, config={"flush_interval": 3600})
    make_calls(analytics, 500, 0)
    analytics.flush()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    make_calls(analytics, 500, 0)
    with caplog.at_level(logging.WARNING, logger="callmetrics.store"):
        analytics.close()
    assert [run.calls for run in list_runs(path)] == [1000]
    view = load(path)
    assert view.call_counts == {"work": 1000}
    assert len(view.events) == 1000  # the retained calls stored before, written again
    [warning] = [r.getMessage() for r in caplog.records if r.name == "callmetrics.store"]
    assert "deleted or replaced" in warning
    assert str(path) in warning


def test_a_store_replaced_by_another_file_is_noticed(tmp_path: Path) -> None:
    """A store moved away and replaced by a fresh one gets this run written to it too."""
    path = tmp_path / "runs.db"
    analytics = Analytics(store=path, config={"flush_interval": 3600})
    make_calls(analytics, 20, 0)
    analytics.flush()
    path.rename(tmp_path / "old.db")
    with Analytics(store=path) as other:
        make_calls(other, 3, 0, name="other")
    make_calls(analytics, 5, 0)
    analytics.close()
    assert sorted(run.calls for run in list_runs(path)) == [3, 25]


# ------------------------------------------------------------------ a locked store
def _hold_lock(path: Path) -> sqlite3.Connection:
    """Take the store's write lock from another connection, as another process would."""
    holder = sqlite3.connect(path, isolation_level=None, timeout=1)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_flush_and_close_wait_at_most_store_timeout_for_a_locked_store(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A flush against a held lock returns in bounded time; the calls are written later."""
    path = tmp_path / "runs.db"
    config = {"flush_interval": 3600, "store_timeout": 1.0}
    analytics = Analytics(store=path, config=config)
    make_calls(analytics, 10, 0)
    analytics.flush()
    holder = _hold_lock(path)
    try:
        make_calls(analytics, 10, 0)
        started = time.monotonic()
        analytics.flush()
        assert time.monotonic() - started < FLUSH_BOUND
        assert list_runs(path)[0].calls == 10  # not written yet: the lock is held
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    analytics.close()
    assert list_runs(path)[0].calls == 20  # nothing lost once the lock is free


def test_close_against_a_held_lock_says_what_was_not_written(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """close() gives up after store_timeout and says in one line how many calls it lost."""
    path = tmp_path / "runs.db"
    analytics = Analytics(store=path, config={"flush_interval": 3600, "store_timeout": 0.5})
    make_calls(analytics, 4, 0)
    analytics.flush()
    make_calls(analytics, 6, 1)
    holder = _hold_lock(path)
    try:
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="callmetrics.store"):
            analytics.close()
        assert time.monotonic() - started < FLUSH_BOUND
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    [line] = [r.getMessage() for r in caplog.records if r.name == "callmetrics.store"]
    assert line.startswith("7 calls recorded since the last write were not written")
    assert "locked" in line
    assert "\n" not in line


HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(120)
"""

EXITING = """
import sys
from callmetrics import Analytics
analytics = Analytics(store=sys.argv[1], config={"flush_interval": 3600, "store_timeout": 1})
@analytics.track("job")
def job():
    return 1
for _ in range(25):
    job()
# no close(): the interpreter's exit writes the store
"""


def test_exit_with_the_store_locked_by_another_process_is_bounded(tmp_path: Path) -> None:
    """Another process holding the lock delays exit by about store_timeout, not ~52 s."""
    path = tmp_path / "runs.db"
    with Analytics(store=path) as analytics:
        make_calls(analytics, 1, 0)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(EXITING), str(path)],
                              capture_output=True, text=True, timeout=120, check=False)
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 0, done.stderr
    assert took < EXIT_BOUND
    # Logging is not configured in that program: the line goes to stderr, once.
    lines = [line for line in done.stderr.splitlines() if "not written" in line]
    assert len(lines) == 1
    assert lines[0].startswith("callmetrics: 25 calls recorded since the last write")
    assert [run.calls for run in list_runs(path)] == [1]


# ------------------------------------------------------------ failure details (v2)
class _DetailedSource:
    """A Source whose failed calls carry a message and a location, as the core's will."""

    def __init__(self, analytics: Analytics) -> None:
        self._analytics = analytics

    @property
    def settings(self) -> AnalyticsConfig:
        return self._analytics.settings

    def snapshot(self) -> list[FunctionSnapshot]:
        return self._analytics.snapshot()

    def retained(self) -> list[RetainedCall]:
        return [call._replace(message=f"bad input #{i}", location=f"app.py:{i} in work")
                if call.error else call for i, call in enumerate(self._analytics.retained())]

    def read(self) -> Reading:
        return Reading(self.snapshot(), self.retained())


def test_failed_calls_are_stored_with_their_message_and_location(tmp_path: Path) -> None:
    """The writer stores what Source.read() gives, message and location included."""
    path = tmp_path / "runs.db"
    analytics = Analytics()
    writer = attach_store(_DetailedSource(analytics), path)
    make_calls(analytics, 3, 2)
    writer.close()
    _, calls = read_stored(path)
    assert [(c.error, c.message, c.location) for c in calls if c.error] == [
        ("ValueError", "bad input #3", "app.py:3 in work"),
        ("ValueError", "bad input #4", "app.py:4 in work")]
    assert {c.event_type for c in calls} == {"unit"}
    assert [c.message for c in calls if not c.error] == [None] * 3


class _FixedSource(_DetailedSource):
    """A Source retaining the given calls (its aggregates: one call of 'work')."""

    def __init__(self, analytics: Analytics, calls: list[RetainedCall]) -> None:
        super().__init__(analytics)
        self._calls = calls

    def retained(self) -> list[RetainedCall]:
        return self._calls


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(0, 1e11), st.floats(0, 1e9), _TEXT.filter(bool),
                          st.none() | _TEXT, st.none() | _TEXT, st.none() | _TEXT),
                min_size=1, max_size=20))
@example([(1.0, 0.5, "a\x00b", "E\x00", "\x1b[2J\u202e😀", None)])
@example([(1e-7, 5e-324, "f", None, None, None), (1.7e9, 1e9, "\\u0000", "e", "m", "l")])
def test_retained_calls_are_stored_exactly(tmp_path: Path, rows: list[tuple[
        float, float, str, str | None, str | None, str | None]]) -> None:
    """Times, names and messages (NUL, emoji, escapes, bidi marks) come back bit for bit."""
    analytics = Analytics()
    make_calls(analytics, 1, 0)
    calls = [RetainedCall(start, duration, name, "unit", error, message, location)
             for start, duration, name, error, message, location in rows]
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        path = Path(folder) / "runs.db"
        attach_store(_FixedSource(analytics, calls), path).close()
        _, stored = read_stored(path)
    key = operator.attrgetter("start", "duration", "name", "error", "message", "location")
    assert sorted(map(key, stored), key=repr) == sorted(map(key, calls), key=repr)
