import base64
import contextlib
import gc
import hashlib
import json
import logging
import os
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from callmetrics import Analytics, AnalyticsConfig, DurationSketch, FunctionSnapshot
from callmetrics._report import build_report

HOSTILE = "<script>alert(1)</script>"


def make(tmp_path: Path, **config: Any) -> Analytics:
    settings: dict[str, Any] = {"report_dir": tmp_path / "reports"}
    settings.update(config)
    return Analytics(AnalyticsConfig(**settings))


def record(analytics: Analytics, *, ok: int = 5, failing: int = 2,
           name: str = "job") -> None:
    @analytics.track("work", name=name)
    def job(fail: bool) -> None:
        if fail:
            raise ValueError("bad input")

    for i in range(ok + failing):
        with contextlib.suppress(ValueError):
            job(i >= ok)


def timeline(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>',
                      html, re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def table_rows(html: str, table_id: str) -> list[str]:
    found = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert found is not None
    return re.findall(r"<tr[^>]*>.*?</tr>", found.group(1), re.S)


def test_report_is_one_self_contained_file(tmp_path: Path) -> None:
    """The report references nothing outside itself and only runs its own, hashed script."""
    analytics = make(tmp_path)
    record(analytics)
    html = analytics.render_report()
    assert html.startswith("<!doctype html>")
    assert re.search(r"https?://", html) is None
    assert re.findall(r'(?:src|href)="([^"]*)"', html) == ["data:,"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert [attrs for attrs, _ in scripts] == [' type="application/json" id="timeline-data"', ""]
    digest = base64.b64encode(hashlib.sha256(scripts[1][1].encode()).digest()).decode()
    assert "default-src 'none'" in html
    assert f"script-src 'sha256-{digest}'" in html
    assert "prefers-color-scheme: dark" in html


def test_hostile_names_are_escaped_everywhere(tmp_path: Path) -> None:
    """A function, event type or error made of markup shows as text and cannot run."""
    analytics = make(tmp_path)

    class Evil(Exception):  # noqa: N818  # named for the test, not a library error
        pass

    Evil.__name__ = "<img src=x onerror=alert(2)>"

    @analytics.track("<b>type</b>", name=HOSTILE)
    def hostile() -> None:
        raise Evil

    for _ in range(2):
        with pytest.raises(Evil):
            hostile()
    html = analytics.render_report()
    assert HOSTILE not in html
    assert "<img" not in html
    assert "<b>type" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script") == 2
    data = timeline(html)
    assert data["names"] == [HOSTILE]
    assert data["errors"] == ["<img src=x onerror=alert(2)>"]


def test_header_and_function_table_cover_every_call(tmp_path: Path) -> None:
    """Counts come from the exact aggregates, not just the retained events."""
    analytics = make(tmp_path, max_events=10)
    record(analytics, ok=90, failing=10)
    record(analytics, ok=3, failing=0, name="other")
    html = analytics.render_report(force_mode=True)
    assert re.search(r'id="kpi-calls">103<', html)
    assert re.search(r'id="kpi-functions">2<', html)
    assert re.search(r'id="kpi-retained">10<', html)
    assert "full run" in html
    rows = table_rows(html, "function-table")
    assert len(rows) == 2
    cells = [unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[0])]
    assert cells[:6] == ["job", "work", "100", "90", "10", "90.0%"]
    assert len(cells) == 13
    assert re.search(r'<td data-v="100">100</td>', rows[0])


def test_detail_table_is_newest_first_capped_and_says_what_it_left_out(tmp_path: Path) -> None:
    """Failures are listed newest first, at most report_max_detail_rows of them."""
    analytics = make(tmp_path, report_max_detail_rows=3)
    record(analytics, ok=4, failing=5)
    html = analytics.render_report()
    rows = table_rows(html, "detail-table")
    assert len(rows) == 3
    assert all('class="row-failure"' in row and "ValueError" in row for row in rows)
    assert re.search(r'id="left-out">2 more left out<', html)
    report = build_report(analytics)
    starts = [d.start for d in report["details"]]
    assert starts == sorted(starts, reverse=True)


def test_short_successful_calls_are_grouped(tmp_path: Path) -> None:
    """Short successful calls are summed per function: count, average and total."""
    analytics = make(tmp_path)
    record(analytics, ok=6, failing=1)
    report = build_report(analytics)
    assert [(g.name, g.event_type, g.count) for g in report["groups"]] == [("job", "work", 6)]
    assert len(table_rows(analytics.render_report(), "group-table")) == 1


def test_timeline_arrays_encode_every_retained_call(tmp_path: Path) -> None:
    """The timeline data holds each retained call's start, duration, function and failure."""
    analytics = make(tmp_path)
    record(analytics, ok=3, failing=2)
    record(analytics, ok=2, failing=0, name="second")
    raw = analytics.raw_events()
    data = timeline(analytics.render_report())
    assert len(data["s"]) == len(data["d"]) == len(data["f"]) == len(raw) == 7
    starts = [sum(data["s"][: i + 1]) for i in range(len(raw))]
    assert starts == [round((r[0] - raw[0][0]) * 1e6) for r in raw]
    for got, event in zip(data["d"], raw, strict=True):
        assert got == pytest.approx(event[1] * 1e6, rel=0.01, abs=1e-3)
    assert [data["names"][f] for f in data["f"]] == [r[3].name for r in raw]
    failed = [i for i, r in enumerate(raw) if r[2] is not None]
    assert [pair[0] for pair in data["x"]] == failed
    assert data["errors"] == ["ValueError"]


def test_charts_have_bars_histograms_and_percentile_lines(tmp_path: Path) -> None:
    """Time bars cap at 20 plus an 'other' bar; histograms cover the busiest functions."""
    analytics = make(tmp_path)
    for i in range(25):
        record(analytics, ok=i + 1, failing=0, name=f"f{i:02d}")
    report = build_report(analytics)
    assert len(report["bars"]) == 21
    assert report["bars"][-1].other
    assert report["bars"][-1].label == "5 other functions"
    assert len(report["histograms"]) == 12
    assert report["histograms"][0].name == "f24"
    for hist in report["histograms"]:
        assert sum(int(b.tip.split(": ")[1].split(" calls")[0]) for b in hist.bars) == hist.calls
        assert [m.label for m in hist.markers] == ["p50", "p95", "p99"]


def test_generate_reports_writes_the_default_files(tmp_path: Path) -> None:
    """Incremental and full reports go to report_dir under their seed names."""
    analytics = make(tmp_path)
    record(analytics)
    incremental = analytics.generate_reports()
    full = analytics.generate_reports(force_mode=True)
    assert incremental == tmp_path / "reports" / "analytics_incremental.html"
    assert full == tmp_path / "reports" / "analytics_full.html"
    assert "incremental run" in incremental.read_text("utf-8")
    assert "full run" in full.read_text("utf-8")
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "analytics_full.html", "analytics_incremental.html"]
    assert full.stat().st_mode & 0o777 == 0o644


def test_generate_reports_logs_the_summary_first(
    tmp_path: Path, loggers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The two summary lines are logged on the console logger before the file is written."""
    analytics = Analytics(AnalyticsConfig(report_dir=tmp_path), loggers=loggers)
    record(analytics)
    caplog.set_level(logging.INFO)
    analytics.generate_reports(path=tmp_path / "r.html")
    messages = [r.getMessage() for r in caplog.records if r.name == loggers.console.name
                and r.levelno == logging.INFO]
    assert messages[0].startswith("Analytics Summary: 7 calls")
    assert messages[1].startswith("Performance: fast")


def test_nothing_recorded_warns_and_writes_nothing(
    tmp_path: Path, loggers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Without any call the report is skipped with a warning."""
    analytics = Analytics(AnalyticsConfig(report_dir=tmp_path / "r"), loggers=loggers)
    assert analytics.generate_reports() is None
    assert not (tmp_path / "r").exists()
    assert any(r.levelno == logging.WARNING and "No analytics data" in r.getMessage()
               for r in caplog.records)


def test_disabled_analytics_writes_nothing(tmp_path: Path) -> None:
    """Disabled analytics writes no report, even when asked for a path."""
    analytics = make(tmp_path, enabled=False)
    record(analytics)
    assert analytics.generate_reports(path=tmp_path / "x.html") is None
    assert list(tmp_path.iterdir()) == []


def test_an_explicit_unwritable_path_raises_oserror(tmp_path: Path) -> None:
    """An explicit path that cannot be written raises an OSError naming it."""
    analytics = make(tmp_path)
    record(analytics)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    target = blocker / "report.html"
    with pytest.raises(OSError, match=re.escape(str(target))):
        analytics.generate_reports(path=target)


def test_a_failed_default_write_is_logged_and_keeps_the_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A disk-full write returns None, logs once, and leaves the previous report whole."""
    analytics = make(tmp_path)
    record(analytics)
    first = analytics.generate_reports()
    assert first is not None
    before = first.read_bytes()
    record(analytics, name="later")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    # Fault injection: a real disk-full is not available to an unprivileged test.
    monkeypatch.setattr(os, "fsync", disk_full)
    caplog.set_level(logging.ERROR, logger="callmetrics.internal")
    assert analytics.generate_reports() is None
    assert analytics.generate_reports() is None
    assert first.read_bytes() == before
    assert [p.name for p in first.parent.iterdir()] == [first.name]
    errors = [r for r in caplog.records if r.name == "callmetrics.internal"]
    assert len(errors) == 1
    assert "No space left on device" in errors[0].getMessage()


def test_garbage_is_collected_after_a_large_report(tmp_path: Path) -> None:
    """With enable_gc_collect and over 5,000 retained events a full collection runs after."""
    collections: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            collections.append(1)

    for enabled, expected in ((False, 0), (True, 1)):
        analytics = make(tmp_path, enable_gc_collect=enabled)
        record(analytics, ok=Analytics.GC_COLLECTION_THRESHOLD + 1, failing=0)
        collections.clear()
        gc.disable()  # only our explicit collection may run
        gc.callbacks.append(watch)
        try:
            analytics.generate_reports(path=tmp_path / "r.html")
        finally:
            gc.callbacks.remove(watch)
            gc.enable()
        assert len(collections) == expected


def test_report_dir_is_created_when_missing(tmp_path: Path) -> None:
    """Missing folders of the report path are created."""
    analytics = make(tmp_path, report_dir=tmp_path / "a" / "b")
    record(analytics)
    written = analytics.generate_reports()
    assert written is not None
    assert written.parent == tmp_path / "a" / "b"


def test_a_name_that_is_not_valid_unicode_still_writes_a_utf8_report(tmp_path: Path) -> None:
    """A lone surrogate in a name cannot break the write: the file is valid UTF-8."""
    analytics = make(tmp_path)
    record(analytics, name="half\ud800pair")
    written = analytics.generate_reports()
    assert written is not None
    html = written.read_bytes().decode("utf-8")
    assert "half\\ud800pair" in html


def test_latency_section_says_so_when_no_call_took_measurable_time(tmp_path: Path) -> None:
    """Functions whose every call took zero time leave a note instead of an empty section."""
    analytics = make(tmp_path)
    sketch = DurationSketch()
    sketch.add(0.0)
    analytics.restore([FunctionSnapshot(
        name="instant", event_type="t", module="m", calls=1, successes=1, total=0.0, fast=1,
        medium=0, slow=0, overhead=0.0, sketch=sketch, slowest=None, fastest=None)],
        [(1.7e9, 0.0, None, "instant")])
    html = analytics.render_report()
    latency = html[html.index('id="latency"'):html.index('id="timeline-section"')]
    assert 'class="empty"' in latency
    assert "No call took a measurable time" in latency
