"""How long a store write takes, and how much a hard kill loses (a benchmark, not a test).

Run: ``python benchmarks/store_flush.py`` (``--rounds N`` for the kill part).

1. *Flush time*: 100 functions, 10,000 new calls (all retained, ``max_events`` =
   10,000) before each write; the write is timed in a background thread while the
   main thread is idle, then while it runs pure-Python code (CPU-bound, holding the
   GIL but for the interpreter's switch interval).
2. *Crash loss*: a process calling a tracked function in a CPU-bound loop, with
   ``flush_interval`` = 0.5 s, is sent SIGKILL at a random moment; the loss is the time
   between the kill and the moment the process had made as many calls as the store
   holds (sampled every 5 ms through a shared counter).

The flush thread's own CPU time (``time.thread_time``) is printed too: wall times on a
shared, loaded machine vary by 2x from run to run.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from callmetrics import Analytics

FUNCTIONS = 100
CALLS = 10_000


def _flush_times(store: Path, *, busy: bool,
                 repeats: int = 8) -> tuple[list[float], list[float]]:
    analytics = Analytics(store=store, max_events=CALLS, config={"flush_interval": 3600})
    tracked = [analytics.track("bench", name=f"f{k}")(lambda: None) for k in range(FUNCTIONS)]
    times: list[float] = []
    cpu: list[float] = []
    stop = threading.Event()

    def flush() -> None:
        t0 = time.thread_time()
        analytics.flush()
        cpu.append(time.thread_time() - t0)

    def spin() -> None:  # the "main thread" busy with pure-Python work
        x = 0
        while not stop.is_set():
            x += 1

    for _ in range(repeats):
        for i in range(CALLS):
            tracked[i % FUNCTIONS]()
        spinner = threading.Thread(target=spin) if busy else None
        if spinner:
            spinner.start()
        t0 = time.perf_counter()
        flusher = threading.Thread(target=flush)
        flusher.start()
        flusher.join()
        times.append(time.perf_counter() - t0)
        stop.set()
        if spinner:
            spinner.join()
        stop.clear()
    analytics.close()
    return times, cpu


KILLED = """
import mmap, os, sys
from callmetrics import Analytics
analytics = Analytics(store=sys.argv[1], config={"flush_interval": float(sys.argv[3])})
made = mmap.mmap(os.open(sys.argv[2], os.O_RDWR), 8)
n = 0
@analytics.track("job", name="job")
def job(i):
    global n
    n += 1
    made[:8] = n.to_bytes(8, "little")
    return sum(range(i % 500))  # CPU-bound work, like the main thread of a busy program
i = 0
while True:
    job(i)
    i += 1
"""


def _stored(store: Path) -> int:
    conn = sqlite3.connect(store, timeout=30)
    try:
        return int(conn.execute("SELECT coalesce(sum(calls), 0) FROM functions").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _kill_losses(folder: Path, rounds: int, interval: float) -> list[float]:
    rng = random.Random(5)
    losses = []
    for k in range(rounds):
        store, counter = folder / f"kill{k}.db", folder / f"made{k}"
        counter.write_bytes(bytes(8))
        proc = subprocess.Popen([sys.executable, "-c", KILLED, str(store),  # noqa: S603  # our code
                                 str(counter), str(interval)])
        while _stored(store) == 0 if store.exists() else True:
            time.sleep(0.05)
        samples = []
        end = time.monotonic() + rng.uniform(1.0, 3.0)
        while time.monotonic() < end:
            samples.append((time.monotonic(), int.from_bytes(counter.read_bytes(), "little")))
            time.sleep(0.005)
        killed = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stored = _stored(store)
        reached = [at for at, made in samples if made <= stored]
        losses.append(killed - (reached[-1] if reached else samples[0][0]))
    return losses


def main() -> None:
    """Print the flush times and the crash losses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for busy in (False, True):
            times, cpu = _flush_times(folder / f"flush-{busy}.db", busy=busy)
            print(f"flush of {CALLS:,} new calls, {FUNCTIONS} functions, main thread "
                  f"{'CPU-bound' if busy else 'idle'}: median "
                  f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
                  f" (the flush thread's CPU: median {statistics.median(cpu) * 1000:.0f} ms)")
        losses = _kill_losses(folder, args.rounds, args.interval)
        print(f"SIGKILL at random moments, flush_interval {args.interval} s, CPU-bound "
              f"process, {args.rounds} rounds: loss median {statistics.median(losses):.2f} s, "
              f"max {max(losses):.2f} s")


if __name__ == "__main__":
    main()
