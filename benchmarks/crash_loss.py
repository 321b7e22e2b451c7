"""How many seconds of calls a SIGKILL loses, with writers and a reader sharing the cores.

Four processes track calls into one store (``flush_interval`` 0.5 s by default) while a
fifth reads it (``load()``) in a loop; after a random 2-4 s every writer is killed
with SIGKILL at once.  Each writer counts its calls in shared memory, which this
process samples every 5 ms; the loss of a writer is the time from the moment its
count first reached what the store holds for its run to the kill.  Prints the
median and the worst over the rounds.

    python benchmarks/crash_loss.py [--rounds 10] [--interval 0.5] [--writers 4]
    python benchmarks/crash_loss.py --writers 1 --threads 4   # 4 threads in one process
"""

from __future__ import annotations

import argparse
import mmap
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from callmetrics import load
from callmetrics._store.runs import list_runs

WRITER = """
import mmap, os, sys
from callmetrics import Analytics
path, counter, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
analytics = Analytics(store=path, max_events=2000, config={"flush_interval": interval})
made = mmap.mmap(os.open(counter, os.O_RDWR), 8)
n = 0

@analytics.track("job", name="job")
def job(i):
    return sum(range(i % 300))

i = 0
while True:
    job(i)
    n += 1
    made[:8] = n.to_bytes(8, "little")
    i += 1
"""

# One process whose threads all track calls (they contend with the flush thread for
# the GIL): the count is shared by the threads.
THREADED = """
import mmap, os, sys, threading
from callmetrics import Analytics
path, counter, interval, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
analytics = Analytics(store=path, max_events=2000, config={"flush_interval": interval})
made = mmap.mmap(os.open(counter, os.O_RDWR), 8)
lock = threading.Lock()
n = 0

@analytics.track("job", name="job")
def job(i):
    return sum(range(i % 300))

def loop():
    global n
    i = 0
    while True:
        job(i)
        with lock:
            n += 1
            made[:8] = n.to_bytes(8, "little")
        i += 1

for _ in range(threads):
    threading.Thread(target=loop, daemon=True).start()
threading.Event().wait()
"""

READER = """
import sys, time
from callmetrics import load
while True:
    try:
        load(sys.argv[1]).get_stats()
    except Exception:
        pass
    time.sleep(0.05)
"""


def one_round(folder: Path, interval: float, writers: int, threads: int) -> list[float]:
    store = folder / "runs.db"
    counters, maps = [], []
    for w in range(writers):
        path = folder / f"count-{w}"
        path.write_bytes(bytes(8))
        counters.append(path)
        maps.append(mmap.mmap(os.open(path, os.O_RDWR), 8))
    # Our own interpreter running the scripts above: no untrusted input.
    script, extra = (THREADED, [str(threads)]) if threads else (WRITER, [])
    procs = [subprocess.Popen([sys.executable, "-c", script, str(store), str(path),  # noqa: S603
                               str(interval), *extra]) for path in counters]
    reader = subprocess.Popen([sys.executable, "-c", READER, str(store)])  # noqa: S603
    history: list[list[tuple[float, int]]] = [[] for _ in range(writers)]
    deadline = time.monotonic() + random.uniform(2.0, 4.0)
    while time.monotonic() < deadline:
        now = time.monotonic()
        for w, shared in enumerate(maps):
            history[w].append((now, int.from_bytes(shared[:8], "little")))
        time.sleep(0.005)
    killed = time.monotonic()
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
    for proc in procs:
        proc.wait()
    reader.kill()
    reader.wait()
    by_pid = {run.pid: run.calls for run in list_runs(store)}
    losses = []
    for proc, samples in zip(procs, history, strict=True):
        stored = by_pid.get(proc.pid, 0)
        reached = next((t for t, n in samples if n >= stored), killed)
        losses.append(killed - reached)
    load(store)  # the store reads back whole
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--writers", type=int, default=4, help="writing processes")
    parser.add_argument("--threads", type=int, default=0,
                        help="tracking threads in each writer (0: one, the main thread)")
    args = parser.parse_args()
    losses: list[float] = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            losses += one_round(Path(folder), args.interval, args.writers, args.threads)
    threads = f" of {args.threads} threads" if args.threads else ""
    print(f"{args.writers} writer(s){threads} and a reader, flush_interval {args.interval} s, "
          f"{args.rounds} rounds: loss median {statistics.median(losses):.2f} s, "
          f"worst {max(losses):.2f} s (os.cpu_count() = {os.cpu_count()})")


if __name__ == "__main__":
    main()
