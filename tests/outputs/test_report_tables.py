"""The report's tables (test_report.py checks the page as a whole)."""

import re
from html import unescape
from pathlib import Path

from test_report import CallsSource, call, cells, make, record, table_rows, tail_source

from callmetrics import AnalyticsConfig
from callmetrics._outputs.report import build_report, render_report


def test_failures_are_grouped_by_function_type_and_message_newest_first() -> None:
    """Each group counts its calls and shows its newest call's time, duration and location."""
    calls = [call(float(i), 0.001, "fetch", error="ConnectionError",
                  message=f"upstream refused user {i % 2}", location=f"app.py:{10 + i} in fetch")
             for i in range(6)]
    calls += [call(2.5, 0.004, "fetch", error="TimeoutError", message="no answer",
                   location="app.py:40 in fetch"),
              call(3.5, 0.002, "save", error="ConnectionError", message="upstream refused user 0",
                   location="db.py:7 in save"),
              call(7.0, 0.001, "save")]
    report = build_report(CallsSource(calls))
    groups = [(g.name, g.error, g.message, g.count) for g in report["failure_groups"]]
    assert groups == [
        ("fetch", "ConnectionError", "upstream refused user 1", 3),
        ("fetch", "ConnectionError", "upstream refused user 0", 3),
        ("save", "ConnectionError", "upstream refused user 0", 1),
        ("fetch", "TimeoutError", "no answer", 1),
    ]
    newest = report["failure_groups"][0]
    assert newest.location == "app.py:15 in fetch"  # call 5, the newest of its group
    assert newest.example_duration == "1.00 ms"
    html = render_report(CallsSource(calls))
    rows = table_rows(html, "failure-table")
    assert len(rows) == 4
    first = cells(rows[0])
    assert first[1:4] == ["ConnectionError", "upstream refused user 1", "3"]
    assert first[6] == "app.py:15 in fetch"


def test_failures_without_message_or_location_say_so() -> None:
    """Old stores have neither: the group still shows, with 'no message recorded'."""
    calls = [call(0, 0.001, "old", error="ValueError"), call(1, 0.001, "old", error="ValueError"),
             call(2, 0.001, "old", error="ValueError", message="")]
    html = render_report(CallsSource(calls))
    rows = table_rows(html, "failure-table")
    assert len(rows) == 2
    texts = [cells(row) for row in rows]
    assert texts[0][2] == "empty message"
    assert texts[1][2] == "no message recorded"
    assert texts[1][3] == "2"
    assert texts[1][6] == "not recorded"


def test_failure_groups_are_capped_by_report_max_detail_rows() -> None:
    """Past the cap, the section says how many groups it left out."""
    calls = [call(float(i), 0.001, error=f"E{i}") for i in range(5)]
    for cap, shown in ((2, 2), (0, 0)):
        html = render_report(CallsSource(calls, AnalyticsConfig(report_max_detail_rows=cap)))
        section = html[html.index('id="failures"'):html.index('id="time-chart"')]
        assert f"{5 - cap} more groups left out" in section
        assert section.count("<tr><td") == shown


def test_outliers_are_calls_above_their_own_functions_percentiles() -> None:
    """Per function with 20+ calls: retained calls above its p95 and its p99 are counted."""
    source = tail_source()
    report = build_report(source)
    rows = report["outliers"]
    assert [r.name for r in rows] == ["steady"]
    assert rows[0].above_p99 == 2  # 200 and 250 ms; p99 is the 150 ms call
    assert rows[0].above_p95 == 5
    assert rows[0].p99 == "150 ms"
    assert rows[0].slowest == "250 ms"
    details = report["details"]
    assert [(d.name, d.category, d.duration) for d in details] == [
        ("steady", "outlier", "250 ms"), ("steady", "outlier", "200 ms")]
    assert details[0].why == "above its p99 (150 ms)"
    data = report["timeline"]
    assert data["o"] == [i for i, c in enumerate(source.calls)
                         if c.name == "steady" and c.duration > 0.16]


def test_identical_calls_are_never_outliers() -> None:
    """Calls as long as the percentile itself (one sketch bucket) are not past it."""
    source = CallsSource([call(i, 0.001 + 1e-9 * i, "same") for i in range(200)])
    report = build_report(source)
    assert report["outliers"] == []
    assert report["timeline"]["o"] == []


def test_the_thresholds_in_use_are_explained_in_one_line(tmp_path: Path) -> None:
    """The header says what fast, medium, slow and outlier mean, with the configured values."""
    analytics = make(tmp_path, duration_thresholds={"short_max": 0.01, "medium_max": 0.5,
                                                    "long_max": 1.0})
    record(analytics)
    html = analytics.render_report()
    line = unescape(re.search(r'id="thresholds">(.*?)<', html).group(1))  # type: ignore[union-attr]
    assert line.startswith("Fast: up to 10.0 ms; medium: up to 500 ms; slow: above")
    assert "p95 or p99" in line
    assert "20 calls" in line


def test_detail_table_is_newest_first_capped_and_says_what_it_left_out() -> None:
    """Medium and slow calls (absolute thresholds) are listed newest first, capped."""
    calls = [call(float(i), 2.5 if i % 2 else 6.0, "batch") for i in range(9)]
    calls.append(call(20.0, 0.1, "batch"))
    config = AnalyticsConfig(report_max_detail_rows=3)
    html = render_report(CallsSource(calls, config))
    rows = table_rows(html, "detail-table")
    assert len(rows) == 3
    assert [re.search(r'class="row-(\w+)"', r).group(1) for r in rows] == [  # type: ignore[union-attr]
        "slow", "medium", "slow"]
    assert re.search(r'id="left-out">6 more left out<', html)
    assert "slow (over 5.00 s)" in rows[0]
    starts = [d.start for d in build_report(CallsSource(calls, config))["details"]]
    assert starts == sorted(starts, reverse=True)


def test_call_times_carry_milliseconds_so_calls_within_a_second_differ() -> None:
    """Failures, outliers and slow calls show ``HH:MM:SS.mmm``; a custom format is kept."""
    calls = [call(0.120, 0.001, "fetch", error="ConnectionError", message="refused"),
             call(0.870, 0.001, "fetch", error="ConnectionError", message="refused"),
             call(0.950, 3.0, "fetch")]  # medium by the default thresholds
    report = build_report(CallsSource(calls))
    (group,) = report["failure_groups"]
    assert group.first.endswith(".120")
    assert group.last.endswith(".870")
    assert group.first[:-4] == group.last[:-4]  # the same second: only the milliseconds differ
    (slow,) = report["details"]
    assert slow.start.endswith(".950")
    compact = build_report(CallsSource(calls, AnalyticsConfig(compact_time=True)))
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.120", compact["failure_groups"][0].first)
    minutes = build_report(CallsSource(calls, AnalyticsConfig(time_format="%H:%M")))
    assert re.fullmatch(r"\d\d:\d\d", minutes["failure_groups"][0].first)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", report["generated"])
