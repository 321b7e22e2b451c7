"""The scenarios behind diff's rates, shared by tests/cli and benchmarks/diff_rates.py.

Not a test module.  Each scenario makes real runs in real processes, as a user's CI
does: a CPU-bound workload of eight tracked functions written to a store (with a
CPU-bound process beside the head run), and back-to-back pytest-plugin sessions of a
real library's own test suite (boltons, its source distribution fetched once from
PyPI with pip and kept in a cache folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIBRARY = "boltons"
LIBRARY_VERSION = "26.2.0"
CACHE = Path(os.environ.get("CALLMETRICS_TEST_CACHE",
                            Path.home() / ".cache" / "callmetrics-tests"))

# ------------------------------------------------------------------ the workload
_TEXT = " ".join(f"word{i} {i * 7}" for i in range(60))
_PATTERN = re.compile(r"word(\d+) (\d+)")
_DATA = {"a": list(range(40)), "b": {"c": "text" * 5, "d": [1.5, 2.5] * 10}}


def _functions() -> dict[str, Callable[[float], object]]:
    """Eight CPU-bound functions; ``factor`` scales the work each does."""
    def parse(f: float) -> object:
        return "-".join(map(str, range(int(300 * f))))

    def crunch(f: float) -> object:
        return sum(range(int(4000 * f)))

    def order(f: float) -> object:
        return sorted(range(int(800 * f)), key=lambda i: (i * 7919) % 1000)

    def digest(f: float) -> object:
        data = b"x" * 256
        for _ in range(int(60 * f)):
            data = hashlib.sha256(data).digest() * 8
        return data

    def render(f: float) -> object:
        return "".join(f"<li>{i:>5}: {i / 3:.3f}</li>" for i in range(int(150 * f)))

    def index(f: float) -> object:
        return {str(i): i * i for i in range(int(500 * f))}

    def scan(f: float) -> object:
        return [m.groups() for _ in range(max(1, int(3 * f))) for m in _PATTERN.finditer(_TEXT)]

    def encode(f: float) -> object:
        return [json.dumps(_DATA) for _ in range(int(20 * f))]

    return {fn.__name__: fn for fn in (parse, crunch, order, digest, render, index, scan,
                                       encode)}


FUNCTIONS = tuple(_functions())


def run_workload(store: str, label: str, slow: str | None, factor: float,
                 rounds: int) -> None:
    """Record ``rounds`` calls of each function into ``store`` as one run (in this process)."""
    from callmetrics import Analytics  # noqa: PLC0415  # in the child only

    os.environ["CALLMETRICS_RUN_LABEL"] = label
    analytics = Analytics(max_events=len(FUNCTIONS) * rounds, store=store)
    tracked = [(analytics.track("cpu", name=name)(fn), factor if name == slow else 1.0)
               for name, fn in _functions().items()]
    for _ in range(rounds):
        for fn, f in tracked:
            fn(f)
    analytics.close()


@contextlib.contextmanager
def cpu_hog() -> Iterator[None]:
    """A CPU-bound process running beside the block (a busy loop), ended after it."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # our interpreter
    try:
        time.sleep(0.2)  # let it get going
        yield
    finally:
        hog.kill()
        hog.wait(10)


def workload_pair(store: Path, *, slow: str | None = None, factor: float = 1.0,
                  rounds: int = 1000, python: str = sys.executable,
                  env: dict[str, str] | None = None) -> None:
    """Base run, then head run beside a CPU-bound process, each in its own process."""
    for label, hog in (("base", False), ("head", True)):
        code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import rates_helpers; "
                f"rates_helpers.run_workload({str(store)!r}, {label!r}, "
                f"{slow if label == 'head' else None!r}, {factor!r}, {rounds!r})")
        with cpu_hog() if hog else contextlib.nullcontext():
            subprocess.run([python, "-c", code], check=True, env=env)  # our interpreter


# --------------------------------------------------------- a real library's suite
def library_source(pip: list[str]) -> Path | None:
    """The library's unpacked source distribution (tests included), fetched once.

    Returns None when pip cannot fetch it (no network).
    """
    folder = CACHE / f"{LIBRARY}-{LIBRARY_VERSION}"
    if (folder / "tests").is_dir():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([*pip, "download", "--no-deps", "--no-binary", ":all:",  # pip
                           "--dest", str(CACHE), f"{LIBRARY}=={LIBRARY_VERSION}"],
                          capture_output=True, text=True, check=False)
    archives = sorted(CACHE.glob(f"{LIBRARY}-{LIBRARY_VERSION}.tar.gz"))
    if done.returncode or not archives:
        return None
    with tarfile.open(archives[0]) as archive:
        archive.extractall(CACHE, filter="data")
    return folder if (folder / "tests").is_dir() else None


def library_session(source: Path, store: Path, label: str, *,
                    python: str = sys.executable, env: dict[str, str] | None = None) -> None:
    """One pytest-plugin session of the library's own suite, tracking its functions."""
    subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
                    f"--callmetrics={store}", f"--callmetrics-label={label}",
                    "--callmetrics-track", f"{LIBRARY}.*"],
                   cwd=source, check=False, capture_output=True, env=env)


# ------------------------------------------------------------------ synthetic data
def synthetic_series(rng: random.Random, runs: int, *, step_at: int | None = None,
                     step: float = 1.0, level: float = 1e-4) -> list[float]:
    """A function's median over ``runs`` runs: noise as between real runs, one step or none.

    Each run's median varies by a lognormal factor (sigma 0.04: the medians of the
    workload above, beside a CPU-bound process on a loaded 2-core machine, vary by
    about 0.032 a run), and one run in twenty met a slower machine still (1.05x to
    1.15x; the common shift of those runs was at most 1.1x).  From run ``step_at``
    on, everything is ``step`` times slower.
    """
    values = []
    for i in range(runs):
        value = level * rng.lognormvariate(0.0, 0.04)
        if rng.random() < 0.05:
            value *= rng.uniform(1.05, 1.15)
        if step_at is not None and i >= step_at:
            value *= step
        values.append(value)
    return values


def _write(store: Path, label: str, functions: dict[str, list[float]], *,
           events: bool) -> None:
    from callmetrics import Analytics  # noqa: PLC0415
    from callmetrics._store import attach_store  # noqa: PLC0415
    from store_helpers import snapshot  # noqa: PLC0415

    analytics = Analytics(max_events=0)
    writer = attach_store(analytics, store, label=label)
    now = time.time()
    calls = sorted((now + i * 1e-5, duration, None, name)
                   for name, durations in functions.items()
                   for i, duration in enumerate(durations)) if events else []
    analytics.restore([snapshot(name, durations) for name, durations in functions.items()],
                      calls)
    writer.close()


def big_pair(store: Path, *, functions: int, calls: int, seed: int = 1) -> None:
    """Two runs (labels base and head) of ``calls`` retained calls over ``functions``."""
    rng = random.Random(seed)
    for label in ("base", "head"):
        each = calls // functions
        _write(store, label, {f"fn{k:02d}": [round(rng.lognormvariate(-9 + k / 10, 0.3), 9)
                                             for _ in range(each)]
                              for k in range(functions)}, events=True)


def history_store(store: Path, *, runs: int, functions: int, seed: int = 2) -> bool:
    """``runs`` runs of ``functions`` functions each (aggregates of 50 calls, no events)."""
    rng = random.Random(seed)
    for run in range(runs):
        _write(store, f"build-{run}", {
            f"fn{k:03d}": [rng.lognormvariate(-9 + k / 50, 0.2) for _ in range(50)]
            for k in range(functions)}, events=False)
    return True
