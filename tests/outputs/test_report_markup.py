"""The functions table's rows written in Python: the very markup the template loop wrote."""

from __future__ import annotations

import contextlib
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from callmetrics import Analytics, AnalyticsConfig, DurationSketch, FunctionSnapshot
from callmetrics._outputs.notebook import SUMMARY_COLUMNS
from callmetrics._outputs.report import make_environment
from callmetrics._outputs.report_markup import function_table_body
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
