"""The machine-speed probe: how fast the machine ran a fixed loop during a run.

Two runs of unchanged code differ when the machine does: another process on the
same cores, a lower clock, a noisier neighbour on a shared CI runner.  So that
``callmetrics diff`` can tell such a machine from a slower change, every stored run
carries a probe: a fixed, short CPU-bound loop (pure Python integer arithmetic, the
kind of work the interpreter does for tracked code), timed by the store's writer

- when its thread starts (the start of the run: always, about 0.5 ms of CPU),
- on the flush thread before a write, and at the last write (the end of the run),
  whenever the probe has so far cost less than 0.5 % of the run's time
  (:data:`BUDGET`): a run shorter than about 0.1 s keeps its start sample only.

One *sample* is the median of :data:`REPEATS` timings of :data:`LOOP` iterations
(about 0.1 ms each on a current machine): a repetition that the operating system or
the interpreter's lock interrupted does not move it.  The samples are stored as JSON
in ``runs.probe`` (schema 3)::

    {"kind": "cpu-loop", "version": 1, "loop": 2000, "repeats": 5,
     "samples": [[unix_time, seconds], ...], "cost": seconds_spent}

``samples`` holds at most :data:`MAX_SAMPLES` (a long run keeps every other one when
full, the first and the newest always).  There is no memory-bound loop (yet): the
CPU loop alone is what ``diff`` reads.
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from callmetrics._store.read import read_store
from callmetrics._store.schema import StoreError, has_attribution

__all__ = ["BUDGET", "LOOP", "MachineProbe", "ProbeReading", "read_probes"]

LOOP: Final = 2000
REPEATS: Final = 5
BUDGET: Final = 0.005
MAX_SAMPLES: Final = 200
KIND: Final = "cpu-loop"


def _loop(n: int) -> int:
    value = 0
    for i in range(n):
        value = (value * 31 + i) & 0xFFFF
    return value


def measure() -> float:
    """Time one sample: the median of the repetitions' seconds for ``LOOP`` iterations."""
    timings = []
    clock = time.perf_counter
    _loop(LOOP // 4)  # warm: the interpreter specialises the loop's code on first runs
    for _ in range(REPEATS):
        started = clock()
        _loop(LOOP)
        timings.append(clock() - started)
    return statistics.median(timings)


class MachineProbe:
    """The probe of one run: samples taken within a budget of the run's time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.perf_counter()
        self._samples: list[tuple[float, float]] = []
        self._cost = 0.0

    def sample(self, *, force: bool = False) -> None:
        """Take a sample, unless the probe has cost ``BUDGET`` of the run (``force``: always)."""
        if not force and self._cost > BUDGET * (time.perf_counter() - self._started):
            return
        began = time.thread_time()  # the probe's own CPU time, not its waits for the GIL
        seconds = measure()
        with self._lock:
            self._samples.append((time.time(), seconds))
            if len(self._samples) > MAX_SAMPLES:
                self._samples = [*self._samples[:-1:2], self._samples[-1]]
            self._cost += time.thread_time() - began

    def to_json(self) -> str | None:
        """The JSON stored in ``runs.probe`` (None before the first sample)."""
        with self._lock:
            if not self._samples:
                return None
            return json.dumps({"kind": KIND, "version": 1, "loop": LOOP, "repeats": REPEATS,
                               "samples": [[round(t, 3), s] for t, s in self._samples],
                               "cost": self._cost}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class ProbeReading:
    """One run's probe as read back: its samples' seconds, in time order."""

    run_id: int
    seconds: tuple[float, ...]


def parse(run_id: int, text: object, path: Path) -> ProbeReading | None:
    """Check one stored probe; raise StoreError naming the run when it is damaged.

    A well-formed probe of another kind or loop (another callmetrics version) is not
    comparable with this one's: None, as for a run without a probe.
    """
    def damaged(why: str) -> StoreError:
        shown = repr(text)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return StoreError(f"{path} is damaged: run {run_id}: runs.probe is {shown} ({why}); "
                          "the file was left as it is")

    if not isinstance(text, str) or len(text) > 100_000:
        raise damaged("must be JSON text")
    try:
        data: Any = json.loads(text)
    except (ValueError, RecursionError):
        raise damaged("not JSON") from None
    if not isinstance(data, dict):
        raise damaged("must be a JSON object")
    if data.get("kind") != KIND or data.get("loop") != LOOP:
        return None
    samples = data.get("samples")
    if not isinstance(samples, list) or not samples or len(samples) > MAX_SAMPLES:
        raise damaged(f"must hold 1 to {MAX_SAMPLES} samples")
    seconds = []
    for sample in samples:
        if (not isinstance(sample, list) or len(sample) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool)
                           and math.isfinite(v) for v in sample)
                or not 0 < sample[1] < 60):
            raise damaged("a sample must be [time, seconds] with 0 < seconds < 60")
        seconds.append(float(sample[1]))
    return ProbeReading(run_id, tuple(seconds))


def read_probes(path: str | Path, runs: Iterable[int]) -> dict[int, ProbeReading | None]:
    """Return each chosen run's probe (None: not recorded, or a store older than version 3).

    Raises:
        FileNotFoundError: when there is no file at ``path``.
        StoreError: when the file is not a usable store, or a stored probe is damaged.

    """
    checked = Path(path).expanduser()
    wanted = sorted(set(runs))

    def work(conn: sqlite3.Connection, _: Path) -> list[Any]:
        if not has_attribution(conn):
            return []
        return conn.execute("SELECT id, probe FROM runs WHERE id IN "
                            "(SELECT value FROM json_each(?))", (json.dumps(wanted),)).fetchall()

    found: dict[int, ProbeReading | None] = dict.fromkeys(wanted)
    for run_id, text in read_store(checked, work):
        found[run_id] = None if text is None else parse(run_id, text, checked)
    return found
