"""The report's tables (test_report.py checks the page as a whole)."""

import re
from html import unescape
from pathlib import Path

from test_report import CallsSource, call, cells, make, record, table_rows, tail_source

from callmetrics import AnalyticsConfig
from callmetrics._outputs.report import build_report, render_report


def test_failures_are_grouped_by_cause_most_frequent_first() -> None:
    """Type + raise location + message template: ids in messages do not split a cause."""
    calls = [call(float(i), 0.001, "fetch", error="ConnectionError",
                  message=f"upstream refused user {i}", location="app.py:10 in fetch")
             for i in range(6)]
    calls += [call(2.5, 0.004, "fetch", error="TimeoutError", message="no answer",
                   location="app.py:40 in fetch"),
              call(3.5, 0.002, "save", error="ConnectionError", message="upstream refused user 0",
                   location="db.py:7 in save"),
              call(7.0, 0.001, "save"),
              call(8.0, 0.003, "load", error="ConnectionError", message="upstream refused user 9",
                   location="app.py:10 in fetch")]
    report = build_report(CallsSource(calls))
    groups = [(g.name, g.error, g.template, g.count) for g in report["failure_groups"]]
    assert groups == [
        ("fetch", "ConnectionError", "upstream refused user <n>", 7),
        ("save", "ConnectionError", "upstream refused user <n>", 1),
        ("fetch", "TimeoutError", "no answer", 1),
    ]
    top = report["failure_groups"][0]
    assert top.others == "load (1)"  # the same line reached from another tracked function
    assert top.examples == ["upstream refused user 9", "upstream refused user 5",
                            "upstream refused user 4"]
    assert top.location == "app.py:10 in fetch"
    assert top.example_duration == "3.00 ms"  # the newest call's
    html = render_report(CallsSource(calls))
    rows = table_rows(html, "failure-table")
    assert len(rows) == 3
    first = cells(rows[0])
    assert first[0] == "ConnectionError"
    assert first[1].startswith("upstream refused user <n>")
    assert first[2] == "7"
    assert first[6] == "app.py:10 in fetch"


def test_message_templates_mask_what_varies() -> None:
    """Numbers, hex ids, UUIDs and quoted values are masked; words and identifiers stay."""
    from callmetrics._outputs.failures import template  # noqa: PLC0415

    assert template("GET /users/1422 timed out") == "GET /users/<n> timed out"
    assert template("card declined (amount=14.76)") == "card declined (amount=<n>)"
    assert template("object at 0x7f3a9c2b1d90 freed") == "object at <hex> freed"
    assert template("job 3f2a9c1e8b7d4a60 failed") == "job <hex> failed"
    assert (template("order 123e4567-e89b-12d3-a456-426614174000 lost")
            == "order <uuid> lost")
    assert template("no key 'alice' in \"users\"") == "no key '<value>' in \"<value>\""
    assert template("fn_10 and utf8 are names") == "fn_10 and utf8 are names"
    # KeyError quotes its whole message: a sentence keeps its words, its values go.
    assert template("\"session 'ab12' expired\"") == "\"session '<value>' expired\""


def test_the_failures_section_shows_the_top_groups_and_collapses_the_rest() -> None:
    """Past eight groups a button shows the rest; every group is in the page."""
    calls = [call(float(i), 0.001, error=f"E{i}") for i in range(11)]
    html = render_report(CallsSource(calls))
    assert 'data-show="8"' in html
    assert len(table_rows(html, "failure-table")) == 11


def test_raise_locations_are_shown_relative() -> None:
    """Paths under the working directory lose it; a library's lose site-packages/."""
    from callmetrics._outputs.failures import short_location  # noqa: PLC0415

    assert short_location("/srv/app/api.py:3 in get", cwd="/srv/app") == "api.py:3 in get"
    assert (short_location("/usr/lib/python3/site-packages/req/m.py:9 in r", cwd="/srv")
            == "req/m.py:9 in r")
    assert short_location("/other/x.py:1 in f", cwd="/srv") == "/other/x.py:1 in f"
    assert short_location(None) is None


def test_failures_without_message_or_location_say_so() -> None:
    """Old stores have neither: the group still shows, with 'no message recorded'."""
    calls = [call(0, 0.001, "old", error="ValueError"), call(1, 0.001, "old", error="ValueError"),
             call(2, 0.001, "old", error="ValueError", message="")]
    html = render_report(CallsSource(calls))
    rows = table_rows(html, "failure-table")
    assert len(rows) == 2
    texts = [cells(row) for row in rows]
    assert texts[0][1] == "no message recorded"
    assert texts[0][2] == "2"
    assert texts[0][6] == "not recorded"
    assert texts[1][1] == "empty message"


def test_failure_groups_are_capped_by_report_max_detail_rows() -> None:
    """Past the cap, the section says how many groups it left out."""
    calls = [call(float(i), 0.001, error=f"E{i}") for i in range(5)]
    for cap, shown in ((2, 2), (0, 0)):
        html = render_report(CallsSource(calls, AnalyticsConfig(report_max_detail_rows=cap)))
        section = html[html.index('id="failures"'):html.index('id="time-chart"')]
        assert f"{5 - cap} more groups left out" in section
        assert section.count("<tr data-fn") == shown


def test_outliers_are_calls_above_their_own_functions_percentiles() -> None:
    """Per function with 20+ calls and a long tail: retained calls above its p99."""
    source = tail_source()
    report = build_report(source)
    rows = report["outliers"]
    assert [r.name for r in rows] == ["steady"]
    assert rows[0].above_p99 == 2  # 200 and 250 ms; p99 is the 150 ms call
    assert rows[0].p99 == "150 ms"
    assert rows[0].slowest == "250 ms"
    assert rows[0].spread == "143\u00d7"  # p99 / p50 (the sketch's), rounded to what matters
    assert rows[0].excess == "448 ms"  # (200 - 1.01) + (250 - 1.01) ms
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
    assert "above their own function's p99" in line
    assert "at least 5\u00d7 their p50 and at least 100 \u00b5s" in line
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
