"""Long names: bounded at record time, and a damaged row spoils only its own run."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from callmetrics import Analytics, StoreError, load
from callmetrics._engine.recorder import NAME_LIMIT
from callmetrics._store.runs import read_stored

LONG = "n" * 100_001


def test_a_long_name_is_cut_with_its_full_length_noted() -> None:
    """track(name=...), measure() and the event type all keep at most NAME_LIMIT characters."""
    analytics = Analytics()
    analytics.track("unit", name=LONG)(lambda: None)()
    with analytics.measure("b" * 5000, event_type="t" * 2000):
        pass
    names = sorted(analytics.call_counts)
    assert [len(n) <= NAME_LIMIT for n in names] == [True, True]
    assert names[0].startswith("bbb")
    assert names[0].endswith("… (5,000 characters)")
    assert names[1].startswith("nnn")
    assert names[1].endswith("… (100,001 characters)")
    assert all(len(snap.event_type) <= NAME_LIMIT for snap in analytics.snapshot())


def test_a_store_written_with_a_long_name_reads_back(tmp_path: Path) -> None:
    """A 100,001-character name no longer makes `callmetrics stats STORE` call the store damaged."""
    store = tmp_path / "runs.db"
    with Analytics(store=store) as analytics:
        analytics.track("unit", name=LONG)(lambda: None)()
    proc = subprocess.run([sys.executable, "-m", "callmetrics", "stats", str(store)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[:2000]
    assert len(proc.stderr) < 1000


def _two_runs(store: Path) -> None:
    for name in ("first", "second"):
        with Analytics(store=store) as analytics:
            work = analytics.track("unit", name=name)(lambda: None)
            for _ in range(3):
                work()


def _damage_first_run(store: Path) -> None:
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE functions SET name = ? WHERE name = 'first'", (LONG,))
        conn.execute("UPDATE events SET function = ? WHERE function = 'first'", (LONG,))
    conn.close()


def test_a_damaged_row_makes_only_its_run_unreadable(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The other runs still read; the warning names the run and echoes a short prefix only."""
    store = tmp_path / "runs.db"
    _two_runs(store)
    _damage_first_run(store)
    with caplog.at_level(logging.WARNING, logger="callmetrics.store"):
        assert load(store).call_counts == {"second": 3}
    (record,) = [r for r in caplog.records if "damaged" in r.getMessage()]
    assert "run 1" in record.getMessage()
    assert len(record.getMessage()) < 600


def test_a_damaged_run_asked_for_by_id_still_raises_briefly(tmp_path: Path) -> None:
    """Asking for that very run raises StoreError, whose message does not echo the whole name."""
    store = tmp_path / "runs.db"
    _two_runs(store)
    _damage_first_run(store)
    with pytest.raises(StoreError, match="is damaged: run 1") as caught:
        read_stored(store, runs=[1])
    assert len(str(caught.value)) < 600
    snaps, _ = read_stored(store, runs=[2])
    assert [s.name for s in snaps] == ["second"]


def test_stats_of_a_store_with_a_damaged_run_shows_the_rest(tmp_path: Path) -> None:
    """`callmetrics stats STORE` answers for the readable runs (exit 0), briefly warned."""
    store = tmp_path / "runs.db"
    _two_runs(store)
    _damage_first_run(store)
    proc = subprocess.run([sys.executable, "-m", "callmetrics", "stats", str(store)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[:2000]
    assert "second" in proc.stdout
    assert len(proc.stderr) < 1000
