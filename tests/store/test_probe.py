"""The machine-speed probe: recorded with every run, within its budget, checked on reading."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from callmetrics import Analytics, AnalyticsConfig
from callmetrics._store import StoreError
from callmetrics._store.probe import BUDGET, LOOP, MachineProbe, read_probes
from store_helpers import record_calls

DATA = Path(__file__).resolve().parent.parent / "data"


def stored_probe(store: Path, run_id: int = 1) -> dict[str, object]:
    with sqlite3.connect(store) as conn:
        return dict(json.loads(conn.execute("SELECT probe FROM runs WHERE id = ?",
                                            (run_id,)).fetchone()[0]))


def test_every_run_records_the_probe_at_its_start_and_end(tmp_path: Path) -> None:
    """A run of half a second: two samples (start and last write), plausible loop times."""
    store = tmp_path / "runs.db"
    analytics = Analytics(store=store)
    work = analytics.track("unit", name="work")(lambda: sum(range(100)))
    started = time.perf_counter()
    while time.perf_counter() - started < 0.5:
        work()
    analytics.close()
    probe = stored_probe(store)
    assert probe["kind"] == "cpu-loop"
    assert probe["loop"] == LOOP
    samples = probe["samples"]
    assert isinstance(samples, list)
    assert len(samples) == 2
    assert all(1e-6 < seconds < 1.0 for _, seconds in samples)
    assert read_probes(store, [1])[1] is not None


def test_the_flush_thread_samples_within_half_a_percent_of_the_run(tmp_path: Path) -> None:
    """Flushing every 20 ms for a second: more samples, the probe's CPU time <= 0.5 %."""
    store = tmp_path / "runs.db"
    analytics = Analytics(AnalyticsConfig(flush_interval=0.02), store=store)
    work = analytics.track("unit", name="work")(lambda: sum(range(100)))
    started = time.perf_counter()
    while time.perf_counter() - started < 1.0:
        work()
    analytics.close()
    elapsed = time.perf_counter() - started
    probe = stored_probe(store)
    samples = probe["samples"]
    assert isinstance(samples, list)
    assert len(samples) >= 3  # start, at least one on the way, end
    cost = probe["cost"]
    assert isinstance(cost, float)
    # The budget is checked before each sample: at most one sample over it (~1 ms).
    assert cost <= BUDGET * elapsed + 0.005


def test_a_very_short_run_keeps_its_start_sample_only(tmp_path: Path) -> None:
    """Ten calls: the end sample would cost more than 0.5 % of the run; it is left out."""
    store = tmp_path / "runs.db"
    record_calls(store, "work", 10)
    samples = stored_probe(store)["samples"]
    assert isinstance(samples, list)
    assert 1 <= len(samples) <= 2  # 2 only when the run took over ~0.1 s (a loaded machine)


def test_the_samples_kept_stay_bounded() -> None:
    """Past MAX_SAMPLES, every other one goes; the first and the newest stay."""
    probe = MachineProbe()
    for _ in range(205):
        probe.sample(force=True)
    text = probe.to_json()
    assert text is not None
    samples = json.loads(text)["samples"]
    assert len(samples) <= 200


def test_a_store_before_version_3_has_no_probe(tmp_path: Path) -> None:
    """Reading a version-2 store: no probe, and the file is left as it is."""
    store = tmp_path / "v2.db"
    shutil.copy(DATA / "store_v2.db", store)
    before = store.read_bytes()
    assert read_probes(store, [1]) == {1: None}
    assert store.read_bytes() == before


def test_a_probe_of_another_loop_is_not_compared(tmp_path: Path) -> None:
    """A probe another version wrote (another loop): read as no probe, not as damage."""
    store = tmp_path / "runs.db"
    record_calls(store, "work", 10)
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE runs SET probe = ?",
                     ('{"kind": "cpu-loop", "loop": 4000, "samples": [[1.0, 0.001]]}',))
    assert read_probes(store, [1]) == {1: None}


@pytest.mark.parametrize("probe", [
    "not json", '{"kind": "cpu-loop", "loop": 2000, "samples": []}',
    '{"kind": "cpu-loop", "loop": 2000, "samples": [[1.0, -2.0]]}',
    "[1, 2]",
])
def test_a_damaged_probe_names_the_run_and_the_field(tmp_path: Path, probe: str) -> None:
    """What is read from disk is checked: a damaged probe raises StoreError naming it."""
    store = tmp_path / "runs.db"
    record_calls(store, "work", 10)
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE runs SET probe = ?", (probe,))
    with pytest.raises(StoreError, match=r"run 1: runs\.probe is"):
        read_probes(store, [1])
