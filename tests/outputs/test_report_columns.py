"""The report's fast path (the calls as columns) shows what the slow one (a tuple per call) does.

A realistic workload (benchmarks/service_workload.py: 36 functions, async handlers,
threads, failures whose messages carry ids, calls out of start order) is reported
twice: from ``Analytics`` (``read_columns``: no per-call object) and from a ``Source``
that only has ``read()`` (a ``RetainedCall`` per call, turned into columns one call at
a time).  Every figure, row and timeline array must be the same; and so for a view of
a store (checked a column at a time) against its calls checked row by row.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import sqlite3
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from callmetrics import Analytics, AnalyticsConfig, load
from callmetrics._engine.config import AnalyticsConfig as Settings
from callmetrics._engine.records import LoggerContainer
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._engine.view import Reading, RetainedCall, Source
from callmetrics._outputs.report import build_report
from callmetrics._store.bulk import bulk_calls
from callmetrics._store.checks import check_call

WORKLOAD = Path(__file__).parents[2] / "benchmarks" / "service_workload.py"


def _workload() -> ModuleType:
    spec = importlib.util.spec_from_file_location("service_workload", WORKLOAD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class OneCallAtATime:
    """A ``Source`` with no columnar read: the report takes the slow path."""

    def __init__(self, source: Source) -> None:
        """Show ``source`` through the ``Source`` protocol only."""
        self._source = source

    @property
    def settings(self) -> Settings:
        """The source's settings."""
        return self._source.settings

    def snapshot(self) -> list[FunctionSnapshot]:
        """The source's aggregates."""
        return self._source.snapshot()

    def retained(self) -> list[RetainedCall]:
        """The source's retained calls, a tuple each."""
        return self._source.retained()

    def read(self) -> Reading:
        """Aggregates and retained calls, a tuple per call."""
        return self._source.read()


def _figures(source: Source) -> dict[str, Any]:
    built = build_report(source, force_mode=True)
    del built["generated"]  # the time of the reading
    return built


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Analytics, Path]:
    """The service workload, retained in a ring that wrapped, and written to a store."""
    store = tmp_path_factory.mktemp("columns") / "runs.db"
    quiet = logging.getLogger(f"test.columns.{id(store)}")
    quiet.propagate = False  # the workload's failures are logged: not on the test's output
    quiet.addHandler(logging.NullHandler())
    analytics = Analytics(AnalyticsConfig(max_events=1_000), LoggerContainer(quiet, quiet, quiet),
                          store=store)
    _workload().run_service(analytics, scale=0.3)
    analytics.close()
    analytics.restore([], [], wall_time=2.0)  # a fixed wall time: both readings agree
    return analytics, store


def test_the_columns_hold_the_calls_a_reading_holds(recorded: tuple[Analytics, Path]) -> None:
    """read_columns() gives the same calls, in the same order, as read()."""
    analytics, _ = recorded
    calls = analytics.read().calls
    assert len(calls) == 1_000
    assert sum(s.calls for s in analytics.snapshot()) > 1_200  # the ring wrapped
    assert any(c.error is not None and c.message for c in calls)
    assert all(a.start <= b.start for a, b in itertools.pairwise(calls))
    assert analytics.read_columns().calls.calls() == calls


def test_a_live_report_is_the_same_either_way(recorded: tuple[Analytics, Path]) -> None:
    analytics, _ = recorded
    fast = _figures(analytics)
    assert fast["failure_group_count"] >= 1  # failures whose messages carry ids, grouped
    assert fast["timeline"]["x"]
    assert fast == _figures(OneCallAtATime(analytics))


def test_a_store_report_is_the_same_either_way(recorded: tuple[Analytics, Path]) -> None:
    """A view of the store (calls checked per column) reports as the row-by-row reading."""
    _, store = recorded
    view = load(store)
    assert len(view.retained()) == 1_000
    assert _figures(view) == _figures(OneCallAtATime(view))


def test_checking_per_column_reads_what_checking_per_row_does(
        recorded: tuple[Analytics, Path]) -> None:
    _, store = recorded
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT run_id, start, duration, error, function, message, "
                            "location FROM events ORDER BY start").fetchall()
    bulk = bulk_calls(rows)
    assert bulk is not None
    columns, runs = bulk
    assert columns.calls() == [check_call(store, row) for row in rows]
    assert list(runs) == [row[0] for row in rows]


GOOD = (1, 1.7e9, 0.5, None, "f", None, None)


@pytest.mark.parametrize("bad", [None, "soon", b"\x00", float("inf"), float("nan"), -1.0,
                                 1e12])
@pytest.mark.parametrize("column", [1, 2])
def test_a_bad_time_makes_the_bulk_check_give_way(bad: object, column: int) -> None:
    """Any start or duration the row check refuses, the column check refuses too."""
    row: list[object] = list(GOOD)
    row[column] = bad
    assert bulk_calls([GOOD, GOOD]) is not None
    assert bulk_calls([GOOD, tuple(row)]) is None


@pytest.mark.parametrize(("column", "bad"), [(4, None), (4, ""), (4, b"f"), (4, 3), (3, b"E"),
                                             (5, 7), (6, "x" * 100_001)])
def test_a_bad_text_makes_the_bulk_check_give_way(column: int, bad: object) -> None:
    """A function that is not a name, an error, message or location that is not text."""
    row: list[object] = list(GOOD)
    row[column] = bad
    assert bulk_calls([GOOD, tuple(row)]) is None
