import base64
import contextlib
import gc
import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmetrics import Analytics, AnalyticsConfig, DurationSketch, FunctionSnapshot
from callmetrics._engine.view import Reading, RetainedCall
from callmetrics._format import printable
from callmetrics._outputs.report import generate_reports, render_report

HOSTILE = "<script>alert(1)</script>"
# Characters that must never reach the page raw: escapes, NUL, bell, bidi overrides.
CONTROL = ("\x1b", "\x00", "\x07", "\x9b", "\u202e", "\u2066", "\u200f", "\ufeff")
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
       "script-src 'sha256-")


def make(tmp_path: Path, **config: Any) -> Analytics:
    options: dict[str, Any] = {"report_dir": tmp_path / "reports"}
    options.update(config)
    return Analytics(AnalyticsConfig(**options))


def record(analytics: Analytics, *, ok: int = 5, failing: int = 2,
           name: str = "job") -> None:
    @analytics.track("work", name=name)
    def job(fail: bool) -> None:
        if fail:
            raise ValueError("bad input")

    for i in range(ok + failing):
        with contextlib.suppress(ValueError):
            job(i >= ok)


@dataclass
class CallsSource:
    """A ``Source`` built from retained calls, as a store written by a newer engine gives.

    The aggregates are computed from the calls themselves, so that they agree.
    """

    calls: list[RetainedCall]
    config: AnalyticsConfig = field(default_factory=AnalyticsConfig)

    @property
    def settings(self) -> AnalyticsConfig:
        """The settings given."""
        return self.config

    def snapshot(self) -> list[FunctionSnapshot]:
        """Aggregates of the calls, per function."""
        found: dict[str, list[RetainedCall]] = {}
        for call in self.calls:
            if math.isfinite(call.duration) and call.duration >= 0:  # what a store validates
                found.setdefault(call.name, []).append(call)
        snaps = []
        limits = self.config.duration_thresholds
        for name, calls in sorted(found.items()):
            sketch = DurationSketch()
            for call in calls:
                sketch.add(call.duration)
            durations = [c.duration for c in calls]
            snaps.append(FunctionSnapshot(
                name=name, event_type=calls[0].event_type, module="tests", calls=len(calls),
                successes=sum(c.error is None for c in calls), total=sum(durations),
                fast=sum(d <= limits.short_max for d in durations),
                medium=sum(limits.short_max < d <= limits.medium_max for d in durations),
                slow=sum(d > limits.medium_max for d in durations), overhead=0.0,
                sketch=sketch, slowest=None, fastest=None))
        return snaps

    def retained(self) -> list[RetainedCall]:
        """The calls."""
        return list(self.calls)

    def read(self) -> Reading:
        """Both."""
        return Reading(self.snapshot(), self.retained())


def call(start: float, duration: float, name: str = "f", *, error: str | None = None,
         message: str | None = None, location: str | None = None,
         event_type: str = "t") -> RetainedCall:
    return RetainedCall(1.7e9 + start, duration, name, event_type, error, message, location)


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


def cells(row: str) -> list[str]:
    return [unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row,
                                                                      re.S)]


def test_report_is_one_self_contained_file(tmp_path: Path) -> None:
    """The report references nothing outside itself and only runs its own, hashed script."""
    analytics = make(tmp_path)
    record(analytics)
    html = analytics.render_report()
    assert html.startswith("<!doctype html>")
    assert re.search(r"https?://", html) is None
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert links[0] == "data:,"
    assert all(link.startswith("#") for link in links[1:])  # the section index
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert [attrs for attrs, _ in scripts] == [' type="application/json" id="function-data"',
                                               ' type="application/json" id="timeline-data"', ""]
    digest = base64.b64encode(hashlib.sha256(scripts[2][1].encode()).digest()).decode()
    assert f'content="{CSP}{digest}\'"' in html
    assert "prefers-color-scheme: dark" in html
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers


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
    assert html.count("<script") == 3  # two inert JSON blocks and the hashed script
    data = timeline(html)
    assert data["names"] == [HOSTILE]
    assert data["errors"] == ["<img src=x onerror=alert(2)>"]


def hostile_source() -> CallsSource:
    name = "evil\x1b[2J\u202egnp.exe\x00" + HOSTILE
    kind = "t\x07ype\u2066<b>"
    calls = [call(i * 0.01, 0.001 * (1 + i % 7), name, event_type=kind) for i in range(30)]
    calls += [call(1 + i, 0.002, name, event_type=kind, error="Err\x1b]0;pwned\x07<i>",
                   message="line one\u202e\x9b31m <script>x</script>\x00",
                   location="/srv/\u200fapp.py:12 in <lambda>\ufeff") for i in range(3)]
    calls.append(call(9, 6.0, name, event_type=kind))  # slow: listed in the detail table
    return CallsSource(calls)


def test_control_and_bidi_characters_never_reach_the_page() -> None:
    """Names, event types, errors, messages and locations are printable, then escaped."""
    source = hostile_source()
    html = render_report(source)
    for bad in CONTROL:
        assert bad not in html, repr(bad)
    assert "<i>" not in html
    assert "<b>" not in html
    assert html.count("<script") == 3
    assert CSP in html
    shown = unescape(html.replace("<wbr>", ""))
    for text in ("evil\\x1b[2J\\u202egnp.exe\\x00", "t\\x07ype\\u2066", "Err\\x1b]0;pwned\\x07",
                 "line one\\u202e\\x9b31m", "/srv/\\u200fapp.py:12 in"):
        assert text in shown, text
    rows = table_rows(html, "failure-table")
    assert len(rows) == 1
    assert "gnp.<wbr>exe" in rows[0]  # long dotted names may wrap after their dots
    assert "&lt;wbr" not in html
    assert all(bad not in json.dumps(timeline(html), ensure_ascii=False) for bad in CONTROL)


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=12),
       st.text(max_size=40))
def test_any_text_is_shown_printable_and_escaped(name: str, kind: str, message: str) -> None:
    """Whatever the text, the page holds its printable form and no raw control character."""
    source = CallsSource([call(0, 0.001, name, event_type=kind, error="E", message=message),
                          call(1, 0.002, name, event_type=kind)])
    html = render_report(source)
    body = html[html.index("<body"):html.index('<script type="application/json"')]
    for ch in set(name + kind + message):
        if printable(ch) != ch and ch != "\n":  # the page's own line breaks are newlines
            assert ch not in body, repr(ch)
    assert html.count("<script") == 3
    assert printable(name) in unescape(re.sub(r"<wbr>", "", body))


def test_header_and_function_table_cover_every_call(tmp_path: Path) -> None:
    """Counts come from the exact aggregates, not just the retained events."""
    analytics = make(tmp_path, max_events=10)
    record(analytics, ok=1990, failing=10)
    record(analytics, ok=3, failing=0, name="other")
    html = analytics.render_report(force_mode=True)
    assert re.search(r'id="kpi-calls">2,003<', html)
    assert re.search(r'id="kpi-functions">2<', html)
    assert re.search(r'id="kpi-retained">10<', html)
    assert re.search(r'id="kpi-success" class="bad">99.5%<', html)
    assert "full report" in html
    rows = table_rows(html, "function-table")
    assert len(rows) == 2
    first = cells(rows[0])
    assert first[:6] == ["job", "work", "2,000", "1,990", "10", "99.5%"]
    assert len(first) == 15
    # Self time: the calls made no tracked calls, so it is their whole time (a
    # duration, never "-", which stands for unknown).
    assert first[6] != "-"
    assert re.fullmatch(r"[\d.]+ (ns|µs|ms|s)", first[6])
    assert re.search(r'<td class="num" data-v="2000">2,000</td>', rows[0])


def test_success_rate_is_never_rounded_up_to_100(tmp_path: Path) -> None:
    """One failure in 2,000 calls reads 99.9%, in the header and in the table."""
    analytics = make(tmp_path)
    record(analytics, ok=1999, failing=1)
    html = analytics.render_report()
    assert re.search(r'id="kpi-success" class="bad">99.9%<', html)
    assert cells(table_rows(html, "function-table")[0])[5] == "99.9%"


def test_live_failures_appear_in_the_failures_section(tmp_path: Path) -> None:
    """Failures recorded by Analytics are grouped too (message when the engine keeps it)."""
    analytics = make(tmp_path)
    record(analytics, ok=3, failing=4)
    html = analytics.render_report()
    rows = table_rows(html, "failure-table")
    assert len(rows) == 1
    assert cells(rows[0])[:3] == ["ValueError", "bad input", "4"]


def test_no_failure_says_so() -> None:
    """Without failures the section has one line and no table."""
    html = render_report(CallsSource([call(0, 0.001)]))
    section = html[html.index('id="failures"'):html.index('id="time-chart"')]
    assert "No call failed." in section
    assert "<table" not in section


def tail_source() -> CallsSource:
    """100 calls of 1 ms and 5 slower ones, and a function with too few calls to judge."""
    calls = [call(i * 0.01, 0.001 * (1 + (i % 10) / 100), "steady") for i in range(100)]
    calls += [call(1.0 + i, 0.05 * (i + 1), "steady") for i in range(5)]
    calls += [call(0.5 + i, 0.2, "rare") for i in range(5)]
    return CallsSource(sorted(calls))


def test_generate_reports_writes_the_default_files(tmp_path: Path) -> None:
    """Incremental and full reports go to report_dir under their seed names."""
    analytics = make(tmp_path)
    record(analytics)
    incremental = analytics.generate_reports()
    full = analytics.generate_reports(force_mode=True)
    assert incremental == tmp_path / "reports" / "analytics_incremental.html"
    assert full == tmp_path / "reports" / "analytics_full.html"
    assert "incremental report" in incremental.read_text("utf-8")
    assert "full report" in full.read_text("utf-8")
    # The page says what the word means: both hold everything, under their own names.
    for page in (incremental, full):
        (kind,) = re.findall(r'<span id="report-kind" title="([^"]*)"', page.read_text("utf-8"))
        assert "every call recorded so far" in kind
        assert "analytics_full.html" in kind
        assert "analytics_incremental.html" in kind
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "analytics_full.html", "analytics_incremental.html"]
    assert full.stat().st_mode & 0o777 == 0o644


def test_generate_reports_takes_any_source(tmp_path: Path) -> None:
    """A Source that is not Analytics (no summary to log) still writes its report."""
    config = AnalyticsConfig(report_dir=tmp_path / "r")
    written = generate_reports(CallsSource([call(0, 0.001)], config), force_mode=True)
    assert written == tmp_path / "r" / "analytics_full.html"
    assert "callmetrics report" in written.read_text("utf-8")


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
    assert "No function has 20 calls that took a measurable time" in latency


def test_impossible_times_are_left_out_and_said_so() -> None:
    """A damaged store's start of 1e300 or a NaN duration cannot break the report."""
    calls = [call(0, 0.001), RetainedCall(1e300, 0.001, "f", "t", "E", "m", None),
             RetainedCall(1.7e9, math.nan, "f", "t", None),
             RetainedCall(1.7e9, -1.0, "f", "t", None), RetainedCall(math.inf, 0.1, "f", "t", None)]
    html = render_report(CallsSource(calls))
    assert re.search(r'id="invalid">3 calls with an impossible time or duration left out', html)
    assert len(timeline(html)["s"]) == 2
    rows = table_rows(html, "failure-table")
    assert cells(rows[0])[4] == "-"  # no calendar holds 1e300


def test_an_empty_source_renders(tmp_path: Path) -> None:
    """No call at all still gives a valid page (the notebook shows empty instances)."""
    html = render_report(CallsSource([]))
    assert "No retained calls." in html
    assert "No call failed." in html
    assert timeline(html)["s"] == []
