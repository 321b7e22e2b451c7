"""Thread CPU time (``cpu_time=True``) through the store: written, read, merged exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from callmetrics import Analytics, StoreError
from callmetrics._load import read_view
from store_helpers import run_workers

WORKER = """
import sys, time
from callmetrics import Analytics

with Analytics(store=sys.argv[1], cpu_time=sys.argv[2] == "on") as analytics:
    @analytics.track("job", name="work")
    def work():
        began = time.thread_time()
        x = 0
        while time.thread_time() - began < 0.005:
            x += 1

    for _ in range(int(sys.argv[3])):
        work()
    # What this process measured, as the store should hold it, in a file of its own.
    with open(sys.argv[4], "w") as out:
        out.write(repr(analytics.snapshot()[0].cpu_time))
"""


def test_round_trip_keeps_each_function_cpu_time(tmp_path: Path) -> None:
    """What an instance measured is what the stored run reads back; a block's too."""
    store = tmp_path / "runs.db"
    with Analytics(store=store, cpu_time=True) as analytics:
        work = analytics.track("job", name="work")(lambda: sum(range(10_000)))
        for _ in range(20):
            work()
        with analytics.measure("blk"):
            sum(range(10_000))
        live = {s.name: s.cpu_time for s in analytics.snapshot()}
    assert all(value is not None and value > 0 for value in live.values())
    assert {s.name: s.cpu_time for s in read_view(store).snapshot()} == live
    conn = sqlite3.connect(store)
    stored = dict(conn.execute("SELECT name, cpu_time FROM functions"))
    conn.close()
    assert stored == live


def test_runs_of_several_processes_add_up_exactly(tmp_path: Path) -> None:
    """Three processes write one store: the view's CPU time is the sum of what each measured."""
    store = tmp_path / "runs.db"
    plans = [["on", "3"], ["on", "5"], ["on", "2"]]
    outs = [tmp_path / f"measured-{i}.txt" for i in range(len(plans))]
    codes = run_workers(WORKER, [[str(store), *plan, str(out)]
                                  for plan, out in zip(plans, outs, strict=True)], quiet=True)
    assert codes == [0, 0, 0]
    measured = [float(out.read_text()) for out in outs]
    [snap] = read_view(store).snapshot()
    assert snap.calls == 10
    assert snap.cpu_time == pytest.approx(sum(measured), rel=1e-12)
    assert read_view(store).to_dict()["totals"]["cpu_time"] == pytest.approx(sum(measured),
                                                                             rel=1e-12)


def test_a_run_without_cpu_time_makes_the_merged_figure_unknown(tmp_path: Path) -> None:
    """One run measured, one not: the CPU time over both is unknown (None), not a part."""
    store = tmp_path / "runs.db"
    for cpu_time in (True, False):
        with Analytics(store=store, cpu_time=cpu_time) as analytics:
            analytics.track("job", name="work")(lambda: None)()
    assert [s.cpu_time for s in read_view(store).snapshot()] == [None]
    conn = sqlite3.connect(store)
    stored = [row[0] for row in conn.execute("SELECT cpu_time FROM functions ORDER BY run_id")]
    conn.close()
    assert stored[0] is not None
    assert stored[1] is None  # not measured: NULL, never 0


@pytest.mark.parametrize("bad", [-1.0, "'fast'"])
def test_a_bad_stored_cpu_time_is_refused_on_read(tmp_path: Path, bad: object) -> None:
    """What is read from disk is checked: a negative or non-numeric CPU time is an error."""
    store = tmp_path / "runs.db"
    with Analytics(store=store, cpu_time=True) as analytics:
        analytics.track("job", name="work")(lambda: None)()
    conn = sqlite3.connect(store)
    conn.execute(f"UPDATE functions SET cpu_time = {bad}")  # noqa: S608  # test values
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="cpu_time"):
        read_view(store).snapshot()
