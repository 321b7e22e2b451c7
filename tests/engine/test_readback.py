"""Reading back: get_stats(), filters, summaries (the ReadBack part of Analytics)."""


from __future__ import annotations

import logging
import math
import time
from typing import Any

import pytest

from callmetrics import (
    Analytics,
    Event,
    LoggerContainer,
)
from core_helpers import feed

SEED_KEYS = ["Function", "Event Type", "Start Time", "End Time", "Duration (s)", "Success",
             "Error", "Message", "Location"]
DAY = 86_400.0
# asyncio may run a timer up to its clock resolution early; durations of tracked calls
# that await asyncio.sleep(t) are checked against t less this margin.
ASYNCIO_EARLY = 1e-3


STAT_KEYS = {"total_calls", "total_success", "success_rate", "total_time", "avg_duration",
             "slowest", "fastest", "duration_counts", "function_count", "event_count",
             "expected_exceptions",
             "min_duration", "max_duration", "p50", "p90", "p95", "p99",
             # Where the time goes (added to the seed's keys): the instance's wall time
             # and the selected functions' self times, summed.
             "wall_time", "self_time",
             # The measured functions' thread CPU time (None unless cpu_time=True).
             "cpu_time"}


def exact_quantile(values: list[float], q: float) -> float:
    """Return the sample at index floor(q * (n - 1)) of the sorted values."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def test_get_stats_empty(analytics: Analytics) -> None:
    """With no calls, get_stats gives zeros and None for slowest, fastest and percentiles."""
    stats = analytics.get_stats()
    assert set(stats) == STAT_KEYS
    assert stats["total_calls"] == stats["total_success"] == 0
    assert stats["success_rate"] == stats["total_time"] == stats["avg_duration"] == 0
    assert stats["duration_counts"] == {"fast": 0, "medium": 0, "slow": 0}
    assert stats["function_count"] == stats["event_count"] == 0
    assert stats["min_duration"] == stats["max_duration"] == 0
    for key in ("slowest", "fastest", "p50", "p90", "p95", "p99"):
        assert stats[key] is None


def test_get_stats_covers_every_call_not_just_retained() -> None:
    """Totals, averages, extremes and percentiles cover all calls, not the kept events."""
    analytics = Analytics(config={"duration_thresholds": {"short_max": 0.1, "medium_max": 0.5,
                                                          "long_max": 1.0}})
    durations = [0.001 * (i + 1) for i in range(1000)]  # 1 ms .. 1 s
    feed(analytics, "load", durations, failures=100, events=3)
    stats = analytics.get_stats()
    assert set(stats) == STAT_KEYS
    assert stats["total_calls"] == 1000
    assert stats["total_success"] == 900
    assert stats["success_rate"] == pytest.approx(90.0)
    assert stats["total_time"] == pytest.approx(math.fsum(durations))
    assert stats["avg_duration"] == pytest.approx(math.fsum(durations) / 1000)
    assert stats["duration_counts"] == {"fast": 100, "medium": 400, "slow": 500}
    assert stats["function_count"] == 1
    assert stats["event_count"] == 3
    assert stats["min_duration"] == pytest.approx(0.001)
    assert stats["max_duration"] == pytest.approx(1.0)
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        assert stats[key] == pytest.approx(exact_quantile(durations, q), rel=0.01)
    assert isinstance(stats["slowest"], Event)
    assert stats["slowest"].duration == pytest.approx(1.0)
    assert stats["fastest"].duration == pytest.approx(0.001)


def test_get_stats_slowest_is_kept_after_ring_drops_it() -> None:
    """The slowest call ever seen is reported even after its event left the ring."""
    analytics = Analytics(max_events=2)

    @analytics.track("unit")
    def nap(seconds: float) -> None:
        if seconds:
            time.sleep(seconds)

    nap(0.1)
    for _ in range(10):
        nap(0)
    stats = analytics.get_stats()
    slowest = stats["slowest"]
    assert slowest is not None
    assert slowest.duration >= 0.1
    assert slowest.duration == stats["max_duration"]
    assert all(e.duration < slowest.duration for e in analytics.events)
    assert stats["fastest"].duration == stats["min_duration"]


def test_duration_counts_follow_thresholds() -> None:
    """fast/medium/slow count each call by short_max and medium_max."""
    analytics = Analytics(
        config={"duration_thresholds": {"short_max": 0.005, "medium_max": 0.02,
                                         "long_max": 1.0}},
        max_events=0,
    )

    @analytics.track("unit")
    def nap(seconds: float) -> None:
        time.sleep(seconds)

    for seconds in (0, 0, 0.01, 0.03, 0.03):
        nap(seconds)
    durations = [e.duration for e in analytics.events]
    expected = {
        "fast": sum(1 for d in durations if d <= 0.005),
        "medium": sum(1 for d in durations if 0.005 < d <= 0.02),
        "slow": sum(1 for d in durations if d > 0.02),
    }
    counts = analytics.get_stats()["duration_counts"]
    assert counts == expected
    assert counts["slow"] >= 2  # a 30 ms sleep is never faster than 20 ms


def test_get_stats_filters(analytics: Analytics) -> None:
    """A name, a list of names, or an unknown name select the functions counted."""
    feed(analytics, "a", [0.1, 0.2], events=2)
    feed(analytics, "b", [0.3], events=1)
    feed(analytics, "c", [0.4, 0.5, 0.6], events=1)
    one = analytics.get_stats("a")
    assert (one["total_calls"], one["function_count"], one["event_count"]) == (2, 1, 2)
    assert one["total_time"] == pytest.approx(0.3)
    two = analytics.get_stats(["b", "c"])
    assert (two["total_calls"], two["function_count"], two["event_count"]) == (4, 2, 2)
    assert two["max_duration"] == pytest.approx(0.6)
    assert analytics.get_stats(["a", "nope"])["total_calls"] == 2
    unknown = analytics.get_stats("nope")
    assert unknown["total_calls"] == unknown["function_count"] == unknown["event_count"] == 0
    assert unknown["p50"] is None
    assert unknown["slowest"] is None
    # A falsy filter means every function, as in the seed.
    assert analytics.get_stats([])["total_calls"] == 6
    assert analytics.get_stats("")["total_calls"] == 6
    assert analytics.get_stats()["total_calls"] == 6


@pytest.mark.parametrize("bad", [3, 1.5, [1, 2], object()])
def test_get_stats_bad_filter_type(analytics: Analytics, bad: Any) -> None:
    """A filter that is neither a name nor names is a TypeError."""
    with pytest.raises(TypeError, match="function_filter"):
        analytics.get_stats(bad)


# ------------------------------------------------------------------- log_summary


def test_log_summary_lines(loggers: LoggerContainer, caplog: pytest.LogCaptureFixture) -> None:
    """log_summary writes the seed's two INFO lines on the console logger."""
    analytics = Analytics(loggers=loggers)
    feed(analytics, "f", [0.1, 0.2, 3.0, 6.0], failures=1)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        analytics.log_summary()
    lines = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert lines == [
        (loggers.console.name, logging.INFO,
         "Analytics Summary: 4 calls | 75.0% success | avg 2.33 s"),
        (loggers.console.name, logging.INFO, "Performance: fast 50% | medium 25% | slow 25%"),
    ]


def test_log_summary_never_rounds_to_all_or_nothing(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """One failure or one slow call in 2000 still shows: 99.9% success, slow 1%, fast 99%."""
    analytics = Analytics(loggers=loggers)
    feed(analytics, "f", [0.1] * 1999 + [6.0], failures=1)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        analytics.log_summary()
    assert [r.getMessage() for r in caplog.records] == [
        "Analytics Summary: 2,000 calls | 99.9% success | avg 103 ms",
        "Performance: fast 99% | medium 0% | slow 1%",
    ]


def test_log_summary_disabled_logs_nothing(loggers: LoggerContainer,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """A disabled instance's log_summary writes nothing."""
    analytics = Analytics({"enabled": False}, loggers)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        analytics.log_summary()
    assert caplog.records == []


# -------------------------------------------------------------- clear_old_events
