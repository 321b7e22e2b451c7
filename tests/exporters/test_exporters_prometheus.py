from __future__ import annotations

import http.client
import logging
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from callmetrics import Analytics, DurationSketch, FunctionSnapshot, implementation
from callmetrics._version import __version__
from callmetrics.exporters import DEFAULT_BUCKETS
from callmetrics.exporters.prometheus import (
    CallmetricsCollector,
    _go_float,
    push_metrics,
    serve_metrics,
)
from conftest import make_calls

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples_of(text: str) -> Samples:
    """Map (sample name, sorted labels) to value for an exposition text."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(collector: CallmetricsCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def labels(function: str, event_type: str, module: str = "conftest",
           **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"function": function, "event_type": event_type, "module": module,
                         **more}.items()))


def test_counts_are_exact(analytics: Analytics) -> None:
    """Calls, failures, histogram count and +Inf bucket equal the calls made."""
    make_calls(analytics, ok=5000, failing=21)
    got = samples_of(scrape(CallmetricsCollector(analytics)))
    key = labels("work", "unit")
    assert got["callmetrics_calls_total", key] == 5021
    assert got["callmetrics_failures_total", labels("work", "unit", error_type="ValueError")] \
        == 21
    assert got["callmetrics_call_duration_seconds_count", key] == 5021
    assert got["callmetrics_call_duration_seconds_bucket", labels("work", "unit", le="+Inf")] \
        == 5021
    assert got["callmetrics_call_duration_seconds_sum", key] == pytest.approx(
        analytics.get_stats()["total_time"])
    assert got["callmetrics_decorator_overhead_seconds_total", key] > 0
    assert got["callmetrics_source_up", ()] == 1


def test_every_scrape_reads_afresh(analytics: Analytics) -> None:
    """A later scrape shows the calls made since the previous one."""
    collector = CallmetricsCollector(analytics)
    make_calls(analytics, ok=2, failing=0)
    assert samples_of(scrape(collector))["callmetrics_calls_total", labels("work", "unit")] == 2
    make_calls(analytics, ok=3, failing=0)
    assert samples_of(scrape(collector))["callmetrics_calls_total", labels("work", "unit")] == 5


def sketch_of(values: list[float]) -> DurationSketch:
    sketch = DurationSketch()
    for value in values:
        sketch.add(value)
    return sketch


def snapshot_of(durations: list[float], name: str = "job") -> FunctionSnapshot:
    """Aggregates of successful calls of known durations, as a store load gives them."""
    return FunctionSnapshot(
        name=name, event_type="batch", module="m", calls=len(durations),
        successes=len(durations), total=sum(durations), fast=len(durations), medium=0, slow=0,
        overhead=0.0, sketch=sketch_of(durations), slowest=None, fastest=None)


def restored(durations: list[float], name: str = "job") -> Analytics:
    """An instance holding calls of known durations (as a store load gives them)."""
    analytics = Analytics()
    analytics.restore([snapshot_of(durations, name)], [])
    return analytics


def buckets_of(text: str) -> dict[str, float]:
    """Map each le of the duration histogram to its count, for a one-function exposition."""
    return {dict(key)["le"]: value for (name, key), value in samples_of(text).items()
            if name == "callmetrics_call_duration_seconds_bucket"}


def test_buckets_are_cumulative_counts_from_the_sketch() -> None:
    """Each le bucket counts the calls that took at most that long."""
    analytics = restored([0.001] * 90 + [0.2] * 9 + [3.0])
    got = samples_of(scrape(CallmetricsCollector(analytics, buckets=[0.01, 0.1, 1, 10])))
    buckets = {dict(key)["le"]: value for (name, key), value in got.items()
               if name == "callmetrics_call_duration_seconds_bucket"}
    assert buckets == {"0.01": 90, "0.1": 90, "1.0": 99, "10.0": 100, "+Inf": 100}
    assert got["callmetrics_call_duration_seconds_sum", labels("job", "batch", "m")] == \
        pytest.approx(0.09 + 1.8 + 3.0)


def test_buckets_never_decrease_when_slower_calls_arrive() -> None:
    """A call counted in a bucket stays counted there after slower calls come (a counter)."""
    analytics = restored([0.75])  # exactly a bound, and for now the slowest call
    collector = CallmetricsCollector(analytics, buckets=[0.25, 0.5, 0.75, 1.0, 2.5])
    before = buckets_of(scrape(collector))
    analytics.restore([snapshot_of([2.0])], [])
    after = buckets_of(scrape(collector))
    assert after["+Inf"] == 2
    assert {le: after[le] - before[le] for le in before if after[le] < before[le]} == {}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.floats(0.0, 12.0), min_size=1, max_size=5), min_size=2,
                max_size=4))
def test_buckets_are_monotone_in_le_and_over_time(batches: list[list[float]]) -> None:
    """Across scrapes no bucket decreases; within one, counts grow with le up to +Inf."""
    analytics = Analytics()
    collector = CallmetricsCollector(analytics)  # bounds derived from the data
    previous: dict[str, float] = {}
    for batch in batches:
        analytics.restore([snapshot_of(batch)], [])
        now = buckets_of(scrape(collector))
        counts = [now[le] for le in sorted(now, key=float)]
        assert counts == sorted(counts)
        # A bound once exposed stays, and its count never drops.
        assert all(now[le] >= count for le, count in previous.items())
        previous = now


def test_fixed_default_buckets_span_a_microsecond_to_ten_seconds() -> None:
    """DEFAULT_BUCKETS, the fixed alternative, runs 1-2.5-5 per decade from 1 µs to 10 s."""
    assert DEFAULT_BUCKETS[0] == 1e-6
    assert DEFAULT_BUCKETS[-1] == 10.0
    text = scrape(CallmetricsCollector(restored([0.3]), buckets=DEFAULT_BUCKETS))
    assert set(buckets_of(text)) == {*map(_go_float, DEFAULT_BUCKETS), "+Inf"}


def test_default_buckets_are_derived_from_the_data() -> None:
    """Without buckets, ten bounds a decade span the calls of every function, a decade beyond."""
    analytics = restored([3e-7, 3e-3])
    analytics.restore([snapshot_of([0.04], name="other")], [])
    text = scrape(CallmetricsCollector(analytics))
    bounds = sorted(float(dict(key)["le"]) for (name, key), _ in samples_of(text).items()
                    if name == "callmetrics_call_duration_seconds_bucket"
                    and dict(key)["function"] == "job")
    assert bounds[0] == 1e-8  # a decade below the fastest call's decade
    assert bounds[-2] == 1.0  # a decade above the slowest call's (of any function)
    assert len(bounds) - 1 == 8 * 10 + 1
    assert 1.25e-6 in bounds
    assert 3.15e-3 in bounds


def test_derived_buckets_do_not_move_when_calls_arrive_inside_the_range() -> None:
    """Calls inside the spanned range leave the bounds as they were (series stay stable)."""
    analytics = restored([2e-6, 0.5])
    collector = CallmetricsCollector(analytics)
    before = set(buckets_of(scrape(collector)))
    analytics.restore([snapshot_of([1.1e-6, 3e-4, 0.02, 0.9])], [])  # the same decades
    assert set(buckets_of(scrape(collector))) == before


def test_label_values_are_escaped_by_the_library(analytics: Analytics) -> None:
    """Quotes, backslashes and newlines in names survive the exposition format."""
    odd = 'say "hi"\\ to\nnewline'
    make_calls(analytics, ok=2, failing=0, name=odd)
    text = scrape(CallmetricsCollector(analytics))
    assert 'function="say \\"hi\\"\\\\ to\\nnewline"' in text
    assert samples_of(text)["callmetrics_calls_total", labels(odd, "unit")] == 2


def test_no_calls_exposes_only_up(analytics: Analytics) -> None:
    """An instance without calls exposes no per-function series."""
    assert samples_of(scrape(CallmetricsCollector(analytics))) == {
        ("callmetrics_functions_overflowed", ()): 0, ("callmetrics_source_up", ()): 1,
        ("callmetrics_build_info", (("hot_path", implementation), ("version", __version__))): 1}


def test_unreadable_store_reports_source_down(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """A broken store gives callmetrics_source_up 0 and a logged error, not a failed scrape."""
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    collector = CallmetricsCollector(broken)
    with caplog.at_level(logging.ERROR, logger="callmetrics.internal"):
        got = samples_of(scrape(collector))
    assert got == {("callmetrics_source_up", ()): 0}
    assert str(broken) in caplog.text


def test_registering_reads_nothing(tmp_path: Path) -> None:
    """Registering reads nothing: the store need not exist yet, and nothing is created."""
    registry = CollectorRegistry(auto_describe=True)
    store = tmp_path / "not-yet-written.sqlite"
    collector = CallmetricsCollector(store)
    registry.register(collector)
    assert collector.describe() == []
    assert not store.exists()


@pytest.mark.parametrize(("buckets", "error", "match"), [
    ([0.5, 0.1], ValueError, "strictly increasing"),
    ([-1.0], ValueError, ">= 0"),
    ([float("nan")], ValueError, ">= 0"),
    (["1"], TypeError, "numbers"),
    ("0.1,1", TypeError, "iterable"),
])
def test_bad_buckets_fail_early(analytics: Analytics, buckets: object, error: type[Exception],
                                match: str) -> None:
    """Bad bucket bounds raise at once, naming buckets."""
    with pytest.raises(error, match=f"buckets.*{match}|{match}.*buckets|buckets must"):
        CallmetricsCollector(analytics, buckets=buckets)  # type: ignore[arg-type]


def test_infinity_may_be_spelled_out(analytics: Analytics) -> None:
    """A trailing +Inf bound is accepted and not doubled."""
    assert CallmetricsCollector(analytics, buckets=[1, float("inf")]).buckets == (1.0,)


def test_bad_source_fails_early() -> None:
    """A source that is neither an instance nor a path raises TypeError naming source."""
    with pytest.raises(TypeError, match="source"):
        CallmetricsCollector(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source"):
        CallmetricsCollector("")


def test_serve_metrics_serves_and_stops(analytics: Analytics) -> None:
    """serve_metrics answers on /metrics and frees the port when closed."""
    make_calls(analytics, ok=4, failing=1)
    with serve_metrics(analytics, 0) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(server.url, timeout=10) as response:  # noqa: S310  # loopback
            text = response.read().decode()
    assert samples_of(text)["callmetrics_calls_total", labels("work", "unit")] == 5
    with pytest.raises(OSError, match="refused"):
        urllib.request.urlopen(server.url, timeout=10)  # noqa: S310  # loopback
    server.close()  # a second close is harmless


def _get(port: int, path: str) -> tuple[int, str, str]:
    """GET ``path`` as written (no client-side normalisation); return status, type, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", \
            response.read().decode()
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/anything", "/../../etc/passwd", "/metrics/x",
                                  "/metricsx", "/favicon.ico", "/index.html"])
def test_serve_metrics_answers_only_metrics(analytics: Analytics, path: str) -> None:
    """Only /metrics serves the metrics; / links to it; any other path is 404 without them."""
    make_calls(analytics, ok=2, failing=0)
    with serve_metrics(analytics, 0) as server:
        status, kind, body = _get(server.port, "/metrics")
        assert status == 200
        assert "callmetrics_calls_total" in body
        assert kind.startswith("text/plain")
        status, kind, body = _get(server.port, "/")
        assert (status, kind) == (200, "text/html; charset=utf-8")
        assert 'href="/metrics"' in body
        status, _kind, body = _get(server.port, path)
        assert status == 404
        assert "callmetrics_" not in body
        assert "root:" not in body


@pytest.mark.parametrize(("port", "addr", "error", "match"), [
    (-1, "127.0.0.1", ValueError, "port"),
    (70000, "127.0.0.1", ValueError, "port"),
    ("80", "127.0.0.1", TypeError, "port"),
    (True, "127.0.0.1", TypeError, "port"),
    (0, "", ValueError, "addr"),
    (0, None, TypeError, "addr"),
])
def test_serve_metrics_rejects_bad_arguments(analytics: Analytics, port: object, addr: object,
                                             error: type[Exception], match: str) -> None:
    """A bad port or address raises at once, naming it."""
    with pytest.raises(error, match=match):
        serve_metrics(analytics, port, addr)  # type: ignore[arg-type]


def test_push_metrics_rejects_bad_arguments(analytics: Analytics) -> None:
    """An empty gateway or job raises at once, naming it."""
    with pytest.raises(ValueError, match="gateway"):
        push_metrics(analytics, "", "job")
    with pytest.raises(ValueError, match="job"):
        push_metrics(analytics, "127.0.0.1:9", " ")


def test_push_to_nowhere_raises_oserror(analytics: Analytics) -> None:
    """A gateway that is not there gives an OSError the batch job can handle."""
    with serve_metrics(analytics, 0) as server:
        port = server.port  # a port known to be free once the server is closed
    with pytest.raises(OSError, match="refused"):
        push_metrics(analytics, f"127.0.0.1:{port}", "job", timeout=10)


def write_run(store: Path, calls: int, failing: int = 0) -> None:
    """Record calls in one run of a store, as one worker process does."""
    with Analytics(store=store) as worker:
        make_calls(worker, ok=calls, failing=failing)


def test_store_source_counts_every_run_once(tmp_path: Path) -> None:
    """A store written by several runs exposes their sum, each counted once."""
    store = tmp_path / "runs.sqlite"
    write_run(store, 3000)
    write_run(store, 5000, failing=3)
    write_run(store, 7)
    got = samples_of(scrape(CallmetricsCollector(store)))
    key = labels("work", "unit")
    assert got["callmetrics_calls_total", key] == 8010
    assert got["callmetrics_failures_total", labels("work", "unit", error_type="ValueError")] \
        == 3
    assert got["callmetrics_call_duration_seconds_count", key] == 8010
    assert got["callmetrics_source_up", ()] == 1


def test_store_source_is_reread_on_every_scrape(tmp_path: Path) -> None:
    """Runs written after the collector was made show in the next scrape."""
    store = tmp_path / "runs.sqlite"
    write_run(store, 2)
    collector = CallmetricsCollector(str(store))
    assert samples_of(scrape(collector))["callmetrics_calls_total", labels("work", "unit")] == 2
    write_run(store, 5)
    assert samples_of(scrape(collector))["callmetrics_calls_total", labels("work", "unit")] == 7


def test_clearing_old_events_keeps_the_store_counters(tmp_path: Path) -> None:
    """clear_old_events() deletes stored events only: the exposed counters keep every call."""
    store = tmp_path / "runs.sqlite"
    write_run(store, 5)
    with Analytics(store=store) as worker:
        make_calls(worker, ok=2, failing=1)
        worker.flush()
        worker.clear_old_events(0)
    got = samples_of(scrape(CallmetricsCollector(store)))
    assert got["callmetrics_calls_total", labels("work", "unit")] == 8
    assert got["callmetrics_failures_total",
               labels("work", "unit", error_type="ValueError")] == 1


def test_missing_store_reports_source_down(tmp_path: Path) -> None:
    """A store that does not exist (yet) is reported down rather than failing the scrape."""
    got = samples_of(scrape(CallmetricsCollector(tmp_path / "none.sqlite")))
    assert got == {("callmetrics_source_up", ()): 0}


def test_names_past_max_functions_are_one_series_and_say_so(tmp_path: Path) -> None:
    """Past the cap, new names share the '<other functions>' series and the gauge reads 1.

    Both for a live instance and for the store it wrote (what serve-metrics reads).
    """
    store = tmp_path / "runs.db"
    analytics = Analytics({"max_functions": 2}, store=store)
    for name in ("f0", "f1"):
        make_calls(analytics, ok=3, failing=1, name=name)
    collector = CallmetricsCollector(analytics)
    assert samples_of(scrape(collector))["callmetrics_functions_overflowed", ()] == 0
    for name in ("f2", "f3", "f4"):
        make_calls(analytics, ok=3, failing=1, name=name)
    analytics.close()
    for source in (analytics, store):
        got = samples_of(scrape(CallmetricsCollector(source)))
        assert got["callmetrics_functions_overflowed", ()] == 1
        other = labels("<other functions>", "mixed", "<overflow>")
        assert got["callmetrics_calls_total", other] == 12
        assert got["callmetrics_failures_total",
                   tuple(sorted((*other, ("error_type", "ValueError"))))] == 3
        assert got["callmetrics_call_duration_seconds_count", other] == 12
        calls = {key: value for (metric, key), value in got.items()
                 if metric == "callmetrics_calls_total"}
        assert calls == {labels("f0", "unit"): 4, labels("f1", "unit"): 4, other: 12}

