import contextlib
import re
from html import unescape
from pathlib import Path

import pytest
from test_report import CONTROL, CSP, HOSTILE, CallsSource, call, hostile_source, record

from callmetrics import Analytics, AnalyticsConfig, load
from callmetrics._outputs.notebook import InlineReport, report_html, summary_html
from readme_examples import readme_example


def srcdoc(frame: str) -> str:
    found = re.fullmatch(r'<iframe [^>]*srcdoc="([^"]*)"></iframe>', frame)
    assert found is not None
    return unescape(found.group(1))


def test_summary_is_a_self_contained_fragment_without_scripts(tmp_path: Path) -> None:
    """The summary is the functions table with its own scoped style and nothing to run."""
    analytics = Analytics(AnalyticsConfig(report_dir=tmp_path))
    record(analytics, ok=1999, failing=1)
    html = summary_html(analytics)
    assert html.lstrip().startswith('<div class="cm cm-summary">')
    assert "<script" not in html
    assert re.search(r"(?:src|href)=", html) is None
    assert "2,000 calls" in html
    assert "success 99.9%" in html
    rows = re.findall(r"<tr[^>]*>.*?</tr>", html.split("<tbody>")[1].split("</tbody>")[0],
                      re.S)
    assert len(rows) == 1
    # The failures grouped by cause, as in the report.
    assert "Failures by cause (1 group" in html
    failures = html.split("<tbody>")[2].split("</tbody>")[0]
    assert "ValueError" in failures
    assert "bad input" in failures
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None
    # Every rule is scoped under .cm (or is an at-rule wrapping such rules).
    rules = re.sub(r"/\*.*?\*/", "", style.group(1), flags=re.S)
    selectors = re.findall(r"(?:^|})\s*([^{}@]+?)\s*{", rules)
    assert selectors
    assert all(part.strip().startswith(".cm") for sel in selectors for part in sel.split(","))


def test_summary_and_report_escape_hostile_text() -> None:
    """Markup, control characters and bidi overrides never reach the notebook raw."""
    source = hostile_source()
    summary = summary_html(source)
    frame = report_html(source)
    inner = srcdoc(frame)
    for html in (summary, frame, inner):
        for bad in CONTROL:
            assert bad not in html, repr(bad)
        assert HOSTILE not in html
        assert "<b>" not in html
    assert "<script" not in summary
    assert "<script" not in frame.replace(frame[frame.index("srcdoc="):], "")
    assert inner.count("<script") == 3
    assert CSP in inner
    assert "evil\\x1b[2J\\u202egnp.exe\\x00&lt;script&gt;" in summary.replace("<wbr>", "")


def test_the_inline_report_is_the_full_report_in_a_sandboxed_frame() -> None:
    """The frame holds the standalone report; it may run its script, nothing more."""
    source = CallsSource([call(0, 0.001), call(1, 0.002, error="E", message="m")])
    frame = report_html(source, height=640)
    assert 'sandbox="allow-scripts"' in frame
    assert "allow-same-origin" not in frame
    assert "height: 640px" in frame
    inner = srcdoc(frame)
    assert inner.startswith("<!doctype html>")
    assert 'id="failure-table"' in inner
    with pytest.raises(ValueError, match="height"):
        report_html(source, height=0)


def test_repr_html_works_for_an_empty_instance(tmp_path: Path) -> None:
    """A fresh Analytics, or a load() of nothing, shows a summary that says so."""
    empty = Analytics(AnalyticsConfig(report_dir=tmp_path))
    html = summary_html(empty)
    assert "No calls recorded yet." in html
    assert "0 calls" in html
    report = InlineReport(empty)
    assert report._repr_html_().startswith("<iframe ")
    assert "No retained calls." in report.html


def test_inline_report_saves_the_standalone_document(tmp_path: Path) -> None:
    """``save`` writes exactly the document the frame shows."""
    report = InlineReport(CallsSource([call(0, 0.001, "half\ud800pair")]))
    target = report.save(tmp_path / "r.html")
    text = target.read_text("utf-8")
    assert text == report.html
    assert text == srcdoc(report._repr_html_())
    assert "half\\ud800pair" in text


def test_inline_report_also_takes_the_frame_or_a_document() -> None:
    """``InlineReport(report_html(a))`` and ``InlineReport(document)`` show the same report."""
    source = CallsSource([call(0, 0.001, "f<b>")])
    frame = report_html(source)
    from_frame = InlineReport(frame)
    assert from_frame._repr_html_() == frame
    assert from_frame.html == srcdoc(frame)
    from_document = InlineReport(from_frame.html)
    assert from_document._repr_html_() == frame
    assert from_document.html == from_frame.html


HOSTILE_NAME = "evil\x1b[2J\u202egnp.exe\x00" + HOSTILE


def _hostile_calls(analytics: Analytics) -> None:
    """Calls of a function whose name and failure message are hostile, from real code."""

    @analytics.track("t\x07ype<b>", name=HOSTILE_NAME)
    def job(fail: bool) -> None:
        if fail:
            raise ValueError("line one\u202e\x9b31m <script>x</script>\x00")

    for i in range(20):
        with contextlib.suppress(ValueError):
            job(i % 5 == 0)


def _assert_escaped(html: str, *, shown: bool = True) -> None:
    """No hostile text raw; with ``shown``, the name is there, escaped (not in a srcdoc)."""
    for bad in CONTROL:
        assert bad not in html, repr(bad)
    assert HOSTILE not in html
    assert "<b>" not in html
    if shown:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.replace("<wbr>", "")


def test_an_instance_displays_as_its_escaped_summary(tmp_path: Path) -> None:
    """What Jupyter shows for ``analytics`` (``_repr_html_``) and ``analytics.report()``."""
    analytics = Analytics(AnalyticsConfig(report_dir=tmp_path))
    _hostile_calls(analytics)
    summary = analytics._repr_html_()
    _assert_escaped(summary)
    assert "20 calls" in summary
    assert "<script" not in summary
    inline = analytics.report()
    frame = inline._repr_html_()
    _assert_escaped(frame, shown=False)  # the whole report, escaped once more in srcdoc
    _assert_escaped(srcdoc(frame))
    assert srcdoc(frame) == inline.html
    assert CSP in inline.html


def test_what_load_returns_displays_as_its_escaped_summary(tmp_path: Path) -> None:
    """A stored run read back with ``load()`` shows the same summary, escaped too."""
    store = tmp_path / "runs.db"
    with Analytics(AnalyticsConfig(report_dir=tmp_path), store=store) as analytics:
        _hostile_calls(analytics)
    view = load(store)
    summary = view._repr_html_()
    _assert_escaped(summary)
    assert "20 calls" in summary
    rows = re.findall(r"<tr[^>]*>.*?</tr>", summary.split("<tbody>")[1].split("</tbody>")[0],
                      re.S)
    assert len(rows) == 1
    frame = view.report()._repr_html_()
    _assert_escaped(srcdoc(frame))


def test_the_readme_notebook_example_runs_as_written() -> None:
    """The README's cell runs, and its instance displays the function it tracked."""
    namespace: dict[str, object] = {"__name__": "readme_notebook"}
    exec(compile(readme_example("from callmetrics", "### In a notebook"), "<README>", "exec"),  # noqa: S102  # the README's own example
         namespace)
    analytics = namespace["analytics"]
    assert isinstance(analytics, Analytics)
    assert "1,000 calls" in analytics._repr_html_()
    assert ">work<" in analytics._repr_html_().replace("<wbr>", "")
    assert isinstance(analytics.report(), InlineReport)
