"""The report of a service-like workload in Chromium, as a performance engineer uses it.

Failures in a few groups, histograms for the functions that take the time, one filter
for every section, every table sortable, a function's view, and nothing overflowing at
400 px (measured, not eyeballed).
"""

import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from callmetrics import Analytics, AnalyticsConfig
from conftest import require_program

pytestmark = pytest.mark.browser

WORKLOAD = Path(__file__).parents[2] / "benchmarks" / "service_workload.py"
LAYOUTS = [(1400, "light"), (1400, "dark"), (400, "light"), (400, "dark")]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = require_program("chromium", "the report's browser test drives it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """benchmarks/service_workload.py: 36 functions, async, threads, ids in messages."""
    spec = importlib.util.spec_from_file_location("service_workload", WORKLOAD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("service")
    analytics = Analytics(AnalyticsConfig(report_dir=folder))
    # playwright's sync API runs an event loop in this thread; the workload runs its own.
    worker = threading.Thread(target=module.run_service, args=(analytics,),
                              kwargs={"scale": 0.6})
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive()
    written = analytics.generate_reports(force_mode=True)
    assert written is not None
    return written


def open_page(browser: Any, report: Path, width: int = 1400,
              scheme: str = "light") -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    return page, problems


VISIBLE_FNS = """() => {
  const shown = el => !el.closest('[hidden]') && el.getClientRects().length > 0;
  const out = {};
  for (const id of ['function-table', 'failure-table', 'outlier-table', 'overhead-table',
                    'detail-table']) {
    const table = document.getElementById(id);
    if (!table) { continue; }
    out[id] = [...table.tBodies[0].rows].filter(shown).map(r => r.textContent);
  }
  out.bars = [...document.querySelectorAll('#time-chart li[data-fn]')].filter(shown)
    .map(el => el.dataset.fn);
  out.hists = [...document.querySelectorAll('#latency figure.hist')].filter(shown)
    .map(el => el.dataset.fn);
  return out;
}"""


def test_failures_are_few_groups_and_the_time_heavy_functions_have_histograms(
        browser: Any, report: Path) -> None:
    """Ids in messages do not split a cause; histograms go where the time goes."""
    page, problems = open_page(browser, report)
    try:
        # Failures whose messages carry ids fall into a few groups: a short section.
        groups = page.locator("#failure-table tbody tr").count()
        assert 3 <= groups <= 12
        height = page.evaluate("document.getElementById('failures').offsetHeight")
        assert height < 2000
        # The functions that take the most time have histograms (of those with 20 calls).
        top = page.eval_on_selector_all(
            "#time-chart li[data-fn]", "els => els.slice(0, 3).map(e => e.dataset.fn)")
        hists = page.eval_on_selector_all("#latency figure.hist",
                                          "els => els.map(e => e.dataset.fn)")
        for name in top:
            calls = page.get_attribute(f'#function-table tr[data-fn="{name}"] td:nth-child(3)',
                                       "data-v")
            if calls is not None and int(float(calls)) >= 20:
                assert name in hists, name
        assert problems == []
    finally:
        page.close()


def test_one_filter_narrows_every_section(browser: Any, report: Path) -> None:
    """Tables, bars and histograms keep only the matching functions; the count says so."""
    page, problems = open_page(browser, report)
    try:
        # One filter: every section keeps only what matches.
        page.fill("#filter", "db.query")
        shown = page.evaluate(VISIBLE_FNS)
        for key, rows in shown.items():
            assert all("db.query" in row for row in rows), (key, rows)
        assert shown["function-table"]
        assert page.inner_text("#filter-count").startswith(
            f"{len(shown['function-table'])} of 36")
        assert problems == []
    finally:
        page.close()


def test_every_table_sorts_by_each_numeric_column(browser: Any, report: Path) -> None:
    """A first click puts the largest first (a second one when it already was)."""
    page, problems = open_page(browser, report)
    try:
        # Every table sorts: each numeric column's first click puts the largest first.
        for table in page.eval_on_selector_all("table.sortable", "ts => ts.map(t => t.id)"):
            buttons = page.locator(f"#{table} thead button[data-kind=num]")
            for i in range(buttons.count()):
                header = buttons.nth(i).locator("xpath=..")
                was = header.get_attribute("aria-sort")
                buttons.nth(i).click()
                # The first click puts the largest first; on the column already sorted
                # that way, it reverses, and the next click restores it.
                if was == "descending":
                    assert header.get_attribute("aria-sort") == "ascending"
                    buttons.nth(i).click()
                assert header.get_attribute("aria-sort") == "descending"
                column = page.evaluate(
                    "([t, b]) => [...document.querySelectorAll(`#${t} thead th`)]"
                    ".indexOf(document.querySelectorAll(`#${t} thead button[data-kind=num]`)[b]"
                    ".parentNode)", [table, i])
                keys = page.evaluate(
                    """([t, c]) => [...document.getElementById(t).tBodies[0].rows]
                       .map(r => r.cells[c].dataset.v).filter(v => v !== undefined)
                       .map(Number)""", [table, column])
                assert keys == sorted(keys, reverse=True), (table, column)
        assert problems == []
    finally:
        page.close()


def test_a_functions_view_long_tables_and_the_timeline_controls(browser: Any,
                                                                report: Path) -> None:
    """Click a name for its view; collapsed rows open; rings hide; the timeline zooms."""
    page, problems = open_page(browser, report)
    try:
        # A function's view: figures, histogram, callers, failures, slowest calls.
        first = page.locator("#function-table button.fn-open").first
        name = first.inner_text()
        first.click()
        assert page.is_visible("#fn-detail")
        assert page.inner_text("#fn-title").startswith(name.replace("\u200b", ""))
        assert page.locator("#fn-figures div").count() == 12
        assert page.locator("#fn-slowest li").count() >= 1
        assert page.locator("#fn-trend polyline").count() == 2  # p50 and p95 over time
        page.click("#fn-close")
        # A failing function's view lists its own failures by cause.
        # (validate.check_amount declines about 16 cards a run; the workload's rarer
        # failures, 2% of db.query_user's calls, may not happen at all in one run.)
        page.fill("#filter", "validate.check_amount")
        page.click('#function-table button.fn-open[data-open="validate.check_amount"]')
        causes = page.locator("#fn-failures li").all_inner_texts()
        assert causes
        assert any("ValueError: card declined (amount=<n>)" in c for c in causes), causes
        page.click("#fn-close")
        page.fill("#filter", "")
        assert not page.is_visible("#fn-detail")
        # Long tables collapse with a count, and open.
        more = page.locator("#detail-table ~ button.more, .scroll + button.more").first
        if more.count():
            before = page.evaluate(VISIBLE_FNS)["detail-table"]
            more.click()
            assert len(page.evaluate(VISIBLE_FNS)["detail-table"]) >= len(before)
        # The timeline's rings and a function's colour can be hidden, and it zooms.
        page.click("#timeline-legend button[data-layer=rings]")
        assert page.get_attribute("#timeline-legend button[data-layer=rings]",
                                  "aria-pressed") == "false"
        box = page.locator("#timeline").bounding_box()
        page.mouse.move(box["x"] + 100, box["y"] + 100)
        page.mouse.down()
        page.mouse.move(box["x"] + 300, box["y"] + 100)
        page.mouse.up()
        assert page.is_visible("#zoom-out")
        page.click("#zoom-out")
        assert not page.is_visible("#zoom-out")
        assert problems == []
    finally:
        page.close()


GEOMETRY = """() => {
  const out = {overflow: document.documentElement.scrollWidth - window.innerWidth,
               outside: [], overlaps: []};
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.scroll') || el.closest('#tip') || el.closest('[hidden]')
        || el.closest('dialog:not([open])')) { continue; }
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > window.innerWidth + 0.5 || r.left < -0.5)) {
      out.outside.push(el.tagName + '.' + el.getAttribute('class') + '#' + el.id);
    }
  }
  // Boxes laid side by side must not overlap: KPIs, index links, legend entries, bars.
  for (const sel of ['.kpis > div', '#index li', '#timeline-legend li', 'ol.bars li',
                     '.hists figure']) {
    const boxes = [...document.querySelectorAll(sel)].filter(e => e.getClientRects().length)
      .map(e => e.getBoundingClientRect());
    boxes.forEach((a, i) => boxes.forEach((b, j) => {
      if (j > i && a.left < b.right - 0.5 && a.right > b.left + 0.5 && a.top < b.bottom - 0.5
          && a.bottom > b.top + 0.5) { out.overlaps.push(sel + ' ' + i + '/' + j); }
    }));
  }
  // Within a bar row, the label, the track and the value do not overlap.
  for (const li of document.querySelectorAll('ol.bars li')) {
    const parts = [...li.children].map(c => c.getBoundingClientRect());
    parts.forEach((a, i) => parts.forEach((b, j) => {
      if (j > i && a.width && b.width && a.left < b.right - 0.5 && a.right > b.left + 0.5
          && a.top < b.bottom - 0.5 && a.bottom > b.top + 0.5) {
        out.overlaps.push('bar parts ' + li.textContent.slice(0, 30));
      }
    }));
  }
  return out;
}"""


@pytest.mark.parametrize(("width", "scheme"), LAYOUTS)
def test_nothing_overlaps_or_overflows(browser: Any, report: Path, width: int,
                                       scheme: str) -> None:
    """At 1400 and 400 px, light and dark: no element past the edge, no boxes on each other."""
    page, problems = open_page(browser, report, width, scheme)
    try:
        found = page.evaluate(GEOMETRY)
        assert found["overflow"] <= 0
        assert found["outside"] == []
        assert found["overlaps"] == []
        page.locator("#function-table button.fn-open").first.click()
        dialog = page.locator("#fn-detail").bounding_box()
        assert dialog["x"] >= 0
        assert dialog["x"] + dialog["width"] <= width
        assert problems == []
    finally:
        page.close()


@pytest.fixture(scope="module")
def attributed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report whose source carries self time, callers and the wall time (as the engine's)."""
    from test_report_time import Snaps, service  # noqa: PLC0415  # shared builders

    from callmetrics._engine.state import CallerEdge  # noqa: PLC0415
    from callmetrics._outputs.report import render_report  # noqa: PLC0415

    base = service()
    deep = [*base.functions,
            snap_with_callers("db.connection_pool.acquire_connection_with_a_long_name",
                              (CallerEdge("query", 800, 0.4),))]
    target = tmp_path_factory.mktemp("attributed") / "report.html"
    target.write_text(render_report(Snaps(deep, wall_time=base.wall_time)), encoding="utf-8")
    return target


def snap_with_callers(name: str, callers: tuple[Any, ...]) -> Any:
    from test_report_time import snap  # noqa: PLC0415

    return snap(name, 0.4, 800, self_time=0.4, active_self=0.05, callers=callers)


@pytest.mark.parametrize(("width", "scheme"), LAYOUTS)
def test_the_time_chart_and_call_tree_fit_and_open(browser: Any, attributed: Path, width: int,
                                                   scheme: str) -> None:
    """Self-time bars within the wall time, the remainder drawn, the tree expands, no overflow."""
    page, problems = open_page(browser, attributed, width, scheme)
    try:
        assert page.locator("#time-chart li.rest").count() == 1
        assert page.inner_text("#kpi-wall") == "1.00 s"
        summary = page.locator('.tree summary[data-fn="handle"]')
        summary.click()
        nested = page.locator('.tree details[open] summary[data-fn="query"]')
        assert nested.is_visible()
        nested.click()
        assert page.locator('.tree .leaf[data-fn^="db.connection_pool"]').is_visible()
        found = page.evaluate(GEOMETRY)
        assert found["overflow"] <= 0
        assert found["outside"] == []
        assert found["overlaps"] == []
        page.fill("#filter", "render")
        assert not page.locator('.tree summary[data-fn="query"]').is_visible()
        assert page.locator('.tree .leaf[data-fn="render"]').is_visible()
        assert problems == []
    finally:
        page.close()
