"""End to end against Debian's prometheus and prometheus-pushgateway, on the loopback."""

from __future__ import annotations

import contextlib
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callmetrics import Analytics
from callmetrics._cli import main
from callmetrics.exporters.native import SCHEMA
from callmetrics.exporters.prometheus import push_metrics, serve_metrics
from conftest import require_program
from exporter_helpers import (
    Launcher,
    Server,
    decode_delimited,
    free_port,
    labels_of,
    native_buckets,
    query,
)
from exporter_helpers import get as raw_get
from store_helpers import run_workers

# Bounds chosen so that a trivial call lands below the first one even on a loaded
# machine, and a call sleeping SLOW seconds lands, for sure, in the second bucket.
BUCKETS = (0.02, 5.0)
SLOW = 0.03
PROTOBUF = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
            "encoding=delimited")


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


def get(url: str) -> str:
    return raw_get(url).decode()


def scraped_total(prometheus: Server, expected_series: int) -> Callable[[], float | None]:
    """Probe: the summed call counter once a scrape holding every series has landed."""

    def probe() -> float | None:
        found = query(prometheus, "callmetrics_calls_total")
        if len(found) < expected_series:
            return None
        return sum(float(item["value"][1]) for item in found)

    return probe


def make_workload(analytics: Analytics) -> tuple[int, str]:
    """Make 90 trivial calls (5 failing) and 10 slow ones; return the count and an odd name."""
    odd = 'odd "name"\\ with\nnewline'

    @analytics.track("unit", name="fast")
    def fast(fail: bool) -> None:
        if fail:
            raise ValueError("failing on purpose")

    @analytics.track("unit", name=odd)
    def slow() -> None:
        time.sleep(SLOW)

    for i in range(90):
        with contextlib.suppress(ValueError):
            fast(i % 18 == 0)
    for _ in range(10):
        slow()
    return 100, odd


@pytest.mark.servers
def test_prometheus_scrapes_exact_counts_and_quantiles(
        start_prometheus: Callable[[list[str]], Server]) -> None:
    """A real Prometheus scrapes exact counts, and its p95 lands in the right bucket."""
    analytics = Analytics()
    calls, odd = make_workload(analytics)
    with serve_metrics(analytics, 0, buckets=BUCKETS) as endpoint:
        prometheus = start_prometheus([f"127.0.0.1:{endpoint.port}"])
        total = prometheus.wait_for("scrape", scraped_total(prometheus, 2))
        assert total == calls
        failures = query(prometheus, 'callmetrics_failures_total{function="fast"}')
        assert float(failures[0]["value"][1]) == 5
        by_function = {item["metric"]["function"]: float(item["value"][1])
                       for item in query(prometheus, "callmetrics_calls_total")}
        assert by_function == {"fast": 90, odd: 10}  # the odd name came back unescaped
        p95 = query(prometheus, "histogram_quantile(0.95, sum by (le) "
                                "(callmetrics_call_duration_seconds_bucket))")
        assert BUCKETS[0] < float(p95[0]["value"][1]) <= BUCKETS[1]
        assert BUCKETS[0] < analytics.get_stats()["p95"] <= BUCKETS[1]
        count = query(prometheus, "sum(callmetrics_call_duration_seconds_count)")
        assert float(count[0]["value"][1]) == calls


@pytest.mark.servers
def test_pushgateway_receives_a_batch_job(
        launch: Launcher) -> None:
    """Metrics pushed to a real Pushgateway read back exactly, and a second push replaces them."""
    binary = require_program("prometheus-pushgateway", "the push test pushes to it")
    port = free_port()
    gateway = launch("pushgateway", [binary, f"--web.listen-address=127.0.0.1:{port}",
                      # Debian's default persists to /var/lib/prometheus: keep tests apart
                      f"--persistence.file={launch.folder / 'pushgateway.data'}"],
                     f"http://127.0.0.1:{port}")
    gateway.wait_for("readiness", lambda: get(f"{gateway.base_url}/-/ready") or None)
    analytics = Analytics()
    _, odd = make_workload(analytics)

    def pushed() -> dict[tuple[str, str], float]:
        found = {}
        for family in text_string_to_metric_families(get(f"{gateway.base_url}/metrics")):
            for sample in family.samples:
                if sample.labels.get("job") == "nightly":
                    assert sample.labels["instance"] == "worker-1"
                    found[sample.name, sample.labels.get("function", "")] = sample.value
        return found

    push_metrics(analytics, f"127.0.0.1:{port}", "nightly",
                 grouping_key={"instance": "worker-1"}, buckets=BUCKETS)
    first = pushed()
    assert first["callmetrics_calls_total", "fast"] == 90
    assert first["callmetrics_calls_total", odd] == 10
    assert first["callmetrics_failures_total", "fast"] == 5
    assert first["callmetrics_call_duration_seconds_count", odd] == 10
    make_workload(analytics)
    push_metrics(analytics, f"http://127.0.0.1:{port}", "nightly",
                 grouping_key={"instance": "worker-1"}, buckets=BUCKETS)
    assert pushed()["callmetrics_calls_total", "fast"] == 180


@pytest.mark.servers
def test_pushgateway_keeps_the_native_histogram(launch: Launcher) -> None:
    """A protobuf push reaches the gateway as a native histogram, served on in protobuf."""
    binary = require_program("prometheus-pushgateway", "the push test pushes to it")
    port = free_port()
    gateway = launch("pushgateway", [binary, f"--web.listen-address=127.0.0.1:{port}",
                      # Debian's default persists to /var/lib/prometheus: keep tests apart
                      f"--persistence.file={launch.folder / 'pushgateway.data'}"],
                     f"http://127.0.0.1:{port}")
    gateway.wait_for("readiness", lambda: get(f"{gateway.base_url}/-/ready") or None)
    analytics = Analytics()
    make_workload(analytics)
    push_metrics(analytics, f"127.0.0.1:{port}", "nightly", grouping_key={"instance": "w/1"})
    families = decode_delimited(raw_get(f"{gateway.base_url}/metrics", PROTOBUF))
    [fast] = [metric for metric in families["callmetrics_call_duration_seconds"].metric
              if labels_of(metric).get("function") == "fast"]
    assert labels_of(fast)["instance"] == "w/1"  # the base64 path segment read back
    histogram = fast.histogram
    assert histogram.schema == SCHEMA
    assert histogram.sample_count == 90
    assert histogram.zero_count + sum(native_buckets(histogram).values()) == 90
    assert histogram.bucket  # the classic buckets too


WORKER = """
import sys
from callmetrics import Analytics

with Analytics(store=sys.argv[1]) as analytics:
    work = analytics.track("job", name="work")(lambda: None)
    for _ in range(int(sys.argv[2])):
        work()
"""


@pytest.mark.servers
def test_store_of_many_processes_is_scraped_once_each(
        tmp_path: Path, launch: Launcher,
        start_prometheus: Callable[[list[str]], Server]) -> None:
    """Workers write one store; `callmetrics serve-metrics` serves it; Prometheus sees each once."""
    store = tmp_path / "runs.sqlite"
    codes = run_workers(WORKER, [[str(store), str(n)] for n in (3000, 5000, 7)])
    assert codes == [0, 0, 0]
    port = free_port()
    launch("serve-metrics", [sys.executable, "-m", "callmetrics", "serve-metrics", str(store),
                             "--port", str(port)], f"http://127.0.0.1:{port}")
    prometheus = start_prometheus([f"127.0.0.1:{port}"])
    assert prometheus.wait_for("scrape", scraped_total(prometheus, 1)) == 8007


def test_serve_metrics_command_serves_a_store_until_terminated(
        tmp_path: Path, launch: Launcher) -> None:
    """`callmetrics serve-metrics STORE --port 0` prints its URL, serves, and exits 0 on SIGTERM."""
    store = tmp_path / "runs.sqlite"
    with Analytics(store=store) as worker:
        work = worker.track("job", name="work")(lambda: None)
        for _ in range(12):
            work()
    served = launch("serve-metrics", [sys.executable, "-m", "callmetrics", "serve-metrics",
                                      str(store), "--port", "0"], "")

    def printed_url() -> str | None:
        match = re.search(r"at (http://\S+/metrics)", served.log.read_text())
        return match.group(1) if match else None

    url = served.wait_for("its URL", printed_url)
    assert url.startswith("http://127.0.0.1:")
    families = {f.name: f for f in text_string_to_metric_families(get(url))}
    assert [s.value for s in families["callmetrics_calls"].samples] == [12]
    served.process.terminate()
    assert served.process.wait(timeout=20) == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["serve-metrics", "{tmp}/missing.sqlite", "--port", "0"], "no such store: "),
    (["serve-metrics", "{tmp}", "--port", "0"], "is a folder"),
    (["serve-metrics", "{tmp}/notes.txt", "--port", "0"], "not a callmetrics store"),
    (["serve-metrics", "{store}", "--port", "70000"], "--port must be between 0 and 65535"),
    (["serve-metrics", "{store}", "--port", "http"], "--port must be a number"),
    (["serve-metrics", "{store}", "--port", "0", "--buckets", "1,x"], "--buckets must be"),
    (["serve-metrics", "{store}", "--port", "0", "--buckets", "2,1"], "strictly increasing"),
])
def test_serve_metrics_command_rejects_bad_arguments(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        message: str) -> None:
    """Bad arguments to serve-metrics exit with code 2 and one line naming the problem."""
    store = tmp_path / "runs.sqlite"
    store.write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello")
    try:
        code = main([arg.format(tmp=tmp_path, store=store) for arg in argv])
    except SystemExit as exit_:  # argparse rejects bad values itself
        code = int(exit_.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_serve_metrics_command_on_a_busy_port_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """serve-metrics on a port already taken exits with code 2 and one line naming the address."""
    store = tmp_path / "runs.sqlite"
    with Analytics(store=store) as worker:
        worker.track("job", name="work")(lambda: None)()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve-metrics", str(store), "--port", str(port)])
    assert code == 2
    err = capsys.readouterr().err
    assert err == f"callmetrics: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
