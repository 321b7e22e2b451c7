"""The report in a real browser: Debian's chromium, driven by playwright (no download)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from callmetrics import Analytics, AnalyticsConfig
from conftest import require_program

pytestmark = pytest.mark.browser

HOSTILE = "<script>alert(1)</script>"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = require_program("chromium", "the report's browser test drives it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    analytics = Analytics(AnalyticsConfig(report_dir=folder))
    for i in range(6):
        @analytics.track("kind", name=f"function_{i}")
        def work(n: int) -> int:
            return sum(range(n))

        for n in range(10 * (i + 1)):
            work(n * 50)

    @analytics.track("<b>evil</b>", name=HOSTILE)
    def hostile() -> None:
        raise RuntimeError("boom")

    for _ in range(3):
        with pytest.raises(RuntimeError):
            hostile()
    written = analytics.generate_reports(force_mode=True)
    assert written is not None
    return written


def open_report(browser: Any, report: Path, scheme: str = "light") -> tuple[Any, list[str],
                                                                              list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
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


def test_report_works_offline_in_chromium(browser: Any, report: Path, tmp_path: Path) -> None:
    """The report loads cleanly, sorts, filters, draws every chart and shows hostile text."""
    page, problems, requests = open_report(browser, report)
    try:
        assert requests == [report.as_uri()]

        names = names_in_order(page)
        assert len(names) == 7
        assert sorted(names) == sorted([*(f"function_{i}" for i in range(6)), HOSTILE])

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
        assert page.inner_text("#filter-count") == "1 of 7 functions"
        page.fill("#filter", "")

        assert page.locator("#time-chart svg rect").count() == 7
        histograms = page.locator("#latency figure.hist")
        assert histograms.count() == 7
        for i in range(histograms.count()):
            assert histograms.nth(i).locator("rect.bin").count() > 0
        painted = page.evaluate("""() => {
            const c = document.getElementById('timeline');
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < px.length; i += 4) { if (px[i]) { n++; } }
            return n;
        }""")
        assert painted > 1000

        page.hover("#time-chart svg g.bar >> nth=0")
        assert page.is_visible("#tip")
        assert "% of all time" in page.inner_text("#tip")

        hostile_cells = page.locator("#function-table td", has_text=HOSTILE)
        assert hostile_cells.count() == 1
        assert page.evaluate("document.querySelectorAll('script').length") == 2

        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        assert (tmp_path / "report.png").stat().st_size > 10_000
        assert problems == []
    finally:
        page.close()


def test_timeline_hover_names_the_nearest_call(browser: Any, report: Path) -> None:
    """Hovering a point of the timeline shows that call's function and duration."""
    page, problems, _ = open_report(browser, report, scheme="dark")
    try:
        point = page.evaluate("""() => {
            const c = document.getElementById('timeline');
            const ctx = c.getContext('2d');
            const r = window.devicePixelRatio || 1;
            const d = ctx.getImageData(0, 0, c.width, c.height).data;
            for (let y = 0; y < c.height; y++) {
              for (let x = Math.round(70 * r); x < c.width; x++) {
                const i = (y * c.width + x) * 4;
                if (d[i + 3] > 150 && d[i + 2] > 150 && d[i] < 150) { return [x / r, y / r]; }
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
        assert "function_" in text or HOSTILE in text
        assert problems == []
    finally:
        page.close()
