"""``error_type`` on failures and the calls-in-progress gauge, as Prometheus reads them."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from callmetrics import Analytics, LoggerContainer
from callmetrics.exporters.model import Naming
from callmetrics.exporters.prometheus import CallmetricsCollector, serve_metrics
from conftest import require_program
from exporter_helpers import Launcher, Server, free_port, query
from store_helpers import run_workers

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Denied(Exception):  # noqa: N818  # a name as users give them
    """A failure type of this module: ``error_type="test_exporters_error_types.Denied"``."""


def scrape_text(source: Analytics | Path, naming: Naming = "callmetrics",
                *, openmetrics: bool = False) -> str:
    registry = CollectorRegistry()
    registry.register(CallmetricsCollector(source, naming=naming))
    render = generate_openmetrics if openmetrics else generate_latest
    return render(registry).decode()


def samples_of(text: str) -> Samples:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def by_label(got: Samples, metric: str, label: str, **where: str) -> dict[str, float]:
    """The samples of ``metric`` matching ``where``, by the value of ``label`` ("" if absent)."""
    found: dict[str, float] = {}
    for (name, labels), value in got.items():
        named = dict(labels)
        if name == metric and all(named.get(k) == v for k, v in where.items()):
            found[named.get(label, "")] = value
    return found


def workload(analytics: Analytics) -> None:
    """`charge`: 40 calls, 9 ValueError, 4 Denied, 2 KeyError; `ping`: 5 calls, none fail."""

    @analytics.track("api", name="charge")
    def charge(i: int) -> None:
        if i < 9:
            raise ValueError(i)
        if i < 13:
            raise Denied(i)
        if i < 15:
            raise KeyError(i)

    @analytics.track("api", name="ping")
    def ping() -> None:
        return None

    for i in range(40):
        with contextlib.suppress(ValueError, Denied, KeyError):
            charge(i)
    for _ in range(5):
        ping()


EXPECTED = {"ValueError": 9, f"{__name__}.Denied": 4, "KeyError": 2}


def test_failures_carry_error_type_and_add_up(quiet: LoggerContainer) -> None:
    """One series per type, summing to the failures; a function without any has 0, untyped."""
    analytics = Analytics(loggers=quiet)
    workload(analytics)
    got = samples_of(scrape_text(analytics))
    assert by_label(got, "callmetrics_failures_total", "error_type", function="charge") \
        == EXPECTED
    assert by_label(got, "callmetrics_failures_total", "error_type", function="ping") == {"": 0}
    assert by_label(got, "callmetrics_calls_total", "function") == {"charge": 40, "ping": 5}


def test_autometrics_naming_keeps_result_error_without_a_type(quiet: LoggerContainer) -> None:
    """The specification lists the counter's labels; error_type is not one: result only."""
    analytics = Analytics(loggers=quiet)
    workload(analytics)
    got = samples_of(scrape_text(analytics, "autometrics"))
    counts = by_label(got, "function_calls_total", "result", function="charge")
    assert counts == {"ok": 25, "error": 15}
    assert not any("error_type" in dict(labels) for _, labels in got)


def test_exposition_with_error_types_passes_promtool(quiet: LoggerContainer) -> None:
    """`promtool check metrics` accepts the text format with error_type and the gauge."""
    promtool = require_program("promtool", "it checks the exposition")
    analytics = Analytics(loggers=quiet, track_concurrency=True)
    workload(analytics)
    for naming in ("callmetrics", "autometrics"):
        text = scrape_text(analytics, naming)
        assert "error_type=" in text or naming == "autometrics"
        result = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                                capture_output=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ calls in progress
@contextlib.contextmanager
def calls_inside(analytics: Analytics, count: int) -> Iterator[None]:
    """Hold ``count`` threads inside the tracked function ``held`` until the block ends."""
    inside = threading.Barrier(count + 1)
    release = threading.Event()

    @analytics.track("api", name="held")
    def held() -> None:
        inside.wait(timeout=30)
        release.wait(timeout=30)

    threads = [threading.Thread(target=held) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        inside.wait(timeout=30)
        yield
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=30)


@pytest.mark.parametrize(("naming", "gauge", "label"), [
    ("callmetrics", "callmetrics_calls_in_progress", "event_type"),
    ("autometrics", "function_calls_concurrent", "service_name"),
])
def test_the_gauge_reads_the_calls_inside_then_zero(naming: Naming, gauge: str,
                                                    label: str) -> None:
    """Four threads inside `held`: the gauge reads 4 (OpenMetrics too), then 0."""
    analytics = Analytics(track_concurrency=True)
    with calls_inside(analytics, 4):
        for openmetrics in (False, True):
            got = samples_of(scrape_text(analytics, naming, openmetrics=openmetrics))
            assert by_label(got, gauge, "function") == {"held": 4}
            assert all(label in dict(labels) for name, labels in got if name == gauge)
    got = samples_of(scrape_text(analytics, naming))
    assert by_label(got, gauge, "function") == {"held": 0}


def test_no_gauge_without_tracking_nor_from_a_store(tmp_path: Path) -> None:
    """Off by default; a store (what serve-metrics reads) has no calls in progress."""
    store = tmp_path / "runs.db"
    with Analytics(store=store, track_concurrency=True) as analytics:
        workload(analytics)
        assert "callmetrics_calls_in_progress" in scrape_text(analytics)
    assert "callmetrics_calls_in_progress" not in scrape_text(store)
    assert "function_calls_concurrent" not in scrape_text(store, "autometrics")
    plain = Analytics()
    workload(plain)
    assert "in_progress" not in scrape_text(plain)


# ------------------------------------------------------------------ a real Prometheus
WORKER = """
import sys
from callmetrics import Analytics

class Denied(Exception):  # noqa: N818  # a name as users give them
    pass

errors = {"value": ValueError, "denied": Denied}
with Analytics(store=sys.argv[1]) as analytics:
    @analytics.track("job", name="work")
    def work(kind):
        if kind != "ok":
            raise errors[kind]("on purpose")

    for kind, count in zip(sys.argv[2::2], sys.argv[3::2]):
        for _ in range(int(count)):
            try:
                work(kind)
            except Exception:
                pass
"""


@pytest.mark.servers
def test_prometheus_sums_error_types_of_a_store_of_many_processes(
        tmp_path: Path, launch: Launcher,
        start_prometheus: Callable[[list[str]], Server]) -> None:
    """Three workers, one store, serve-metrics: Prometheus reads each type's exact count."""
    store = tmp_path / "runs.sqlite"
    plans = [["ok", "300", "value", "7"], ["denied", "5", "ok", "20"], ["value", "4"]]
    codes = run_workers(WORKER, [[str(store), *plan] for plan in plans], quiet=True)
    assert codes == [0, 0, 0]
    port = free_port()
    launch("serve-metrics", [sys.executable, "-m", "callmetrics", "serve-metrics", str(store),
                             "--port", str(port)], f"http://127.0.0.1:{port}")
    prometheus = start_prometheus([f"127.0.0.1:{port}"])

    def by_type() -> dict[str, float] | None:
        found = query(prometheus, 'sum by (error_type) (callmetrics_failures_total'
                                  '{function="work"})')
        return {item["metric"].get("error_type", ""): float(item["value"][1])
                for item in found} or None

    assert prometheus.wait_for("scrape", by_type) == {"ValueError": 11, "__main__.Denied": 5}
    [total] = query(prometheus, 'sum(callmetrics_failures_total{function="work"})')
    assert float(total["value"][1]) == 16
    assert query(prometheus, "callmetrics_calls_in_progress") == []


@pytest.mark.servers
def test_prometheus_reads_the_gauge_of_a_live_instance(
        start_prometheus: Callable[[list[str]], Server]) -> None:
    """A live instance tracking concurrency: Prometheus scrapes 3 calls in progress."""
    analytics = Analytics(track_concurrency=True)
    with calls_inside(analytics, 3), serve_metrics(analytics, 0) as endpoint:
        prometheus = start_prometheus([f"127.0.0.1:{endpoint.port}"])

        def inside() -> float | None:
            found = query(prometheus, 'callmetrics_calls_in_progress{function="held"}')
            return float(found[0]["value"][1]) if found else None

        assert prometheus.wait_for("scrape", inside) == 3


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """Start server processes that are always terminated when the test ends."""
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.stop()


@pytest.fixture
def start_prometheus(launch: Launcher) -> Callable[[list[str]], Server]:
    """Start Debian's prometheus scraping the given targets every second."""
    return launch.prometheus
