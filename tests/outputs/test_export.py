"""The documented JSON shape of statistics: to_dict() and ``stats --json``."""

from __future__ import annotations

import contextlib
import json

import pytest

from callmetrics import Analytics
from callmetrics._outputs.export import SCHEMA, SCHEMA_VERSION, to_dict

FIGURES = {"calls", "successes", "failures", "success_rate", "total_time", "avg_duration",
           "min_duration", "max_duration", "p50", "p90", "p95", "p99", "duration_counts",
           "slowest", "fastest"}
EVENT = {"function", "event_type", "start", "end", "duration", "success", "error"}


def _workload(analytics: Analytics) -> None:
    @analytics.track("API call")
    def fetch(i: int) -> int:
        if i % 4 == 0:
            raise KeyError(i)
        return i

    @analytics.track("CPU")
    def crunch(n: int) -> int:
        return sum(range(n))

    for i in range(40):
        with contextlib.suppress(KeyError):
            fetch(i)
        crunch(20_000 if i % 10 == 0 else 10)


def test_shape_has_schema_totals_and_functions(analytics: Analytics) -> None:
    """The dict carries its schema name and version, totals and one entry per function."""
    _workload(analytics)
    data = to_dict(analytics)
    assert data["schema"] == SCHEMA == "callmetrics.stats"
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert data["generated_at"].endswith("Z")
    assert set(data) == {"schema", "schema_version", "generated_at", "totals", "functions",
                         "errors", "environment"}
    assert set(data["environment"]) == {"python", "platform", "hot_path", "argv", "host",
                                        "pid", "label"}
    assert set(data["totals"]) == FIGURES | {"function_count", "event_count", "wall_time",
                                             "self_time", "cpu_time"}
    assert [f["name"] for f in data["functions"]] == sorted(
        analytics.call_counts, key=lambda n: -analytics.get_stats(n)["total_time"])
    for entry in data["functions"]:
        assert set(entry) == FIGURES | {"name", "event_type", "module", "overhead", "self_time",
                                        "inclusive_time", "active_time", "callers",
                                        "failures_by_type", "cpu_time"}
        assert entry["cpu_time"] is None  # not measured (cpu_time=False): unknown, not 0
        assert set(entry["slowest"]) == EVENT
    by_name = {entry["name"].rsplit(".", 1)[-1]: entry for entry in data["functions"]}
    assert by_name["fetch"]["failures_by_type"] == {"KeyError": 10}
    assert by_name["crunch"]["failures_by_type"] == {}
    assert data["totals"]["cpu_time"] is None


def test_totals_agree_with_get_stats(analytics: Analytics) -> None:
    """Every total equals the matching get_stats() figure."""
    _workload(analytics)
    totals = to_dict(analytics)["totals"]
    stats = analytics.get_stats()
    assert totals["calls"] == stats["total_calls"] == 80
    assert totals["successes"] == stats["total_success"]
    assert totals["failures"] == 10
    for key in ("success_rate", "avg_duration", "min_duration", "max_duration", "p50", "p90",
                "p95", "p99", "duration_counts", "function_count", "event_count"):
        assert totals[key] == pytest.approx(stats[key]), key
    assert totals["total_time"] == pytest.approx(stats["total_time"])
    assert totals["slowest"]["duration"] == stats["slowest"].duration
    assert totals["fastest"]["start"] == stats["fastest"].start


def test_function_entries_describe_each_function(analytics: Analytics) -> None:
    """A function's entry holds its counts, failures with their error type, and overhead."""
    _workload(analytics)
    fetch = next(f for f in to_dict(analytics)["functions"] if f["event_type"] == "API call")
    assert (fetch["calls"], fetch["successes"], fetch["failures"]) == (40, 30, 10)
    assert fetch["success_rate"] == 75.0
    assert fetch["p50"] == analytics.get_stats(fetch["name"])["p50"]
    assert fetch["overhead"] == pytest.approx(analytics.decorator_overhead[fetch["name"]])
    failed = [fetch["slowest"], fetch["fastest"]]
    for event in failed:
        assert event["end"] == pytest.approx(event["start"] + event["duration"])
        assert event["success"] is (event["error"] is None)
        assert event["error"] in (None, "KeyError")


def test_it_is_strict_json(analytics: Analytics) -> None:
    """The dict serialises as strict JSON (no NaN or infinity) and reads back equal."""
    _workload(analytics)
    data = to_dict(analytics)
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_nothing_recorded_gives_zeros_and_nulls(analytics: Analytics) -> None:
    """With no calls the totals are zero, percentiles and extremes null, no functions."""
    data = to_dict(analytics)
    assert data["functions"] == []
    totals = data["totals"]
    assert (totals["calls"], totals["success_rate"], totals["total_time"]) == (0, 0.0, 0.0)
    assert [totals[k] for k in ("p50", "p90", "p95", "p99", "slowest", "fastest")] == [None] * 6


def test_analytics_to_dict_is_the_same_shape(analytics: Analytics) -> None:
    """Analytics.to_dict() returns this module's dict."""
    _workload(analytics)
    mine, theirs = analytics.to_dict(), to_dict(analytics)
    mine.pop("generated_at")
    theirs.pop("generated_at")
    # A live instance's wall time runs to each reading: the later one is longer.
    assert 0 < mine["totals"].pop("wall_time") <= theirs["totals"].pop("wall_time")
    assert mine == theirs


def test_errors_group_the_retained_failures_by_cause(analytics: Analytics) -> None:
    """`errors` groups retained failed calls by type, location and message template."""
    _workload(analytics)
    errors = to_dict(analytics)["errors"]
    assert {e["error"] for e in errors} == {"KeyError"}
    assert sum(e["count"] for e in errors) == 10
    for group in errors:
        assert set(group) == {"function", "functions", "event_type", "error", "template",
                              "message", "examples", "location", "count", "first", "last"}
        assert group["function"].endswith("fetch")
        assert group["first"] <= group["last"]
        # Filled in once the engine records them; never anything but text or null.
        assert group["message"] is None or isinstance(group["message"], str)
        assert group["location"] is None or isinstance(group["location"], str)
    # KeyError(20), KeyError(24)...: one line of code, one cause, the ids masked.
    (group,) = errors
    assert group["template"] == "<n>"
    assert group["examples"] == ["36", "32", "28"]
    assert group["functions"] == {group["function"]: 10}


def test_errors_use_message_and_location_from_the_source() -> None:
    """Calls read through the Source interface keep their message and location."""
    from callmetrics._engine.view import RetainedCall  # noqa: PLC0415
    from callmetrics._outputs.export import error_groups  # noqa: PLC0415

    calls = [RetainedCall(1.0, 0.1, "f", "t", "ValueError", "user 7 not found", "a.py:3 in f"),
             RetainedCall(2.0, 0.1, "f", "t", "ValueError", "user 7 not found", "a.py:3 in f"),
             RetainedCall(3.0, 0.1, "f", "t", "ValueError", "user 8 not found", "a.py:3 in f"),
             RetainedCall(4.0, 0.1, "f", "t", None)]
    (group,) = error_groups(calls)
    assert (group["template"], group["message"], group["count"], group["first"],
            group["last"]) == ("user <n> not found", "user 8 not found", 3, 1.0, 3.0)
    assert group["examples"] == ["user 8 not found", "user 7 not found"]
    assert group["location"] == "a.py:3 in f"
