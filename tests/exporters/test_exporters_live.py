"""Native and classic histograms, autometrics names, and the shipped assets, on real servers.

Several processes write one store with durations of a known distribution (log-uniform
from 100 ns to 1 s); ``callmetrics serve-metrics`` serves it; Debian's Prometheus 2.42
scrapes it twice: with ``--enable-feature=native-histograms`` (the protobuf
exposition, so native histograms; Prometheus before 2.45 then drops the classic
buckets of a histogram that has native ones) and without (the text format, classic
buckets).  Both answer ``histogram_quantile(0.99, rate(...))`` within 2 % of the
exact p99, and the counts exactly.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter_helpers import Launcher, Server, exact_quantile, free_port, query, scalar

SEED = 11
WORKERS = 3
PER_WORKER = 20_000
FAILING = 150  # per worker

# Each worker restores (into its own Analytics writing the store) the aggregates of
# its share of the known durations, as if it had made those calls.
WORKER = """
import random, sys
from callmetrics import Analytics, DurationSketch, FunctionSnapshot

store, seed, count, failing = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
values = sorted(10 ** rng.uniform(-7, 0) for _ in range(count))
sketch = DurationSketch()
sketch.add_sorted(values)
snapshot = FunctionSnapshot(
    name="job", event_type="batch", module="app.jobs", calls=count, successes=count - failing,
    total=sum(values), fast=count, medium=0, slow=0, overhead=0.0, sketch=sketch,
    slowest=None, fastest=None)
with Analytics(store=store) as analytics:
    analytics.restore([snapshot], [])
"""


def durations(seed: int, count: int) -> list[float]:
    rng = random.Random(seed)
    return sorted(10 ** rng.uniform(-7, 0) for _ in range(count))


def write(store: Path, seed: int, count: int, failing: int) -> None:
    subprocess.run([sys.executable, "-c", WORKER, str(store), str(seed), str(count),
                    str(failing)], check=True, timeout=120)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.stop()


def serve(launch: Launcher, store: Path, *more: str) -> str:
    port = free_port()
    launch(f"serve-metrics-{port}", [sys.executable, "-m", "callmetrics", "serve-metrics",
                                     str(store), "--port", str(port), *more],
           f"http://127.0.0.1:{port}")
    return f"127.0.0.1:{port}"


def counted(prometheus: Server, promql: str, expected: float) -> float | None:
    """Probe: the query's one value once it reached ``expected``."""
    try:
        value = scalar(prometheus, promql)
    except AssertionError:
        return None
    return value if value is not None and value >= expected else None


@pytest.mark.servers
def test_native_and_classic_p99_within_two_percent_of_the_exact_one(
        tmp_path: Path, launch: Launcher) -> None:
    """A real Prometheus's p99 from native, and from classic, buckets is within 2 %."""
    store = tmp_path / "runs.sqlite"
    write(store, SEED, 1, 0)  # one call first, so that rate() sees the rest arrive
    target = serve(launch, store)
    native = launch.prometheus([target], native=True, name="native")
    classic = launch.prometheus([target], name="classic")
    native.wait_for("a first scrape", lambda: counted(
        native, 'histogram_count(callmetrics_call_duration_seconds{function="job"})', 1))
    classic.wait_for("a first scrape", lambda: counted(
        classic, 'callmetrics_call_duration_seconds_count{function="job"}', 1))

    values: list[float] = []
    for worker in range(WORKERS):  # several processes, one store
        write(store, SEED + 1 + worker, PER_WORKER, FAILING)
        values += durations(SEED + 1 + worker, PER_WORKER)
    total = 1 + WORKERS * PER_WORKER
    native.wait_for("every call", lambda: counted(
        native, 'histogram_count(callmetrics_call_duration_seconds{function="job"})', total))
    classic.wait_for("every call", lambda: counted(
        classic, 'callmetrics_call_duration_seconds_count{function="job"}', total))

    exact = exact_quantile(0.99, values)
    from_native = scalar(native, 'histogram_quantile(0.99, rate('
                                 'callmetrics_call_duration_seconds{function="job"}[1m]))')
    from_classic = scalar(classic, 'histogram_quantile(0.99, sum by (le) (rate('
                                   'callmetrics_call_duration_seconds_bucket{function="job"}[1m])))')
    assert from_native == pytest.approx(exact, rel=0.02)
    assert from_classic == pytest.approx(exact, rel=0.02)
    # The native series exist as histograms, and the counts are exact.
    assert query(native, 'callmetrics_call_duration_seconds{function="job"}')[0].get("histogram")
    assert scalar(native, 'histogram_count(callmetrics_call_duration_seconds{function="job"})') \
        == total
    assert scalar(native, 'callmetrics_calls_total{function="job"}') == total
    assert scalar(native, 'callmetrics_failures_total{function="job"}') == WORKERS * FAILING
    assert scalar(native, 'histogram_sum(callmetrics_call_duration_seconds{function="job"})') \
        == pytest.approx(sum(values) + sum(durations(SEED, 1)))
    assert scalar(classic, 'callmetrics_calls_total{function="job"}') == total
    # Prometheus 2.42 keeps only the native form of a histogram scraped with both.
    assert query(native, "callmetrics_call_duration_seconds_bucket") == []
