"""The report in a real browser: Debian's chromium, driven by playwright (no download)."""

import contextlib
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright
from test_report import CallsSource, call

from callmetrics import Analytics, AnalyticsConfig
from callmetrics._cli.workload import run_demo
from callmetrics._outputs.notebook import report_html, summary_html
from callmetrics._outputs.report import render_report
from conftest import require_program

pytestmark = pytest.mark.browser

HOSTILE = "<script>alert(1)</script>"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
LAYOUTS = [(1400, "light"), (1400, "dark"), (400, "light"), (400, "dark")]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = require_program("chromium", "the report's browser test drives it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's workload, a hostile function, and enough small ones to grey some out."""
    folder = tmp_path_factory.mktemp("report")
    analytics = Analytics(AnalyticsConfig(report_dir=folder))
    # playwright's sync API runs an event loop in this thread; the demo runs its own.
    worker = threading.Thread(target=run_demo, args=(analytics,), kwargs={"scale": 0.3})
    worker.start()
    functions = []
    for i in range(6):
        @analytics.track("kind", name=f"function_{i}")
        def work(n: int) -> int:
            return sum(range(n))

        functions.append(work)
    # Small functions called in turns while the demo runs, as a program's helpers are:
    # each one's dots spread along the timeline instead of piling up in one spot (the
    # legend check below looks for every legend colour on the canvas).
    for n in range(60):
        for i, helper in enumerate(functions):
            if n < 10 * (i + 1):
                helper(n * 50)
        time.sleep(0.005)
    # A function with a real tail, so that the timeline has calls above their
    # function's p99 to ring whatever the machine's load (on an idle machine the
    # demo's own tails may stay under the report's outlier threshold).
    @analytics.track("kind", name="tail")
    def tail(pause: float) -> None:
        time.sleep(pause)

    for n in range(200):
        tail(0.002 * 2 ** (n - 195) if n >= 195 else 0.0)
    worker.join(timeout=120)
    assert not worker.is_alive()

    @analytics.track("<b>evil</b>", name=HOSTILE)
    def hostile() -> None:
        raise RuntimeError("boom")

    for _ in range(3):
        with pytest.raises(RuntimeError):
            hostile()
    written = analytics.generate_reports(force_mode=True)
    assert written is not None
    return written


def open_report(browser: Any, report: Path, scheme: str = "light",
                width: int = 1280) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    return page, problems, requests


def names_in_order(page: Any) -> list[str]:
    names: list[str] = page.eval_on_selector_all(
        "#function-table tbody tr", "rows => rows.map(r => r.cells[0].textContent)")
    return names


def test_report_works_offline_in_chromium(browser: Any, report: Path) -> None:
    """The report loads cleanly, sorts, filters, draws every chart and shows hostile text."""
    page, problems, requests = open_report(browser, report)
    try:
        assert requests == [report.as_uri()]

        names = names_in_order(page)
        assert len(names) == 14  # the demo's 6, 6 helpers, tail and the hostile one
        assert HOSTILE in names

        page.click("#function-table th button:text-is('Calls')")
        calls = page.eval_on_selector_all(
            "#function-table tbody tr", "rows => rows.map(r => Number(r.cells[2].dataset.v))")
        assert calls == sorted(calls, reverse=True)
        page.click("#function-table th button:text-is('Function')")
        assert names_in_order(page) == sorted(names, key=str.lower)
        page.click("#function-table th button:text-is('Function')")
        assert names_in_order(page) == sorted(names, key=str.lower, reverse=True)

        page.fill("#filter", "function_3")
        visible = page.eval_on_selector_all(
            "#function-table tbody tr", "rows => rows.filter(r => !r.hidden).length")
        assert visible == 1
        assert page.inner_text("#filter-count") == "1 of 14 functions"
        page.fill("#filter", "")

        assert page.locator("#time-chart li.bar").count() >= 13
        top = page.get_attribute("#time-chart li.bar >> nth=0", "data-fn")
        assert page.locator(f'#latency figure.hist[data-fn="{top}"]').count() == 1
        assert page.locator("#failure-table tbody tr").count() >= 2

        page.hover("#time-chart li.bar >> nth=0")
        assert page.is_visible("#tip")
        assert re.search(r"% of the (wall|tracked) time", page.inner_text("#tip"))

        assert page.locator("#function-table td", has_text=HOSTILE).count() == 1
        assert page.locator("#failure-table td", has_text=HOSTILE).count() == 1
        assert page.evaluate("document.querySelectorAll('script').length") == 3
        assert problems == []
    finally:
        page.close()


MEASURE = """() => {
  const out = {};
  out.pageOverflow = document.documentElement.scrollWidth - window.innerWidth;
  out.outside = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.scroll') || el.closest('#tip') || el.closest('[hidden]')) { continue; }
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > window.innerWidth + 0.5 || r.left < -0.5)) {
      out.outside.push(el.tagName + '.' + el.getAttribute('class'));
    }
  }
  const frames = [...document.querySelectorAll('.scroll')];
  const scrolling = frames.filter(f => f.scrollWidth > f.clientWidth + 1);
  out.scrolling = scrolling.map(f => f.querySelector('table').id);
  out.silent = scrolling.filter(f => {
    const hint = f.previousElementSibling;
    return !(hint && hint.classList.contains('scroll-hint') && hint.offsetHeight > 0
             && /scroll/i.test(hint.textContent));
  }).map(f => f.querySelector('table').id);
  out.hintsWithoutScroll = frames.filter(f => !scrolling.includes(f)).filter(f => {
    const hint = f.previousElementSibling;
    return hint && hint.offsetHeight > 0;
  }).length;
  const sizes = [];
  for (const t of document.querySelectorAll('svg.chart text')) {
    const svg = t.ownerSVGElement;
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    sizes.push([parseFloat(getComputedStyle(t).fontSize) * scale, t.textContent]);
  }
  for (const t of document.querySelectorAll('#time-chart li > span, .legend li, table.data td')) {
    sizes.push([parseFloat(getComputedStyle(t).fontSize), t.textContent]);
  }
  sizes.sort((a, b) => a[0] - b[0]);
  out.smallestText = sizes[0];
  out.cards = [...document.querySelectorAll('figure.hist')].map(fig => {
    const svg = fig.querySelector('svg');
    const rects = [...svg.querySelectorAll('rect.bin')].map(r => r.getBoundingClientRect());
    const axis = svg.querySelector('line.axis').getBoundingClientRect();
    const left = Math.min(...rects.map(r => r.left));
    const right = Math.max(...rects.map(r => r.right));
    const labels = [...svg.querySelectorAll('text.marker')].map(t => t.getBoundingClientRect());
    const bars = rects.map(r => [r.left, r.top, r.right, r.bottom]);
    const hits = labels.filter(l => bars.some(b => l.left < b[2] && l.right > b[0]
                                               && l.top < b[3] && l.bottom > b[1])).length;
    const overlaps = labels.filter((a, i) => labels.some((b, j) => j !== i && a.left < b.right
        && a.right > b.left && a.top < b.bottom && a.bottom > b.top)).length;
    const box = svg.getBoundingClientRect();
    const clipped = [...svg.querySelectorAll('text')].filter(t => {
      const r = t.getBoundingClientRect();
      return r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5
             || r.bottom > box.bottom + 0.5;
    }).map(t => t.textContent);
    return {name: fig.querySelector('.fn').textContent, bins: rects.length, clipped: clipped,
            span: (right - left) / axis.width,
            centre: ((left + right) / 2 - axis.left) / axis.width,
            labelOnBar: hits, labelOverlaps: overlaps,
            countLabel: svg.querySelector('text.axislabel').textContent,
            yTicks: svg.querySelectorAll('text.ticklabel').length};
  });
  // Legend markers against what the canvas drew: every legend colour is on the canvas.
  const canvas = document.getElementById('timeline');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const drawn = new Set();
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i + 3] >= 160) { drawn.add(pixels[i] << 16 | pixels[i + 1] << 8 | pixels[i + 2]); }
  }
  const near = (colour) => [...drawn].some(v => Math.abs((v >> 16) - colour[0]) <= 6
      && Math.abs((v >> 8 & 255) - colour[1]) <= 6 && Math.abs((v & 255) - colour[2]) <= 6);
  const rgb = s => s.match(/\\d+/g).slice(0, 3).map(Number);
  out.legend = [...document.querySelectorAll('#timeline-legend li')].filter(
      li => li.querySelector('svg')).map(li => {
    const mark = li.querySelector('svg > *');
    const style = getComputedStyle(mark);
    const colour = rgb(mark.tagName === 'path' || mark.classList.contains('ring')
                       ? style.stroke : style.fill);
    return {text: li.textContent, shape: mark.tagName + '.' + mark.getAttribute('class'),
            drawn: near(colour)};
  });
  out.background = getComputedStyle(document.body).backgroundColor;
  return out;
}"""


@pytest.mark.parametrize(("width", "scheme"), LAYOUTS)
def test_layout_reads_well_at_each_width_and_scheme(browser: Any, report: Path, tmp_path: Path,
                                                    width: int, scheme: str) -> None:
    """No page overflow, visible scroll hints, legible chart text, cards that fill their axis."""
    page, problems, _ = open_report(browser, report, scheme=scheme, width=width)
    try:
        found = page.evaluate(MEASURE)
        assert found["pageOverflow"] <= 0
        assert found["outside"] == []
        assert found["silent"] == []
        assert found["hintsWithoutScroll"] == 0
        if width == 400:
            assert "function-table" in found["scrolling"]
        else:
            assert "function-table" not in found["scrolling"]
        assert found["smallestText"][0] >= 9, found["smallestText"]
        for card in found["cards"]:
            # The axis fits the calls: they fill at least half of it, or, when they all
            # lie within a factor of 1.26 (the narrowest axis), they sit in its middle.
            assert card["span"] >= 0.5 or 0.25 < card["centre"] < 0.75, card
            assert card["clipped"] == [], card
            assert card["labelOnBar"] == 0, card
            assert card["labelOverlaps"] == 0, card
            assert card["countLabel"] == "calls"
            assert card["yTicks"] >= 4, card  # at least two count ticks and two duration ticks
        legend = found["legend"]
        assert [entry["shape"] for entry in legend[-2:]] == ["path.cross", "circle.ring"]
        assert legend[-2]["text"] == "failed"
        assert all(entry["shape"].startswith("circle.") for entry in legend[:-2])
        assert legend[-3]["text"].endswith("other functions")
        assert [entry["text"] for entry in legend if not entry["drawn"]] == []
        dark = scheme == "dark"
        assert (found["background"] == "rgb(20, 24, 30)") == dark
        shot = tmp_path / f"report-{width}-{scheme}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20_000
        keep = os.environ.get("CALLMETRICS_SCREENSHOTS")
        if keep:  # for people checking the pictures by eye
            shutil.copy(shot, Path(keep) / shot.name)
        assert problems == []
    finally:
        page.close()


def test_timeline_hover_names_the_nearest_call(browser: Any, report: Path) -> None:
    """Hovering a point of the timeline shows that call's function and duration."""
    page, problems, _ = open_report(browser, report, scheme="dark")
    try:
        point = page.evaluate("""() => {
            const c = document.getElementById('timeline');
            const want = getComputedStyle(document.body).getPropertyValue('--c0').trim();
            const r = window.devicePixelRatio || 1;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const rgb = [1, 3, 5].map(i => parseInt(want.slice(i, i + 2), 16));
            for (let y = 0; y < c.height; y++) {
              for (let x = Math.round(70 * r); x < c.width; x++) {
                const i = (y * c.width + x) * 4;
                if (d[i] === rgb[0] && d[i + 1] === rgb[1] && d[i + 2] === rgb[2]) {
                  return [x / r, y / r];
                }
              }
            }
            return null;
        }""")
        assert point is not None
        page.locator("#timeline").scroll_into_view_if_needed()
        box = page.locator("#timeline").bounding_box()
        page.mouse.move(box["x"] + point[0], box["y"] + point[1])
        assert page.is_visible("#tip")
        text = page.inner_text("#tip")
        assert "took " in text
        assert "after the first retained call" in text
        # The nearest call: the busiest function's, or one drawn right beside it.
        assert text.split(" [")[0] in names_in_order(page)
        assert problems == []
    finally:
        page.close()


def test_notebook_outputs_render_and_the_inline_report_runs_in_its_frame(
        browser: Any, tmp_path: Path) -> None:
    """Summary and inline report, as Jupyter would place them: the frame's script runs."""
    analytics = Analytics(AnalyticsConfig(report_dir=tmp_path))

    @analytics.track("kind", name=HOSTILE)
    def work(fail: bool) -> None:
        if fail:
            raise ValueError("no")

    for i in range(40):
        with contextlib.suppress(ValueError):
            work(i % 10 == 0)
    notebook = tmp_path / "notebook.html"
    notebook.write_text("<!doctype html><meta charset=utf-8><body>" + summary_html(analytics)
                        + report_html(analytics, height=600) + "</body>", "utf-8")
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
    try:
        page.goto(notebook.as_uri())
        page.wait_for_load_state("load")
        assert page.locator(".cm-summary table.functions td", has_text=HOSTILE).count() == 1
        assert page.locator(".cm-summary table.failures td", has_text=HOSTILE).count() == 1
        frame = page.frame_locator("iframe.callmetrics-report")
        assert frame.locator("#function-table td", has_text=HOSTILE).count() == 1
        frame.locator("#function-table th button:text-is('Calls')").click()
        assert frame.locator("#function-table th[aria-sort='descending']").count() == 1
        page.frames[1].wait_for_function("document.getElementById('timeline').width > 0")
        painted = page.frames[1].evaluate("""() => {
            const c = document.getElementById('timeline');
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < px.length; i += 4) { if (px[i]) { n++; } }
            return n;
        }""")
        assert painted > 1000
        assert page.evaluate("document.querySelectorAll('script').length") == 0
        assert problems == []
    finally:
        page.close()


def test_hovering_a_failure_shows_its_exception_and_message(browser: Any, tmp_path: Path) -> None:
    """The cross of a failed call names its exception and message, shown as plain text."""
    calls = [call(i * 0.01, 0.001 * (1 + i % 3), "fetch") for i in range(30)]
    calls.append(call(0.155, 0.05, "fetch", error="ConnectionError",
                      message="upstream refused user 13 <b>\u202e"))
    report = tmp_path / "r.html"
    report.write_text(render_report(CallsSource(sorted(calls))), "utf-8")
    page, problems, _ = open_report(browser, report)
    try:
        point = page.evaluate("""() => {
            const c = document.getElementById('timeline');
            const want = getComputedStyle(document.body).getPropertyValue('--failure').trim();
            const rgb = [1, 3, 5].map(i => parseInt(want.slice(i, i + 2), 16));
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let sx = 0, sy = 0, k = 0;
            for (let y = 0; y < c.height; y++) {
              for (let x = 0; x < c.width; x++) {
                const i = (y * c.width + x) * 4;
                if (d[i + 3] > 200 && Math.abs(d[i] - rgb[0]) < 8 && Math.abs(d[i + 1] - rgb[1]) < 8
                    && Math.abs(d[i + 2] - rgb[2]) < 8) { sx += x; sy += y; k++; }
              }
            }
            const r = window.devicePixelRatio || 1;
            return k ? [sx / k / r, sy / k / r] : null;
        }""")
        assert point is not None
        page.locator("#timeline").scroll_into_view_if_needed()
        box = page.locator("#timeline").bounding_box()
        page.mouse.move(box["x"] + point[0], box["y"] + point[1])
        text = page.inner_text("#tip")
        assert "failed: ConnectionError: upstream refused user 13 <b>\\u202e" in text
        assert problems == []
    finally:
        page.close()
