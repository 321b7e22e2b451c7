"""The SQLite store: persisting runs, bad files, unwritable stores and many processes."""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from callmetrics import Analytics, AnalyticsConfig, DurationSketch, StoreError, load
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._engine.view import Reading, RetainedCall
from callmetrics._store import LABEL_ENV, SCHEMA_VERSION, attach_store, prune
from callmetrics._store.runs import list_runs

# Python 3.12+ warns when a multi-threaded process forks: these tests do it on purpose.
FORKS_WITH_THREADS = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning")


def _spin(n: int) -> int:
    return sum(range(n))


def _record(analytics: Analytics, calls: int, *, fail_every: int = 0) -> None:
    @analytics.track("unit", name="work")
    def work(i: int) -> int:
        if fail_every and i % fail_every == 0:
            raise ValueError(i)
        return _spin(i % 50)

    for i in range(calls):
        with contextlib.suppress(ValueError):
            work(i)


def _wait_for(predicate: object, what: str, timeout: float = 20.0) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after a generous deadline."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


# --------------------------------------------------------------------- round trip
def test_closed_store_reads_back_what_was_recorded(tmp_path: Path) -> None:
    """Aggregates, percentiles and events read back from the store equal the live ones."""
    store = tmp_path / "runs.db"
    live = Analytics(store=store)
    _record(live, 500, fail_every=7)
    live.close()
    view = load(store)
    assert view.call_counts == live.call_counts == {"work": 500}
    assert view.success_counts == live.success_counts
    mine, theirs = live.get_stats(), view.get_stats()
    for key in ("total_calls", "total_success", "p50", "p90", "p95", "p99", "min_duration",
                "max_duration", "event_count", "duration_counts"):
        assert theirs[key] == mine[key], key
    assert theirs["total_time"] == pytest.approx(mine["total_time"])
    assert theirs["slowest"].duration == mine["slowest"].duration
    assert [(e.start, e.duration, e.error, e.event_type) for e in view.events] == [
        (e.start, e.duration, e.error, e.event_type) for e in live.events]
    assert view.decorator_overhead["work"] == pytest.approx(live.decorator_overhead["work"])


def test_a_failures_message_and_location_survive_the_store(tmp_path: Path) -> None:
    """load(store).events shows a failed call's Message and Location as the live one did."""
    store = tmp_path / "runs.db"
    live = Analytics(store=store)

    @live.track("parsing", name="parse")
    def parse(text: str) -> None:
        raise ValueError(f"bad input {text!r}")

    with pytest.raises(ValueError, match="bad input"):
        parse("x")
    live.close()
    (stored,) = load(store).events
    (recorded,) = live.events
    assert stored["Message"] == recorded["Message"] == "bad input 'x'"
    assert stored["Location"] == recorded["Location"]
    assert stored["Location"].endswith(" in parse")
    assert "test_store.py:" in stored["Location"]
    assert (stored["Error"], stored["Event Type"]) == ("ValueError", "parsing")


def test_flush_makes_the_run_visible_while_it_is_open(tmp_path: Path) -> None:
    """flush() writes an open run; close() marks it closed, and tracking goes on in memory."""
    store = tmp_path / "runs.db"
    with Analytics(store=store) as analytics:
        _record(analytics, 100)
        analytics.flush()
        (run,) = list_runs(store)
        assert (run.calls, run.closed, run.pid) == (100, False, os.getpid())
        _record(analytics, 50)
    (run,) = list_runs(store)
    assert (run.calls, run.closed) == (150, True)
    assert run.ended >= run.started
    _record(analytics, 10)
    assert analytics.call_counts == {"work": 160}
    assert list_runs(store)[0].calls == 150


def test_each_instance_is_one_run_and_flushes_replace_aggregates(tmp_path: Path) -> None:
    """Repeated flushes do not double counts; two instances are two runs, newest first."""
    store = tmp_path / "runs.db"
    first = Analytics(store=store)
    for _ in range(3):
        _record(first, 10)
        first.flush()
        first.flush()
    first.close()
    with Analytics(store=store) as second:
        _record(second, 5)
    runs = list_runs(store)
    assert [(r.calls, r.functions) for r in runs] == [(5, 1), (30, 1)]
    assert runs[0].id > runs[1].id
    assert load(store).call_counts == {"work": 35}


def test_store_path_in_the_config_works_like_store(tmp_path: Path) -> None:
    """The store_path config field attaches a store as store= does."""
    store = tmp_path / "runs.db"
    with Analytics({"store_path": str(store), "flush_interval": 60}) as analytics:
        _record(analytics, 3)
    assert load(store).call_counts == {"work": 3}


def test_an_instance_without_calls_leaves_no_run(tmp_path: Path) -> None:
    """A process that records nothing adds no empty run to the store."""
    store = tmp_path / "runs.db"
    Analytics(store=store).close()
    assert list_runs(store) == []


def test_stored_events_are_bounded_by_max_events(tmp_path: Path) -> None:
    """The store keeps a run's newest max_events calls, while aggregates count them all."""
    store = tmp_path / "runs.db"
    with Analytics(store=store, max_events=40) as analytics:
        for _ in range(5):
            _record(analytics, 30)
            analytics.flush()
        newest = [e.start for e in analytics.events]
    view = load(store)
    assert view.call_counts == {"work": 150}
    assert [e.start for e in view.events] == newest
    assert len(newest) == 40


def test_run_label_comes_from_the_environment_or_attach(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """CALLMETRICS_RUN_LABEL labels a run; attach_store(label=...) overrides it."""
    store = tmp_path / "runs.db"
    monkeypatch.setenv(LABEL_ENV, "nightly")
    with Analytics(store=store) as analytics:
        _record(analytics, 3)
    plain = Analytics()
    writer = attach_store(plain, store, label="manual")
    _record(plain, 2)
    writer.close()
    assert [(r.label, r.calls) for r in list_runs(store)] == [("manual", 2), ("nightly", 3)]
    assert load(store, label="nightly").call_counts == {"work": 3}


def test_background_thread_flushes_without_being_asked(tmp_path: Path) -> None:
    """Calls reach the store within a flush interval without flush() or close()."""
    store = tmp_path / "runs.db"
    analytics = Analytics(store=store, config={"flush_interval": 0.05})
    try:
        _record(analytics, 25)
        _wait_for(lambda: store.exists() and load(store).call_counts == {"work": 25},
                  "the background flush")
    finally:
        analytics.close()


def test_clear_old_events_prunes_the_stores_events(tmp_path: Path) -> None:
    """clear_old_events removes stored events too, while the run's aggregates stay."""
    store = tmp_path / "runs.db"
    with Analytics(store=store) as analytics:
        _record(analytics, 20)
        analytics.flush()
        assert len(load(store).events) == 20
        assert analytics.clear_old_events(days=0) == 20
        _record(analytics, 5)
    view = load(store)
    assert view.call_counts == {"work": 25}
    assert len(view.events) == 5


def test_prune_deletes_old_runs_and_old_events(tmp_path: Path) -> None:
    """prune() drops runs last written before the cutoff, with their rows, and older events."""
    store = tmp_path / "runs.db"
    with Analytics(store=store) as analytics:
        _record(analytics, 10)
    cutoff = time.time()
    with Analytics(store=store) as analytics:
        _record(analytics, 4)
    assert prune(store, cutoff - 3600) == (0, 0)
    assert prune(store, cutoff) == (1, 0)
    assert [r.calls for r in list_runs(store)] == [4]
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM functions").fetchone() == (1,)
    assert prune(store, time.time() + 10, vacuum=True) == (1, 0)
    assert list_runs(store) == []


def test_a_write_waits_for_another_writers_lock(tmp_path: Path) -> None:
    """flush() waits while another connection holds the write lock, then writes."""
    store = tmp_path / "runs.db"
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        other = sqlite3.connect(store, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(30)
        other.execute("COMMIT")
        other.close()

    with Analytics(store=store) as analytics:
        _record(analytics, 3)
        analytics.flush()
        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        assert locked.wait(30)
        _record(analytics, 4)
        threading.Timer(0.2, release.set).start()
        analytics.flush()  # blocks until the other connection commits
        assert release.is_set()
        holder.join(30)
        assert load(store).call_counts == {"work": 7}


def test_threads_recording_and_flushing_at_once_store_every_call_once(tmp_path: Path) -> None:
    """Threads calling and flushing concurrently leave exact counts and no duplicate events."""
    store = tmp_path / "runs.db"
    with Analytics(store=store, max_events=0, config={"flush_interval": 0.01}) as analytics:
        work = analytics.track("unit", name="work")(_spin)

        def worker() -> None:
            for i in range(5_000):
                work(i % 7)
                if i % 500 == 0:
                    analytics.flush()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Not a set: two calls 200 ns apart can share a start once it is a wall-clock
        # float (about 0.24 µs apart at today's epoch) and the same duration.
        recorded = Counter((call.start, call.duration) for call in analytics.retained())
    view = load(store)
    assert view.call_counts == {"work": 20_000}
    stored = Counter((e.start, e.duration) for e in view.events)
    assert sum(stored.values()) == 20_000
    assert stored == recorded


def test_a_live_run_pruned_by_another_process_is_written_again_whole(tmp_path: Path) -> None:
    """A quiet run pruned while its process lives reappears, complete, on the next write."""
    store = tmp_path / "runs.db"
    with Analytics(store=store) as analytics:
        _record(analytics, 5)
        analytics.flush()
        (before,) = list_runs(store)
        assert prune(store, time.time() + 1) == (1, 0)
        _record(analytics, 2)
        analytics.flush()
        (after,) = list_runs(store)
        assert (after.id, after.calls, after.functions, after.events) == (before.id, 7, 1, 2)


def test_merged_instances_sharing_a_store_count_each_call_once(tmp_path: Path) -> None:
    """After merge_with, the emptied instance's run drops its rows: nothing counts twice."""
    store = tmp_path / "runs.db"
    first, second = Analytics(store=store), Analytics(store=store)
    _record(first, 10)
    _record(second, 4)
    second.flush()
    first.merge_with(second)
    first.close()
    second.close()
    view = load(store)
    assert view.call_counts == {"work": 14}
    assert len(view.events) == 14


def test_a_merged_instance_that_records_on_stores_each_event_once(tmp_path: Path) -> None:
    """Calls recorded after merge_with by the emptied instance do not bring back its old events."""
    store = tmp_path / "runs.db"
    first, second = Analytics(store=store), Analytics(store=store)
    _record(first, 10)
    _record(second, 4)
    second.flush()
    first.merge_with(second)
    _record(second, 4)  # as many calls as before the merge: counts alone can't tell
    first.close()
    second.close()
    view = load(store)
    assert view.call_counts == {"work": 18}
    assert sorted(e.start for e in view.events) == sorted(
        e.start for e in first.events + second.events)
    assert view.get_stats()["total_time"] == pytest.approx(
        first.get_stats()["total_time"] + second.get_stats()["total_time"])


# ---------------------------------------------------------------------- bad files
def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('keep me')")
    # The context manager commits but does not close the connection.
    db.close()


def _foreign_wal_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")  # as many applications' databases are
    db.execute("CREATE TABLE notes (body TEXT)")
    db.close()


def _newer_store(path: Path) -> None:
    with Analytics(store=path) as analytics:
        _record(analytics, 1)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()


def _corrupt_store(path: Path) -> None:
    with Analytics(store=path) as analytics:
        _record(analytics, 1)
    data = bytearray(path.read_bytes())
    data[100:] = bytes(random.Random(3).randrange(256) for _ in range(len(data) - 100))
    path.write_bytes(bytes(data))


def _text_file(path: Path) -> None:
    path.write_text("name,calls\nwork,3\n")


def _empty_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 7")  # writes the header, no tables
    db.close()


@pytest.mark.parametrize(("make", "message"), [
    (_text_file, "not a SQLite database"),
    (_foreign_sqlite, "another application"),
    (_foreign_wal_sqlite, "another application"),
    (_empty_sqlite, "another application"),
    (_newer_store, "newer than this callmetrics"),
    (_corrupt_store, "corrupt"),
])
def test_a_file_that_is_not_a_usable_store_is_refused_and_left_untouched(
        tmp_path: Path, make: object, message: str) -> None:
    """Writing to or loading a foreign, corrupt or newer file raises StoreError; bytes stay."""
    assert callable(make)
    path = tmp_path / "file.db"
    make(path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=message):
        Analytics(store=path)
    with pytest.raises(StoreError, match=message):
        load(path)
    with pytest.raises(StoreError, match=message):
        prune(path, time.time())
    assert path.read_bytes() == before
    # No -wal or -shm beside it either (a corrupt store of ours is opened by SQLite, which
    # may add them: only a full read tells it is corrupt).
    left = sorted(p.name for p in tmp_path.iterdir() if make is not _corrupt_store
                  or p.name.endswith(".db"))
    assert left == ["file.db"]


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    """A directory given as the store is refused with a clear error."""
    with pytest.raises(StoreError, match="is a directory"):
        Analytics(store=tmp_path)


def test_missing_store_is_file_not_found_for_readers(tmp_path: Path) -> None:
    """load() and prune() of a missing file raise FileNotFoundError and create nothing."""
    path = tmp_path / "missing.db"
    with pytest.raises(FileNotFoundError, match="no such store"):
        load(path)
    with pytest.raises(FileNotFoundError, match="no such store"):
        prune(path, time.time())
    assert not path.exists()


def test_a_new_store_is_created_with_its_directory(tmp_path: Path) -> None:
    """A store path in a directory that does not exist yet is created on first use."""
    store = tmp_path / "nested" / "dir" / "runs.db"
    with Analytics(store=store) as analytics:
        _record(analytics, 2)
    assert load(store).call_counts == {"work": 2}


# ------------------------------------------------------------------ unwritable store
def test_unwritable_store_logs_once_and_tracking_goes_on(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A store that cannot be created never raises; calls are kept in memory; one log line."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = blocker / "runs.db"
    with caplog.at_level(logging.ERROR, logger="callmetrics.internal"):
        analytics = Analytics(store=store, config={"flush_interval": 0.05})
        _record(analytics, 30, fail_every=5)
        analytics.flush()
        analytics.flush()
        assert analytics.clear_old_events(days=1) == 0
        analytics.close()
    assert analytics.call_counts == {"work": 30}
    lines = [r for r in caplog.records if str(store) in r.getMessage()
             and r.name == "callmetrics.internal"]
    assert len(lines) == 1
    assert "writing the store" in lines[0].getMessage()
    # close() says, in one line, what could not be written, and why.
    [lost] = [r.getMessage() for r in caplog.records if r.name == "callmetrics.store"]
    assert lost.startswith("30 calls recorded since the last write were not written")
    assert "NotADirectoryError" in lost


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable, even for root (which ignores permission bits)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    # Root needs the immutable attribute (e2fsprogs' chattr, on ext2/3/4 file systems).
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], check=False,
                                        capture_output=True).returncode != 0:
        pytest.skip("running as root and chattr +i is not available to make a folder read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_read_only_directory_keeps_tracking_in_memory(tmp_path: Path) -> None:
    """A store in a read-only directory is logged, not raised, and calls still count."""
    folder = tmp_path / "ro"
    folder.mkdir()
    with _read_only(folder):
        with Analytics(store=folder / "runs.db") as analytics:
            _record(analytics, 10)
        assert analytics.call_counts == {"work": 10}
        assert not (folder / "runs.db").exists()


def test_a_store_in_a_read_only_directory_can_still_be_read(tmp_path: Path) -> None:
    """load() and list_runs() read a closed store whose directory the reader cannot write."""
    folder = tmp_path / "ro"
    folder.mkdir()
    store = folder / "runs.db"
    with Analytics(store=store) as analytics:
        _record(analytics, 7)
    with _read_only(folder):
        assert load(store).call_counts == {"work": 7}
        assert [r.calls for r in list_runs(store)] == [7]
    assert sorted(p.name for p in folder.iterdir()) == ["runs.db"]


def test_a_store_that_cannot_be_opened_is_logged_not_called_corrupt(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A sound store SQLite can't open (WAL left, folder read-only) is no 'corrupt' StoreError."""
    source, folder = tmp_path / "source", tmp_path / "ro"
    folder.mkdir()
    with Analytics(store=source / "runs.db") as analytics:
        _record(analytics, 3)
    reader = sqlite3.connect(source / "runs.db")  # while open, the -wal file exists
    reader.execute("SELECT count(*) FROM runs").fetchone()
    for name in ("runs.db", "runs.db-wal"):  # as a copy taken mid-run, without the -shm
        shutil.copyfile(source / name, folder / name)
    reader.close()
    store = folder / "runs.db"
    with _read_only(folder):
        with pytest.raises(StoreError, match="cannot read") as raised:
            load(store)
        assert "corrupt" not in str(raised.value)
        with caplog.at_level(logging.ERROR, logger="callmetrics.internal"):
            analytics = Analytics(store=store)  # can't be written: logged, not raised
            _record(analytics, 2)
            analytics.close()
        assert analytics.call_counts == {"work": 2}
        assert any(str(store) in r.getMessage() for r in caplog.records)


def test_disk_full_mid_run_never_raises_into_the_program(tmp_path: Path) -> None:
    """When the file system refuses to grow the store, calls go on and one error is logged."""
    store = tmp_path / "runs.db"
    result = _run_python("""
        import logging, os, resource, signal, sys
        from callmetrics import Analytics
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
        logging.basicConfig(level=logging.ERROR, format="%(message)s")
        analytics = Analytics(store=sys.argv[1], max_events=0, config={"flush_interval": 3600})

        @analytics.track("unit")
        def work(i):
            return i

        work(0)
        analytics.flush()
        limit = 256 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        for i in range(60_000):
            work(i)
        analytics.flush()
        analytics.close()
        print(sum(analytics.call_counts.values()))
    """, str(store))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["60001"]
    errors = [line for line in result.stderr.splitlines() if "writing the store" in line]
    assert len(errors) == 1, result.stderr
    assert load(store).call_counts == {"work": 1}


# --------------------------------------------------------------- process lifetime
def test_clean_exit_without_close_loses_nothing(tmp_path: Path) -> None:
    """A program that never calls flush() or close() has every call stored at exit."""
    store = tmp_path / "runs.db"
    result = _run_python("""
        import sys
        from callmetrics import Analytics
        analytics = Analytics(store=sys.argv[1], config={"flush_interval": 3600})
        work = analytics.track("unit", name="work")(lambda i: i)
        for i in range(1234):
            work(i)
    """, str(store))
    assert result.returncode == 0, result.stderr
    (run,) = list_runs(store)
    assert (run.calls, run.closed, run.events) == (1234, True, 1234)


def test_hard_kill_keeps_what_the_last_flush_wrote(tmp_path: Path) -> None:
    """A killed process leaves its calls up to the last background flush, as an open run."""
    store = tmp_path / "runs.db"
    code = textwrap.dedent("""
        import sys, time
        from callmetrics import Analytics
        analytics = Analytics(store=sys.argv[1], config={"flush_interval": 0.05})
        work = analytics.track("unit", name="work")(lambda i: i)
        for i in range(1000):
            work(i)
        print("recorded", flush=True)
        while True:
            time.sleep(1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code, str(store)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "recorded"
        _wait_for(lambda: store.exists() and [r.calls for r in list_runs(store)] == [1000],
                  "the background flush of the child")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    (run,) = list_runs(store)
    assert (run.calls, run.closed) == (1000, False)
    assert load(store).call_counts == {"work": 1000}


def _fork_child(path: str, calls: int) -> None:
    # The module-level instance of a program, inherited by a forked worker.
    work = _INHERITED[path].track("unit", name="work")(_spin)
    for i in range(calls):
        work(i % 10)


_INHERITED: dict[str, Analytics] = {}


@pytest.mark.skipif(sys.platform == "win32", reason="fork needs a POSIX system")
@FORKS_WITH_THREADS
def test_forked_workers_write_their_own_runs(tmp_path: Path) -> None:
    """A fresh instance inherited through fork becomes one run per worker, finished at exit."""
    store = tmp_path / "runs.db"
    parent = _INHERITED[str(store)] = Analytics(store=store)
    try:
        ctx = multiprocessing.get_context("fork")
        workers = [ctx.Process(target=_fork_child, args=(str(store), 100 * (i + 1)))
                   for i in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
    finally:
        parent.close()
        del _INHERITED[str(store)]
    runs = list_runs(store)
    assert sorted(r.calls for r in runs) == [100, 200]
    assert all(r.closed and r.pid != os.getpid() for r in runs)


@pytest.mark.skipif(sys.platform == "win32", reason="fork needs a POSIX system")
@FORKS_WITH_THREADS
def test_forked_copy_with_inherited_calls_stays_quiet(tmp_path: Path) -> None:
    """A child inheriting already-recorded calls does not write them a second time."""
    store = tmp_path / "runs.db"
    parent = _INHERITED[str(store)] = Analytics(store=store)
    try:
        _record(parent, 5)
        ctx = multiprocessing.get_context("fork")
        worker = ctx.Process(target=_fork_child, args=(str(store), 50))
        worker.start()
        worker.join(60)
        assert worker.exitcode == 0
    finally:
        parent.close()
        del _INHERITED[str(store)]
    assert [(r.calls, r.pid) for r in list_runs(store)] == [(5, os.getpid())]


class _SlowFirstRead:
    """A Source over an Analytics whose first snapshot() waits to be released."""

    def __init__(self, analytics: Analytics) -> None:
        self.analytics = analytics
        self.held, self.release = threading.Event(), threading.Event()

    @property
    def settings(self) -> AnalyticsConfig:
        return self.analytics.settings

    def snapshot(self) -> list[FunctionSnapshot]:
        if not self.held.is_set():
            self.held.set()
            self.release.wait(30)
        return self.analytics.snapshot()

    def retained(self) -> list[RetainedCall]:
        return self.analytics.retained()

    def read(self) -> Reading:
        return Reading(self.snapshot(), self.retained())


@pytest.mark.skipif(sys.platform == "win32", reason="fork needs a POSIX system")
@FORKS_WITH_THREADS
def test_a_fork_while_the_flush_thread_reads_still_writes_the_childs_run(
        tmp_path: Path) -> None:
    """A fork while the flush thread is reading the recorder neither hangs nor mutes the child."""
    store = tmp_path / "runs.db"
    parent = _INHERITED[str(store)] = Analytics(config={"flush_interval": 0.01})
    source = _SlowFirstRead(parent)
    writer = attach_store(source, store)
    try:
        assert source.held.wait(30)  # the flush thread is inside the read
        threading.Timer(0.2, source.release.set).start()
        worker = multiprocessing.get_context("fork").Process(target=_fork_child,
                                                             args=(str(store), 50))
        worker.start()
        worker.join(60)
        if worker.exitcode is None:
            worker.kill()
            worker.join()
        assert worker.exitcode == 0
    finally:
        source.release.set()
        writer.close()
        del _INHERITED[str(store)]
    assert [(r.calls, r.closed) for r in list_runs(store)] == [(50, True)]


POOL_PROGRAM = """
import multiprocessing, sys
from callmetrics import Analytics

analytics = Analytics(store=sys.argv[2])  # one per process: each worker imports this module

@analytics.track("job")
def resize(path):
    return path.upper()

if __name__ == "__main__":
    with multiprocessing.get_context(sys.argv[1]).Pool(3) as pool:
        pool.map(resize, [f"p{i}" for i in range(3000)], chunksize=10)
        pool.close()
        pool.join()
"""


@pytest.mark.parametrize("method", multiprocessing.get_all_start_methods())
def test_pool_recipe_keeps_every_call(tmp_path: Path, method: str) -> None:
    """The README's pool program stores every call, one closed run per busy worker."""
    program = tmp_path / "pool.py"
    program.write_text(POOL_PROGRAM)
    store = tmp_path / "runs.db"
    result = subprocess.run([sys.executable, str(program), method, str(store)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    runs = list_runs(store)
    assert sum(r.calls for r in runs) == 3000
    assert all(r.closed and r.program == "pool.py" for r in runs)
    assert load(store).call_counts == {"resize": 3000}


# ------------------------------------------------------------------ many processes
PROCESSES = 4
CALLS = 20_000


def _store_worker(path: str, index: int, barrier: Barrier) -> None:
    """Record CALLS calls of varying length into the shared store, flushing as it goes."""
    barrier.wait(60)  # every process creates and writes the new store at the same moment
    analytics = Analytics(store=path, max_events=CALLS, config={"flush_interval": 0.05})
    work = analytics.track("unit", name="work")(_spin)
    rng = random.Random(index)
    for i in range(CALLS):
        work(rng.randrange(300))
        if i % 2_000 == 1_999:
            analytics.flush()
    analytics.close()


def test_four_processes_write_one_store_without_losing_a_call(tmp_path: Path) -> None:
    """4 spawned processes x 20,000 calls read back as exactly 80,000, percentiles within 1%."""
    store = tmp_path / "shared.db"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    workers = [ctx.Process(target=_store_worker, args=(str(store), i, barrier))
               for i in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(180)
    assert [w.exitcode for w in workers] == [0] * PROCESSES

    runs = list_runs(store)
    assert sorted((r.calls, r.events, r.closed) for r in runs) == [(CALLS, CALLS, True)] * 4
    assert len({r.pid for r in runs}) == PROCESSES
    view = load(store)
    assert view.call_counts == {"work": PROCESSES * CALLS}
    durations = [event.duration for event in view.events]
    assert len(durations) == PROCESSES * CALLS
    # The same durations recorded by one process give this sketch (merging is exact).
    single = DurationSketch()
    for duration in durations:
        single.add(duration)
    exact = sorted(durations)
    stats = view.get_stats()
    assert stats["total_calls"] == PROCESSES * CALLS
    assert stats["total_time"] == pytest.approx(math.fsum(durations), rel=1e-9)
    for key, q in (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99)):
        assert stats[key] == pytest.approx(single.quantile(q), rel=0.01), key
        assert stats[key] == pytest.approx(exact[math.floor(q * (len(exact) - 1))],
                                           rel=0.01), key
