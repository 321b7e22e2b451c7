"""HTML written in Python for the report: the very markup the template loops wrote.

The templates' former loops are kept here as the reference, rendered by the report's
own environment and compared with the Python functions byte for byte.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from callmetrics import Analytics, AnalyticsConfig, DurationSketch, FunctionSnapshot
from callmetrics._outputs.notebook import SUMMARY_COLUMNS
from callmetrics._outputs.report import make_environment
from callmetrics._outputs.report_charts import (
    HIST,
    Histogram,
    Marker,
    MarkerLabel,
    Rect,
    Tick,
    detail_histograms,
    histograms,
)
from callmetrics._outputs.report_markup import function_table_body, histogram_svg
from callmetrics._outputs.report_tables import Cell, function_columns, function_rows

# The template loop the rows were written with before (``_functions.html.j2``).
TEMPLATE_ROWS = """\
  {% for row in functions %}
    <tr data-fn="{{ row[0].text }}">{% for i in order %}{% set cell = row[i] %}<td{% if i >= 2 %} class="num{{ ' failed' if i == 4 and cell.sort }}"{% endif %} data-v="{{ cell.sort }}">{% if i == 0 and sortable %}<button type="button" class="fn-open" data-open="{{ cell.text }}">{{ cell.text|breakable }}</button>{% else %}{{ cell.text|breakable if i == 0 else cell.text }}{% endif %}</td>{% endfor %}</tr>
  {% endfor %}
"""  # noqa: E501  # the template's own line

NAMES = ("app.views.index", "<script>alert('x')</script>", 'a "quoted" & <b>', "path/to/mod.f",
         "\x1b[31mred\u202e", "lambda <lambda>", "", "x" * 300)


def template_rows(functions: list[list[Cell]], order: list[int], *, sortable: bool) -> str:
    return make_environment(None).from_string(TEMPLATE_ROWS).render(
        functions=functions, order=order, sortable=sortable)


def snapshot(name: str, calls: int, failures: int, *, cpu: float | None,
             self_time: float | None) -> FunctionSnapshot:
    sketch = DurationSketch()
    for i in range(calls):
        sketch.add(1e-6 * (i + 1) ** 2)
    return FunctionSnapshot(
        name=name, event_type="work <&>", module="tests", calls=calls,
        successes=calls - failures, total=math.fsum(1e-6 * (i + 1) ** 2 for i in range(calls)),
        fast=calls, medium=0, slow=0, overhead=1e-7 * calls, sketch=sketch, slowest=None,
        fastest=None, self_time=self_time, cpu_time=cpu)


def check(functions: list[list[Cell]], columns: tuple[str, ...]) -> None:
    every = list(range(len(columns)))
    summary = [columns.index(name) for name in SUMMARY_COLUMNS if name in columns]
    for order in (every, summary, [0], [4, 2, 0, 1]):
        for sortable in (True, False):
            assert str(function_table_body(functions, order, sortable)) == template_rows(
                functions, order, sortable=sortable)


def test_rows_of_real_snapshots_match_the_template() -> None:
    """Names to escape, failures, unknown self times, a CPU column, both tables' orders."""
    for cpu in (None, 0.25):
        snaps = [snapshot(name, 1 + 7 * i, i % 3, cpu=cpu, self_time=None if i == 2 else 0.1 * i)
                 for i, name in enumerate(NAMES)]
        check(function_rows(snaps), function_columns(snaps))


def test_rows_of_a_recorded_instance_match_the_template() -> None:
    analytics = Analytics(AnalyticsConfig(max_events=50))
    for name in NAMES[:4]:
        job = analytics.track("work", name=name)(lambda fail: 1 / (not fail))
        for i in range(20):
            with contextlib.suppress(ZeroDivisionError):
                job(i % 5 == 0)
    snaps = analytics.snapshot()
    check(function_rows(snaps), function_columns(snaps))
    analytics.close()


sort_values = st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6),
                        st.floats(allow_nan=True), st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.builds(Cell, st.text(max_size=12), sort_values),
                         min_size=6, max_size=6), max_size=4))
def test_any_cells_match_the_template(functions: list[list[Any]]) -> None:
    """Whatever the texts and sort values (text, numbers, NaN, infinities, booleans)."""
    check(functions, ("Function", "Event type", "Calls", "Successes", "Failures", "Success %"))


# The report template's histogram macro, as it was (``report.html.j2``).
HIST_MACRO = """\
{% macro hist_svg(h) %}
      <svg class="chart" viewBox="0 0 {{ hist.width }} {{ hist.height }}" role="img" aria-label="Latency distribution of {{ h.name }}">
        {% set base = hist.height - hist.bottom %}
        {% for t in h.y_ticks %}
        <line class="grid" x1="{{ hist.left }}" x2="{{ hist.width - hist.right }}" y1="{{ '%.1f'|format(t.at) }}" y2="{{ '%.1f'|format(t.at) }}"></line>
        <text class="ticklabel" x="{{ hist.left - 4 }}" y="{{ '%.1f'|format(t.at + 3.5) }}" text-anchor="end">{{ t.label }}</text>
        {% endfor %}
        <text class="axislabel" transform="translate(11 {{ (hist.top + base) / 2 }}) rotate(-90)" text-anchor="middle">calls</text>
        {% for bar in h.bins %}
        <rect class="bin" x="{{ '%.1f'|format(bar.x) }}" y="{{ '%.1f'|format(bar.y) }}" width="{{ '%.1f'|format(bar.width) }}" height="{{ '%.1f'|format(bar.height) }}" data-tip="{{ bar.tip }}"></rect>
        {% endfor %}
        {% if h.overflow %}
        <rect class="bin overflow" x="{{ '%.1f'|format(h.overflow.x) }}" y="{{ '%.1f'|format(h.overflow.y) }}" width="{{ '%.1f'|format(h.overflow.width) }}" height="{{ '%.1f'|format(h.overflow.height) }}" data-tip="{{ h.overflow.tip }}"></rect>
        <text class="ticklabel" x="{{ '%.1f'|format(h.overflow_label.at) }}" y="{{ base + 15 }}" text-anchor="middle">{{ h.overflow_label.label }}</text>
        {% endif %}
        <line class="axis" x1="{{ hist.left }}" x2="{{ hist.width - hist.right }}" y1="{{ base }}" y2="{{ base }}"></line>
        {% for t in h.x_ticks %}
        <line class="axis" x1="{{ '%.1f'|format(t.at) }}" x2="{{ '%.1f'|format(t.at) }}" y1="{{ base }}" y2="{{ base + 4 }}"></line>
        <text class="ticklabel" x="{{ '%.1f'|format(t.at) }}" y="{{ base + 15 }}" text-anchor="{{ t.anchor }}">{{ t.label }}</text>
        {% endfor %}
        {% for m in h.markers %}
        <line class="marker {{ m.label }}" x1="{{ '%.1f'|format(m.x) }}" x2="{{ '%.1f'|format(m.x) }}" y1="{{ hist.top - 9 }}" y2="{{ base }}" data-tip="{{ m.tip }}"></line>
        {% endfor %}
        {% for l in h.labels %}
        <text class="marker {{ l.kind }}" x="{{ '%.1f'|format(l.x) }}" y="{{ hist.top - 11 - l.row * 14 }}" text-anchor="{{ l.anchor }}">{{ l.text }}</text>
        {% endfor %}
      </svg>
{% endmacro %}
{{ hist_svg(h) }}"""  # noqa: E501  # the template's own lines


def macro_svg(h: Histogram) -> str:
    return make_environment(None).from_string(HIST_MACRO).render(h=h, hist=HIST)


def spread(name: str, calls: int, tail: int) -> FunctionSnapshot:
    """``calls`` spread over four decades, ``tail`` of them far slower (an overflow bar)."""
    sketch = DurationSketch()
    values = [1e-6 * 10 ** (4 * i / calls) for i in range(calls - tail)] + [5.0] * tail
    for value in values:
        sketch.add(value)
    return FunctionSnapshot(
        name=name, event_type="work", module="tests", calls=calls, successes=calls,
        total=math.fsum(values), fast=calls, medium=0, slow=0, overhead=0.0, sketch=sketch,
        slowest=None, fastest=None, self_time=math.fsum(values))


def test_histograms_of_real_sketches_match_the_macro() -> None:
    """Overflow bars or not, narrow and wide axes, merged percentile labels, hostile names."""
    snaps = [spread(name, calls, tail) for name, calls, tail in (
        ("<b>wide</b> & 'quoted'", 5000, 20), ("narrow", 50, 0), ('a "b"', 1200, 0),
        ("one.value", 30, 0), ("tail/only", 2000, 300))]
    snaps.append(snapshot("squares", 400, 0, cpu=None, self_time=1.0))
    drawn = [*detail_histograms(snaps).values(), *histograms(snaps)]
    assert len(drawn) >= 2 * len(snaps) - 1
    assert any(h.overflow for h in drawn)
    assert any(not h.overflow for h in drawn)
    for h in drawn:
        assert str(histogram_svg(h, HIST)) == macro_svg(h)


finite = st.floats(-1e4, 1e4)
texts = st.text(max_size=10)


@settings(max_examples=150, deadline=None)
@given(st.builds(
    Histogram, texts, texts,
    bins=st.lists(st.builds(Rect, finite, finite, finite, finite, texts), max_size=3),
    x_ticks=st.lists(st.builds(Tick, finite, texts, texts), max_size=3),
    y_ticks=st.lists(st.builds(Tick, finite, texts), max_size=3),
    markers=st.lists(st.builds(Marker, finite, texts, texts), max_size=3),
    labels=st.lists(st.builds(MarkerLabel, finite, texts, texts, st.integers(0, 3), texts),
                    max_size=2),
    overflow=st.none() | st.builds(Rect, finite, finite, finite, finite, texts),
    overflow_label=st.builds(Tick, finite, texts)))
def test_any_histogram_matches_the_macro(h: Histogram) -> None:
    """Whatever the coordinates (rounding, negative zero) and the texts to escape."""
    assert str(histogram_svg(h, HIST)) == macro_svg(h)
