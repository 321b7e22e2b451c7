"""Writers killed outright (SIGKILL) at random moments: the store stays whole and honest.

Several rounds, each with two processes writing one store and killed at a random
moment: the file passes ``PRAGMA integrity_check``, every value in it passes the
readers' checks, no run holds more calls than its process made, and each run holds
at least every call made up to the documented loss bound before the kill
(``flush_interval`` plus the time one write takes; see the README).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callmetrics import StoreError, load
from callmetrics._store.runs import list_runs

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL needs a POSIX system")

INTERVAL = 0.1
# One write's time, generously, on a loaded 2-core machine (measured: well under 0.5 s).
WRITE_ALLOWANCE = 3.0
ROUNDS = 5

WRITER = """
import mmap, os, sys
from callmetrics import Analytics

path, counter, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
analytics = Analytics(store=path, max_events=2000, config={"flush_interval": interval})
fd = os.open(counter, os.O_RDWR)
made = mmap.mmap(fd, 8)
n = 0

@analytics.track("job", name="job")
def job(i):
    global n
    n += 1  # counted before the call is recorded: stored <= made at every moment
    made[:8] = n.to_bytes(8, "little")
    if i % 7 == 0:
        raise ValueError(i)
    return sum(range(i % 200))

i = 0
while True:
    try:
        job(i)
    except ValueError:
        pass
    i += 1
"""


def _pids(store: Path) -> set[int]:
    """The pids of the store's runs; none while the first writer is still creating it."""
    try:
        return {run.pid for run in list_runs(store)}
    except (FileNotFoundError, StoreError):
        if store.exists() and store.stat().st_size:
            raise  # only an empty file being created is not an error
        return set()


def _count(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[:8], "little")


def test_sigkilled_writers_leave_a_consistent_store_within_the_loss_bound(
        tmp_path: Path) -> None:
    """Kill two writers at random moments, round after round, on one store."""
    store = tmp_path / "runs.db"
    rng = random.Random(int(os.environ.get("CALLMETRICS_KILL_SEED", "12")))
    total_made = 0
    for round_no in range(ROUNDS):
        counters = [tmp_path / f"made-{round_no}-{k}" for k in range(2)]
        for counter in counters:
            counter.write_bytes(bytes(8))
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(store), str(counter),
                                   str(INTERVAL)]) for counter in counters]
        pids = {proc.pid for proc in procs}
        samples: list[tuple[float, list[int]]] = []
        try:
            deadline = time.monotonic() + 60
            while not pids <= _pids(store):
                assert time.monotonic() < deadline, "writers never wrote their runs"
                assert all(proc.poll() is None for proc in procs), "a writer died"
                time.sleep(0.05)
            run_for = rng.uniform(0.2, 1.5)
            end = time.monotonic() + run_for
            while time.monotonic() < end:
                samples.append((time.time(), [_count(c) for c in counters]))
                time.sleep(0.02)
            killed_at = []
            for proc in procs:
                killed_at.append(time.time())
                proc.send_signal(signal.SIGKILL)
                time.sleep(rng.uniform(0, INTERVAL))
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
        made = [_count(c) for c in counters]
        total_made += sum(made)

        conn = sqlite3.connect(store)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()
        runs = {run.pid: run for run in list_runs(store)}  # every value checked
        view = load(store)  # every aggregate and event checked
        assert sum(view.call_counts.values()) <= total_made
        for k, proc in enumerate(procs):
            stored = runs[proc.pid].calls
            assert stored <= made[k], f"round {round_no}: more stored than made"
            # Every call made before the bound ahead of the kill is in the store.
            cutoff = killed_at[k] - INTERVAL - WRITE_ALLOWANCE
            before = [counts[k] for at, counts in samples if at <= cutoff]
            if before:
                assert stored >= before[-1], f"round {round_no}: lost more than the bound"
            assert killed_at[k] - runs[proc.pid].ended <= INTERVAL + WRITE_ALLOWANCE


FINITE_WRITER = """
import sys
from callmetrics import Analytics

analytics = Analytics(store=sys.argv[1], config={"flush_interval": 0.05})

@analytics.track("job", name="finite")
def job(i):
    return sum(range(i % 300))

for i in range(int(sys.argv[2])):
    job(i)
print("done", flush=True)
# the interpreter's exit writes the rest
"""


def test_writers_killed_around_their_exit_never_lose_a_clean_exits_calls(
        tmp_path: Path) -> None:
    """Writers making N calls and exiting, some killed at random moments near the end.

    A writer that exited cleanly stored exactly its N calls; one killed stored at most N.
    """
    store = tmp_path / "runs.db"
    rng = random.Random(int(os.environ.get("CALLMETRICS_KILL_SEED", "7")))
    calls = 20_000
    outcomes: dict[int, int | None] = {}
    for _ in range(3):
        procs = [subprocess.Popen([sys.executable, "-c", FINITE_WRITER, str(store),
                                   str(calls)], stdout=subprocess.PIPE, text=True)
                 for _ in range(3)]
        try:
            for proc in procs:
                assert proc.stdout is not None
                if rng.random() < 0.5:
                    assert proc.stdout.readline().strip() == "done"  # now exiting
                    time.sleep(rng.uniform(0, 0.05))
                    proc.send_signal(signal.SIGKILL)
        finally:
            for proc in procs:
                proc.wait(timeout=120)
                if proc.stdout is not None:
                    proc.stdout.close()
        outcomes.update({proc.pid: proc.returncode for proc in procs})
    conn = sqlite3.connect(store)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    runs = {run.pid: run for run in list_runs(store)}
    clean = [pid for pid, code in outcomes.items() if code == 0]
    assert clean, "no writer exited cleanly"
    for pid, code in outcomes.items():
        stored = runs[pid].calls if pid in runs else 0
        if code == 0:
            assert stored == calls
            assert runs[pid].closed
        else:
            assert code == -signal.SIGKILL
            assert stored <= calls
    assert sum(load(store).call_counts.values()) == sum(run.calls for run in runs.values())
