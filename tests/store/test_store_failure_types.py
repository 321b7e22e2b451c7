"""Schema version 4: failures by exception type and CPU time, written, read, migrated."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from callmetrics import Analytics, LoggerContainer, StoreError
from callmetrics._load import read_view
from callmetrics._store.schema import SCHEMA_VERSION
from store_helpers import run_workers

FIXTURE_V1 = Path(__file__).parents[1] / "data" / "store_v1.db"

WORKER = """
import sys
from callmetrics import Analytics

errors = {"value": ValueError, "key": KeyError, "os": OSError}
with Analytics(store=sys.argv[1]) as analytics:
    @analytics.track("job", name="work")
    def work(fail):
        if fail:
            raise errors[fail]("on purpose")

    for kind, count in zip(sys.argv[2::2], sys.argv[3::2]):
        for _ in range(int(count)):
            try:
                work(None if kind == "ok" else kind)
            except Exception:
                pass
"""


def write_run(store: Path, quiet: LoggerContainer, **counts: int) -> None:
    """One run in this process: ``ok`` successes, then failures by kind (value, key)."""
    errors: dict[str, type[Exception]] = {"value": ValueError, "key": KeyError}
    with Analytics(store=store, loggers=quiet) as analytics:
        @analytics.track("job", name="work")
        def work(kind: str) -> None:
            if kind != "ok":
                raise errors[kind]("on purpose")

        for kind, count in counts.items():
            for _ in range(count):
                with contextlib.suppress(ValueError, KeyError):
                    work(kind)


def _execute(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def as_version_3(path: Path) -> None:
    """Turn a store into the layout schema version 3 wrote (the two columns dropped)."""
    _execute(path, "ALTER TABLE functions DROP COLUMN failure_types",
             "ALTER TABLE functions DROP COLUMN cpu_time", "PRAGMA user_version = 3",
             "UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def test_counts_by_type_and_cpu_time_go_through_the_store(tmp_path: Path,
                                                          quiet: LoggerContainer) -> None:
    """Written as JSON adding up to failures; CPU time NULL (not measured), read as None."""
    store = tmp_path / "runs.db"
    write_run(store, quiet, ok=10, value=4, key=2)
    [snap] = read_view(store).snapshot()
    assert snap.failures_by_type == {"ValueError": 4, "KeyError": 2}
    assert snap.cpu_time is None
    conn = sqlite3.connect(store)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert conn.execute("SELECT cpu_time FROM functions").fetchone() == (None,)
    conn.close()
    _execute(store, "UPDATE functions SET cpu_time = 0.25")
    [snap] = read_view(store).snapshot()
    assert snap.cpu_time == 0.25


def test_runs_of_several_processes_add_up_by_type(tmp_path: Path) -> None:
    """Three processes write one store; the view's counts by type are their exact sums."""
    store = tmp_path / "runs.db"
    plans = [["ok", "50", "value", "7"], ["key", "3", "value", "1"], ["os", "2", "ok", "9"]]
    codes = run_workers(WORKER, [[str(store), *plan] for plan in plans], quiet=True)
    assert codes == [0, 0, 0]
    [snap] = read_view(store).snapshot()
    assert (snap.calls, snap.failures) == (72, 13)
    assert snap.failures_by_type == {"ValueError": 8, "KeyError": 3, "OSError": 2}
    assert read_view(store).to_dict()["functions"][0]["failures_by_type"] == {
        "ValueError": 8, "KeyError": 3, "OSError": 2}


def test_a_version_3_store_reads_its_failure_types_as_unknown(tmp_path: Path,
                                                              quiet: LoggerContainer) -> None:
    """Rows before version 4 know the number of failures, not their types: '(unknown)'."""
    store = tmp_path / "old.db"
    write_run(store, quiet, ok=5, value=3)
    as_version_3(store)
    [snap] = read_view(store).snapshot()
    assert snap.failures == 3
    assert snap.failure_types() == {"(unknown)": 3}
    assert snap.cpu_time is None
    assert read_view(store).to_dict()["functions"][0]["failures_by_type"] == {"(unknown)": 3}


def test_a_version_3_store_is_migrated_and_old_rows_stay_unknown(tmp_path: Path,
                                                                 quiet: LoggerContainer) -> None:
    """A writer brings the file to version 4; old rows NULL, new ones typed, merged exactly."""
    store = tmp_path / "old.db"
    write_run(store, quiet, ok=5, value=3)
    as_version_3(store)
    write_run(store, quiet, ok=1, key=2)
    conn = sqlite3.connect(store)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT run_id, failure_types, cpu_time FROM functions "
                        "ORDER BY run_id").fetchall() == [(1, None, None),
                                                          (2, '{"KeyError":2}', None)]
    conn.close()
    [snap] = read_view(store).snapshot()
    assert snap.failure_types() == {"(unknown)": 3, "KeyError": 2}
    assert sum(snap.failure_types().values()) == snap.failures == 5


def test_a_version_1_store_still_loads_with_types_unknown(tmp_path: Path) -> None:
    """The version-1 fixture loads; its failures are of unknown type."""
    store = tmp_path / "v1.db"
    store.write_bytes(FIXTURE_V1.read_bytes())
    snaps = {snap.name: snap for snap in read_view(store).snapshot()}
    assert all(snap.failure_types() == ({"(unknown)": snap.failures} if snap.failures else {})
               for snap in snaps.values())
    assert any(snap.failures for snap in snaps.values())


@pytest.mark.parametrize(("value", "rule"), [
    ("'not json'", "not JSON"),
    ("'[1, 2]'", "JSON object"),
    ("'{\"ValueError\": 99}'", "from 0 to failures"),
    ("'{\"ValueError\": 1}'", "add up to failures"),
    ("'{\"\": 2}'", "non-empty"),
    ("'{\"ValueError\": 1.5, \"KeyError\": 0.5}'", "integers"),
    ("X'7B7D'", "JSON text"),  # a blob, not text
])
def test_a_damaged_failure_types_value_is_refused_naming_it(tmp_path: Path,
                                                            quiet: LoggerContainer,
                                                            value: str, rule: str) -> None:
    """What is read from disk is checked: a bad value names the field and the rule."""
    store = tmp_path / "runs.db"
    write_run(store, quiet, ok=1, value=2)
    _execute(store, f"UPDATE functions SET failure_types = {value}")  # noqa: S608  # the test's own values
    with pytest.raises(StoreError, match=rf"functions\.failure_types.*{rule}"):
        read_view(store)


def test_a_damaged_cpu_time_is_refused_naming_it(tmp_path: Path,
                                                 quiet: LoggerContainer) -> None:
    """A negative or non-numeric CPU time names functions.cpu_time."""
    store = tmp_path / "runs.db"
    write_run(store, quiet, ok=2)
    _execute(store, "UPDATE functions SET cpu_time = -1")
    with pytest.raises(StoreError, match=r"functions\.cpu_time"):
        read_view(store)
