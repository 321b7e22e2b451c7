"""Forking while other threads track and read: the child never hangs and its counts are exact.

Each scenario runs in a fresh interpreter (both hot paths: the C accelerator and
``CALLMETRICS_PURE_PYTHON=1``), with and without a store.  Threads make tracked
calls (and read ``get_stats``) while the main thread forks again and again; each
child reads its inherited counts under an alarm (a hang is a failure), checks they
agree with each other and lie between what the parent had recorded before the fork
and what the calls' bodies had counted, then records more calls exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO = r"""
import os, signal, sys, threading, time
from callmetrics import Analytics

store = sys.argv[1] if len(sys.argv) > 1 else None
analytics = Analytics(max_events=1000, store=store, config={"flush_interval": 0.01})
bodies = [0] * 4
stop = False

def worker(i):
    @analytics.track("unit", name=f"work{i % 2}")
    def work():
        bodies[i] += 1
    while not stop:
        work()
        if i >= 2:
            analytics.get_stats()

threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
hung = 0
for fork in range(16):
    before = sum(analytics.call_counts.values())
    time.sleep(0.02)  # the threads run meanwhile: one may hold the lock at the fork
    pid = os.fork()
    if pid == 0:
        signal.alarm(5)  # a hang ends the child with SIGALRM
        counts = analytics.call_counts
        total = sum(counts.values())
        stats = analytics.get_stats()
        ok = (before <= total <= sum(bodies) and stats["total_calls"] == total
              and stats["event_count"] == min(total, 1000))
        extra = analytics.track("unit", name="child")(lambda: None)
        for _ in range(2000):
            extra()
        ok = ok and analytics.call_counts.get("child") == 2000
        os._exit(0 if ok else 3)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = -1
            break
        time.sleep(0.01)
    if status != 0:
        print(f"fork {fork}: child status {status}", flush=True)
        hung += 1
stop = True
for t in threads:
    t.join()
analytics.close()
sys.exit(1 if hung else 0)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="fork needs a POSIX system")
@pytest.mark.parametrize("pure", ["0", "1"], ids=["c", "python"])
@pytest.mark.parametrize("with_store", [False, True], ids=["memory", "store"])
def test_fork_under_threads_gives_a_working_child_with_exact_counts(
        tmp_path: Path, pure: str, with_store: bool) -> None:
    """Forks while 4 threads track (one also reading): every child reads and records."""
    env = {**os.environ, "CALLMETRICS_PURE_PYTHON": pure,
           "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    args = [sys.executable, "-c", SCENARIO]
    if with_store:
        args.append(str(tmp_path / "runs.db"))
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
