"""The store's file: damaged values, reads that change nothing, and the schema migration."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from callmetrics import Analytics, StoreError, load
from callmetrics._load import read_view
from callmetrics._store.db import connect_writable
from callmetrics._store.read import connect_readonly, read_store
from callmetrics._store.runs import list_runs, read_stored
from callmetrics._store.schema import SCHEMA_VERSION
from conftest import make_calls

FIXTURE_V1 = Path(__file__).parents[1] / "data" / "store_v1.db"


def _fingerprint(path: Path) -> tuple[str, int, list[str]]:
    """The file's content hash, its mtime and every file beside it."""
    side = sorted(p.name for p in path.parent.iterdir() if p.name != path.name)
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns, side


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A cleanly closed store of one run: 'work' with 40 calls (4 failed)."""
    path = tmp_path / "runs.db"
    with Analytics(store=path) as analytics:
        make_calls(analytics, 36, 4)
    return path


def _tamper(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(statement)
    conn.commit()
    conn.close()  # the last connection: checkpoints and removes the -wal file


# ------------------------------------------------------------------ damaged values
@pytest.mark.parametrize(("statement", "field"), [
    ("UPDATE functions SET calls = 'lots'", "functions.calls"),
    ("UPDATE functions SET total = 'NaN'", "functions.total"),
    ("UPDATE functions SET total = 9e999", "functions.total"),
    ("UPDATE functions SET successes = calls + 100", "functions.successes"),
    ("UPDATE functions SET successes = -100", "functions.successes"),
    ("UPDATE functions SET calls = -1", "functions.calls"),
    ("UPDATE functions SET calls = 9223372036854775807", "functions.calls"),
    ("UPDATE functions SET failures = failures + 1", "functions.failures"),
    ("UPDATE functions SET fast = fast + 1", "functions.fast"),
    ("UPDATE functions SET overhead = -1.0", "functions.overhead"),
    ("UPDATE functions SET sketch = '{\"count\": 3'", "functions.sketch"),
    ("UPDATE functions SET sketch = '[1, 2]'", "functions.sketch"),
    ("UPDATE functions SET sketch = '{\"count\": 0, \"buckets\": {}}'", "functions.sketch"),
    ("UPDATE functions SET slowest_start = 1e300", "functions.slowest_start"),
    ("UPDATE functions SET fastest_duration = -3", "functions.fastest_duration"),
    ("UPDATE functions SET name = X'00ff'", "functions.name"),
    ("UPDATE events SET start = 1e300 WHERE rowid = 1", "events.start"),
    ("UPDATE events SET duration = -0.5 WHERE rowid = 2", "events.duration"),
    ("UPDATE events SET error = X'01' WHERE rowid = 1", "events.error"),
    ("UPDATE events SET function = X'00' WHERE rowid = 1", "events.function"),
    ("UPDATE events SET message = X'41' WHERE rowid = 1", "events.message"),
    ("UPDATE runs SET started = 'yesterday'", "runs.started"),
    ("UPDATE runs SET pid = -7", "runs.pid"),
    ("UPDATE runs SET closed = 2", "runs.closed"),
    ("UPDATE runs SET label = X'35'", "runs.label"),
])
def test_a_tampered_value_is_a_store_error_naming_run_and_field(
        store: Path, statement: str, field: str) -> None:
    """Each tampered value gives StoreError naming the run and the field; the file is kept."""
    _tamper(store, statement)
    before = _fingerprint(store)
    readers: list[Callable[[Path], object]] = [load]
    if field.startswith(("runs.", "functions.calls")):
        readers.append(list_runs)  # the runs table and the calls are what list_runs reads
    for read in readers:
        with pytest.raises(StoreError, match=rf"run 1: {field}\b") as info:
            read(store)
        assert "\n" not in str(info.value)
    assert _fingerprint(store) == before


@pytest.mark.parametrize("stored", ["[1, 2]", '{"python": 3}', '{"python"', "x" * 20_000])
def test_a_tampered_environment_is_a_store_error_where_it_is_read(store: Path,
                                                                  stored: str) -> None:
    """list_runs (runs, report headers) checks the stored environment; load never reads it."""
    conn = sqlite3.connect(store)
    conn.execute("UPDATE runs SET environment = ?", (stored,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"run 1: runs\.environment\b"):
        list_runs(store)
    assert load(store).call_counts == {"work": 40}


def test_calls_too_large_for_a_sum_are_refused_by_every_reader(store: Path) -> None:
    """A count of 2**63-1 made `runs` fail and `stats` print nonsense: both now refuse it."""
    _tamper(store, "UPDATE functions SET calls = 9223372036854775807")
    for read in (list_runs, load, lambda p: read_view(p, events=False)):
        with pytest.raises(StoreError, match=r"functions\.calls of 'work'"):
            read(store)


def test_a_damaged_value_in_a_run_not_chosen_is_not_read(store: Path) -> None:
    """Only the chosen runs' aggregates are read: a healthy run loads beside a damaged one."""
    with Analytics(store=store) as analytics:
        make_calls(analytics, 5, 0, name="other")
    _tamper(store, "UPDATE functions SET total = 'NaN' WHERE run_id = 1")
    assert load(store, runs=[2]).call_counts == {"other": 5}
    with pytest.raises(StoreError, match=r"run 1: functions\.total"):
        load(store, runs=[1, 2])


# ------------------------------------------------------------- reads change nothing
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callmetrics", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_reading_a_closed_store_leaves_no_file_beside_it(store: Path, tmp_path: Path) -> None:
    """load, list_runs, read_view, connect_readonly and the CLI leave no -wal/-shm file."""
    before = _fingerprint(store)
    assert before[2] == []
    assert load(store).call_counts == {"work": 40}
    assert [run.calls for run in list_runs(store)] == [40]
    assert read_view(store, events=False).call_counts == {"work": 40}
    connect_readonly(store).close()
    assert _fingerprint(store) == before
    (tmp_path / "out").mkdir()  # `report -o` writes into an existing folder only
    for command in (("runs", str(store)), ("stats", str(store)),
                    ("report", str(store), "-o", str(tmp_path / "out" / "r.html"))):
        done = _cli(*command)
        assert done.returncode == 0, done.stderr
    after = _fingerprint(store)
    assert after[:2] == before[:2]
    assert after[2] == ["out"]


def test_a_store_being_written_is_read_through_its_wal(tmp_path: Path) -> None:
    """With a writer open, readers see what it flushed, and leave its files to it."""
    path = tmp_path / "live.db"
    analytics = Analytics(store=path, config={"flush_interval": 3600})
    try:
        make_calls(analytics, 7, 1)
        analytics.flush()
        assert Path(f"{path}-wal").exists()
        assert load(path).call_counts == {"work": 8}
        assert [run.closed for run in list_runs(path)] == [False]
    finally:
        analytics.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.db"]


# ------------------------------------------------------------------ schema version 1
@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    """A copy of a store written by callmetrics with schema version 1."""
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURE_V1, path)
    return path


def test_a_version_1_store_is_read_without_being_changed(old_store: Path) -> None:
    """Old files load as they are: counts, labels and events, no failure details."""
    before = _fingerprint(old_store)
    view = load(old_store)
    assert view.call_counts == {"fetch": 100, "parse": 30}
    assert [(r.id, r.label, r.calls, r.events) for r in list_runs(old_store)] == [
        (2, "second", 30, 30), (1, None, 100, 50)]
    _, calls = read_stored(old_store)
    failed = [call for call in calls if call.error]
    assert len(failed) == 5
    assert {(c.error, c.message, c.location, c.event_type) for c in failed} == {
        ("ConnectionError", None, None, "io")}
    assert _fingerprint(old_store) == before
    conn = sqlite3.connect(f"{old_store.as_uri()}?mode=ro&immutable=1", uri=True)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


def test_a_version_1_store_is_migrated_when_opened_for_writing(old_store: Path) -> None:
    """A writer brings an old file to the current version; old runs stay as they were."""
    with Analytics(store=old_store) as analytics:
        make_calls(analytics, 3, 2, name="fetch")
    conn = sqlite3.connect(old_store)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    assert {"message", "location"} <= columns
    columns = {row[1] for row in conn.execute("PRAGMA table_info(functions)")}
    assert {"self_time", "inclusive_time", "active_time", "active_self_time",
            "callers"} <= columns
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    assert {"probe", "environment"} <= columns
    # Rows written before version 3 know nothing of where their time went: NULL.
    assert conn.execute("SELECT count(*) FROM functions WHERE run_id <= 2 "
                        "AND self_time IS NULL").fetchone() == (2,)
    conn.close()
    assert load(old_store).call_counts == {"fetch": 105, "parse": 30}
    assert load(old_store, runs=[1]).call_counts == {"fetch": 100}


def test_migration_happens_once_when_two_writers_open_an_old_store(old_store: Path) -> None:
    """A second writer finds the file migrated already and goes on."""
    first = connect_writable(old_store, create=False)
    second = connect_writable(old_store, create=False)
    for conn in (first, second):
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.close()


def test_a_writer_starting_during_an_immutable_read_makes_the_read_start_again(
        store: Path) -> None:
    """A file changed under an immutable read is read again, sharing the writer's WAL."""
    attempts: list[bool] = []

    def work(conn: sqlite3.Connection, path: Path) -> int:
        attempts.append(Path(f"{path}-wal").exists())
        if len(attempts) == 1:  # another process writes, and checkpoints, meanwhile
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("UPDATE runs SET label = 'changed'")
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            other.close()
        return int(conn.execute("SELECT count(*) FROM runs WHERE label = 'changed'")
                   .fetchone()[0])

    assert read_store(store, work) == 1
    assert attempts == [False, False]
    assert sorted(p.name for p in store.parent.iterdir()) == ["runs.db"]


@pytest.mark.parametrize("command", ["stats", "runs", "report"])
def test_the_cli_refuses_a_tampered_store_in_one_line(store: Path, tmp_path: Path,
                                                      command: str) -> None:
    """`stats`, `runs` and `report` exit 2 with one line naming the field, no traceback."""
    _tamper(store, "UPDATE functions SET calls = 'lots'")
    before = _fingerprint(store)
    extra = ["-o", str(tmp_path / "r.html")] if command == "report" else []
    done = _cli(command, str(store), *extra)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "functions.calls" in lines[0]
    assert _fingerprint(store) == before
