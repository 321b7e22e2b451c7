"""Reading stores back: choosing runs, the merged view, and the run list."""

from __future__ import annotations

import contextlib
import io
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.console import Console

from callmetrics import Analytics, StoreError, load
from callmetrics._store import attach_store
from callmetrics._store.runs import list_runs, since_to_unix
from store_helpers import record_calls, snapshot, write_run


def test_load_merges_every_run_by_default(tmp_path: Path) -> None:
    """Without filters the view adds up every run's calls, events and sketches."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 10)
    record_calls(store, "a", 5)
    record_calls(store, "b", 3)
    view = load(store)
    assert view.call_counts == {"a": 15, "b": 3}
    assert len(view.events) == 18
    assert view.get_stats()["event_count"] == 18
    assert view.get_stats("b")["total_calls"] == 3
    assert [e.start for e in view.events] == sorted(e.start for e in view.events)


def test_load_chooses_runs_by_id_label_and_time(tmp_path: Path) -> None:
    """runs=, label= and since= pick runs, and combine as AND."""
    store = tmp_path / "runs.db"
    write_run(store, {"a": [0.1]}, label="old")
    middle = time.time()
    write_run(store, {"a": [0.2, 0.2]}, label="new")
    write_run(store, {"a": [0.3] * 3}, label="new")
    ids = sorted(r.id for r in list_runs(store))
    assert load(store, runs=[ids[0], ids[2]]).call_counts == {"a": 4}
    assert load(store, label="new").call_counts == {"a": 5}
    assert load(store, since=middle).call_counts == {"a": 5}
    assert load(store, since=datetime.fromtimestamp(middle)).call_counts == {"a": 5}
    assert load(store, since=timedelta(days=1)).call_counts == {"a": 6}
    assert load(store, label="new", runs=[ids[0], ids[1]]).call_counts == {"a": 2}
    assert load(store, label="none such").call_counts == {}
    assert load(store, since=time.time() + 60).get_stats()["total_calls"] == 0


def test_unknown_run_ids_and_bad_filters_are_errors(tmp_path: Path) -> None:
    """A run id not in the store is a StoreError naming it; wrong types are TypeErrors."""
    store = tmp_path / "runs.db"
    write_run(store, {"a": [0.1]})
    with pytest.raises(StoreError, match="no run 41, 42"):
        load(store, runs=[42, 41, 1])
    with pytest.raises(TypeError, match="since"):
        load(store, since="2d")  # type: ignore[arg-type]  # the mistake under test
    with pytest.raises(TypeError, match="runs"):
        load(store, runs=["1"])  # type: ignore[list-item]  # the mistake under test
    with pytest.raises(TypeError, match="label"):
        load(store, label=3)  # type: ignore[arg-type]  # the mistake under test


def test_view_percentiles_merge_runs_exactly(tmp_path: Path) -> None:
    """Percentiles of a merged view equal those of one sketch holding every duration."""
    store = tmp_path / "runs.db"
    first = [0.001 * (i + 1) for i in range(100)]
    second = [0.5 + 0.01 * i for i in range(50)]
    write_run(store, {"a": first})
    write_run(store, {"a": second})
    whole = snapshot("a", first + second).sketch
    stats = load(store).get_stats()
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        assert stats[key] == whole.quantile(q)
    assert stats["min_duration"] == 0.001
    assert stats["max_duration"] == second[-1]


def test_view_prints_a_summary_and_writes_a_report(tmp_path: Path) -> None:
    """print_summary and generate_reports work on a loaded view as on a live instance."""
    store = tmp_path / "runs.db"
    record_calls(store, "fetch_user", 20)
    view = load(store)
    out = io.StringIO()
    view.print_summary(Console(file=out, width=160))
    assert "fetch_user" in out.getvalue()
    report = view.generate_reports(path=tmp_path / "report.html")
    assert report is not None
    assert "fetch_user" in report.read_text(encoding="utf-8")


def test_loading_never_changes_the_store(tmp_path: Path) -> None:
    """Reading a store, and tracking on the view, leaves the file's bytes as they were."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 5)
    before = store.read_bytes()
    view = load(store)
    view.track("unit", name="a")(lambda: None)()
    list_runs(store)
    assert view.call_counts == {"a": 6}
    assert store.read_bytes() == before
    assert load(store).call_counts == {"a": 5}


def test_runs_are_listed_newest_first_with_their_totals(tmp_path: Path) -> None:
    """list_runs gives each run's label, process, state and counts, newest first."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 4, label="first")
    record_calls(store, "b", 7, label="second")
    runs = list_runs(store)
    assert [(r.label, r.calls, r.functions, r.events, r.closed) for r in runs] == [
        ("second", 7, 1, 7, True), ("first", 4, 1, 4, True)]
    assert runs[0].started >= runs[1].started
    assert runs[0].host
    assert runs[0].program


def test_a_view_of_an_open_run_shows_what_was_flushed(tmp_path: Path) -> None:
    """A run still being written reads back as of its last flush."""
    store = tmp_path / "runs.db"
    with Analytics(store=store) as live:
        work = live.track("unit", name="a")(lambda: None)
        for _ in range(3):
            work()
        live.flush()
        work()
        assert load(store).call_counts == {"a": 3}
        assert [r.closed for r in list_runs(store)] == [False]
    assert load(store).call_counts == {"a": 4}


def test_a_store_read_while_another_thread_creates_it_is_never_called_corrupt(
        tmp_path: Path) -> None:
    """Reads racing a store's creation see no runs or its runs, never a damaged file.

    A new store's first transaction is not yet in WAL mode, so a lock-free read may
    catch its pages half-written; such a read must be made again, through the locks.
    The race is rare: many stores are created, and each read as soon as it has content.
    """
    for i in range(300):
        path = tmp_path / f"runs-{i}.db"
        created = threading.Event()

        def create(path: Path = path, created: threading.Event = created) -> None:
            try:
                analytics = Analytics(store=path)
                analytics.track("unit")(len)("x")
                analytics.close()
            finally:
                created.set()

        writer = threading.Thread(target=create)
        writer.start()
        try:
            while not created.is_set():
                if path.exists() and path.stat().st_size:
                    assert len(list_runs(path)) <= 1
        finally:
            writer.join()
        assert len(list_runs(path)) == 1


def test_since_accepts_unix_time_datetime_and_timedelta() -> None:
    """since_to_unix turns each accepted form into Unix seconds."""
    assert since_to_unix(1_000.5) == 1_000.5
    moment = datetime(2026, 1, 2, 3, 4, 5)
    assert since_to_unix(moment) == moment.timestamp()
    assert since_to_unix(timedelta(hours=1)) == pytest.approx(time.time() - 3600, abs=5)
    with pytest.raises(TypeError):
        since_to_unix(True)


# ------------------------------------------------------------- any tampered value
_T = TypeVar("_T")
_COLUMNS = {
    "runs": ["label", "pid", "host", "program", "started", "ended", "closed"],
    "functions": ["name", "event_type", "module", "calls", "successes", "failures", "total",
                  "min", "max", "fast", "medium", "slow", "overhead", "sketch",
                  "slowest_start", "slowest_duration", "slowest_error", "fastest_start",
                  "fastest_duration", "fastest_error", "slowest_message"],
    "events": ["start", "duration", "error", "function", "message", "location"],
}
_VALUES = (st.none() | st.integers(-2 ** 63, 2 ** 63 - 1) | st.floats()
           | st.text(max_size=30) | st.binary(max_size=8)
           | st.sampled_from(["NaN", "lots", "1e300", "{}", '{"count": 1}']))


def _outcome(read: Callable[[Path], _T], path: Path) -> _T | StoreError:
    try:
        return read(path)
    except StoreError as exc:
        return exc


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed store of one run with successes and failures."""
    path = tmp_path_factory.mktemp("template") / "runs.db"
    analytics = Analytics()
    writer = attach_store(analytics, path)
    work = analytics.track("unit", name="work")(lambda i: 1 // (i % 5))
    for i in range(50):
        with contextlib.suppress(ZeroDivisionError):
            work(i)
    writer.close()
    return path


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from(sorted(_COLUMNS)), data=st.data())
def test_any_tampered_value_loads_correctly_or_is_a_store_error(
        template: Path, tmp_path: Path, table: str, data: st.DataObject) -> None:
    """Whatever one stored value becomes, readers give a usable view or a StoreError."""
    column = data.draw(st.sampled_from(_COLUMNS[table]))
    value = data.draw(_VALUES)
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        path = Path(folder) / "runs.db"
        shutil.copyfile(template, path)
        conn = sqlite3.connect(path)
        try:
            conn.execute(f"UPDATE {table} SET {column} = ?", (value,))  # noqa: S608  # test's own names
            conn.commit()
        except sqlite3.IntegrityError:
            assume(False)  # NOT NULL: the schema itself refuses the value
        finally:
            conn.close()
        runs = _outcome(list_runs, path)
        if isinstance(runs, StoreError):
            assert "run 1: " in str(runs)
        else:
            assert [run.id for run in runs] == [1]
        view = _outcome(load, path)
        if isinstance(view, StoreError):
            assert f"run 1: {table}." in str(view)
            return
        view.get_stats()
        view.to_dict()
        assert sum(view.call_counts.values()) == 50
        view.print_summary(Console(file=io.StringIO(), width=120))


def test_a_loaded_store_keeps_each_failures_message_and_location(tmp_path: Path) -> None:
    """A stored failure's details reach events, to_dict(), the extremes and the report."""
    store = tmp_path / "runs.db"
    with Analytics(store=store) as analytics:
        @analytics.track("io")
        def fetch(user: int) -> int:
            if user == 7:
                raise LookupError(f"user {user} not found")
            return user

        @analytics.track("io", name="explode")
        def explode() -> None:
            raise RuntimeError("once")

        for user in range(10):
            with contextlib.suppress(LookupError):
                fetch(user)
        with contextlib.suppress(RuntimeError):
            explode()
    view = load(store)
    (failed,) = [e for e in view.events if e["Error"] == "LookupError"]
    assert failed["Message"] == "user 7 not found"
    assert failed["Location"].endswith(" in fetch")
    groups = {g["error"]: g for g in view.to_dict()["errors"]}
    assert (groups["LookupError"]["message"], groups["LookupError"]["location"]) == (
        failed["Message"], failed["Location"])
    # The only call of `explode` is both its slowest and its fastest, details included.
    stats = view.get_stats(["explode"])
    for extreme in (stats["slowest"], stats["fastest"]):
        assert (extreme["Error"], extreme["Message"]) == ("RuntimeError", "once")
        assert extreme["Location"].endswith(" in explode")
    assert "user 7 not found" in view.render_report()
