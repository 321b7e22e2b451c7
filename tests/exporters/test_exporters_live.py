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

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from callmetrics import load
from callmetrics.exporters.assets import asset_text
from exporter_helpers import Launcher, Server, exact_quantile, free_port, query, scalar

SEED = 11
WORKERS = 3
PER_WORKER = 20_000
FAILING = 150  # per worker
FIRST = 300  # calls in the store before Prometheus starts scraping

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
    slowest=None, fastest=None, failures_by_type={"TimeoutError": failing})
with Analytics(store=store) as analytics:
    analytics.restore([snapshot], [])
"""


def durations(seed: int, count: int) -> list[float]:
    rng = random.Random(seed)
    return sorted(10 ** rng.uniform(-7, 0) for _ in range(count))


def write(store: Path, seed: int, count: int, failing: int) -> None:
    subprocess.run([sys.executable, "-c", WORKER, str(store), str(seed), str(count),
                    str(failing)], check=True, timeout=120)


@dataclass
class Scraped:
    """Two real Prometheus servers scraping two serve-metrics over one store of known calls."""

    native: Server
    classic: Server
    values: list[float]
    total: int
    failures: int
    self_time_known: bool


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


def answered(prometheus: Server, promql: str) -> list[dict[str, Any]] | None:
    """Probe: the query's result once it holds something."""
    return query(prometheus, promql) or None


def wait_for_counts(native: Server, classic: Server, calls: int) -> None:
    """Wait until both servers hold ``calls`` calls of `job` in both namings."""
    for name in ("callmetrics_call_duration_seconds", "function_calls_duration_seconds"):
        for prometheus, promql in (
                (native, f'histogram_count({name}{{function="job"}})'),
                (classic, f'{name}_count{{function="job"}}')):
            prometheus.wait_for(f"{calls} calls in {name}",
                                partial(counted, prometheus, promql, calls))


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """Write the store from several processes while two Prometheus servers scrape it.

    One serve-metrics serves callmetrics' naming, one the autometrics naming; the
    native Prometheus asks for the protobuf exposition, the classic one for text.
    """
    folder = tmp_path_factory.mktemp("live")
    launch = Launcher(folder)
    try:
        store = folder / "runs.sqlite"
        # Some calls first (the program has been running), so that rate() sees the rest
        # arrive, over classic bounds that have settled.
        write(store, SEED, FIRST, 0)
        targets = [serve(launch, store),
                   serve(launch, store, "--naming", "autometrics", "--service-name", "shop")]
        native = launch.prometheus(targets, native=True, name="native")
        classic = launch.prometheus(targets, name="classic")
        wait_for_counts(native, classic, FIRST)
        values: list[float] = []
        for worker in range(WORKERS):  # several processes, one store
            write(store, SEED + 1 + worker, PER_WORKER, FAILING)
            values += durations(SEED + 1 + worker, PER_WORKER)
        total = FIRST + WORKERS * PER_WORKER
        wait_for_counts(native, classic, total)
        # The failures' series (one per error_type) first appear with the workers'
        # calls: rate() answers once each server has scraped them twice.
        for prometheus in (native, classic):
            prometheus.wait_for("a rate of failures by type", partial(
                answered, prometheus,
                'rate(callmetrics_failures_total{error_type="TimeoutError"}[1m])'))
        with load(store) as view:
            known = any(snap.self_time is not None for snap in view.snapshot())
        yield Scraped(native, classic, values, total, WORKERS * FAILING, known)
    finally:
        launch.stop()


@pytest.mark.servers
def test_native_and_classic_p99_within_two_percent_of_the_exact_one(scraped: Scraped) -> None:
    """A real Prometheus's p99 from native, and from classic, buckets is within 2 %."""
    native, classic, total = scraped.native, scraped.classic, scraped.total
    exact = exact_quantile(0.99, scraped.values)
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
    assert scalar(native, 'callmetrics_failures_total{function="job", error_type="TimeoutError"}') \
        == scraped.failures
    assert scalar(native, 'histogram_sum(callmetrics_call_duration_seconds{function="job"})') \
        == pytest.approx(sum(scraped.values) + sum(durations(SEED, FIRST)))
    assert scalar(classic, 'callmetrics_calls_total{function="job"}') == total
    # Prometheus 2.42 keeps only the native form of a histogram scraped with both.
    assert query(native, "callmetrics_call_duration_seconds_bucket") == []


def panel_queries() -> list[tuple[str, str]]:
    """Every (panel title, query) of the shipped dashboard, its variables filled in."""
    dashboard = json.loads(asset_text("dashboard"))
    return [(panel["title"], target["expr"].replace("$__rate_interval", "1m")
             .replace("$function", ".+"))
            for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.mark.servers
@pytest.mark.parametrize(("title", "promql"), panel_queries())
def test_every_dashboard_query_returns_data(scraped: Scraped, title: str, promql: str) -> None:
    """Each panel's query answers from the Prometheus its panel is for.

    Panels marked native read a Prometheus with native histograms, those marked
    classic one without; the others must answer from both.  Self time is only
    exposed where the store records it.
    """
    servers = ([scraped.native] if "native" in title else [scraped.classic]
               if "classic" in title else [scraped.native, scraped.classic])
    for prometheus in servers:
        found = query(prometheus, promql)
        if "Self time" in title and not scraped.self_time_known:
            # The store records no self time (stores of engines that measure none):
            # the panel is empty rather than showing a made-up figure.
            assert found == [], title
            continue
        assert found, f"{title}: no data from {prometheus.name} for {promql}"


@pytest.mark.servers
def test_autometrics_queries_return_the_expected_values(scraped: Scraped) -> None:
    """Queries of the autometrics specification's rules and dashboards read our names right."""
    native, classic = scraped.native, scraped.classic
    calls = '{__name__=~"function_calls(_count)?(_total)?"'
    # The success-rate SLI of autometrics' recording rules (objective labels aside:
    # callmetrics attaches no objectives), per function.
    error_ratio = (f'sum by (function, module) (rate({calls}, result="error"}}[1m]))'
                   f' / sum by (function, module) (rate({calls}}}[1m]))')
    expected = scraped.failures / (scraped.total - FIRST)  # what arrived within the window
    for prometheus in (native, classic):
        assert scalar(prometheus, error_ratio) == pytest.approx(expected, rel=0.02)
        assert scalar(prometheus, f'sum({calls}, function="job", module="app.jobs", '
                                  'service_name="shop"})') == scraped.total
        info = query(prometheus, "build_info")
        assert [item["metric"]["autometrics_version"] for item in info] == ["1.0.0"]
        assert info[0]["metric"]["service_name"] == "shop"
    # The p99 latency query of autometrics' dashboards (classic buckets), with its
    # build_info join.
    latency = ('histogram_quantile(0.99, sum by (le, function, module, version, service_name) ('
               'rate({__name__=~"function_calls_duration(_seconds)?_bucket", function="job"}[1m])'
               ' * on (instance, job) group_left(version) ('
               'last_over_time(build_info[1m]) or on (instance, job) up)))')
    assert scalar(classic, latency) == pytest.approx(exact_quantile(0.99, scraped.values),
                                                     rel=0.02)
    # The latency SLI shape of autometrics' rules: the share of calls under a threshold.
    under = ('sum by (function) (rate(function_calls_duration_seconds_bucket{le="0.25"}[1m]))'
             ' / sum by (function) (rate(function_calls_duration_seconds_count[1m]))')
    share = sum(value <= 0.25 for value in scraped.values) / len(scraped.values)
    assert scalar(classic, under) == pytest.approx(share, abs=0.003)
    assert scalar(native, 'histogram_count(function_calls_duration_seconds{function="job"})') \
        == scraped.total
