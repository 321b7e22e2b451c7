"""The CPU column (``cpu_time=True``): shown only when measured, labelled for what it is."""

from __future__ import annotations

import asyncio
import io
import json
import re

import pytest
from rich.console import Console

from callmetrics import Analytics
from callmetrics._format import duration
from callmetrics._outputs.console import print_summary
from callmetrics._outputs.report import build_report, render_report
from callmetrics._outputs.report_tables import CPU_COLUMN


def recorded(*, cpu_time: bool) -> Analytics:
    """A sync function, a block and a coroutine; CPU time measured or not."""
    analytics = Analytics(cpu_time=cpu_time)
    work = analytics.track("unit", name="work")(lambda: sum(range(20_000)))
    for _ in range(5):
        work()
    with analytics.measure("blk"):
        work()

    @analytics.track("unit", name="fetch")
    async def fetch() -> None:
        return None

    asyncio.run(fetch())
    return analytics


def summary(analytics: Analytics) -> list[str]:
    buffer = io.StringIO()
    print_summary(analytics, Console(width=200, file=buffer, color_system=None))
    return buffer.getvalue().splitlines()


def test_the_summary_has_a_cpu_column_only_when_measured() -> None:
    """After Total when measured, with '-' for what was not (the coroutine); absent otherwise."""
    measured = recorded(cpu_time=True)
    lines = summary(measured)
    assert re.search(r"Self +Total +CPU \(thread\) +p50", lines[1])
    work = next(s for s in measured.snapshot() if s.name == "work")
    row = next(line for line in lines if line.split()[:1] == ["work"])
    assert duration(work.cpu_time) in row
    fetch_row = next(line for line in lines if line.split()[:1] == ["fetch"])
    assert fetch_row.split()[9] == "-"  # Note is empty: Function, Type, Calls... CPU
    assert "CPU" not in "\n".join(summary(recorded(cpu_time=False)))


@pytest.mark.parametrize("cpu_time", [True, False])
def test_the_report_functions_table_and_view_show_it_when_measured(cpu_time: bool) -> None:
    """The functions table gains the CPU column (every row as long), the function view a figure."""
    analytics = recorded(cpu_time=cpu_time)
    context = build_report(analytics)
    columns = context["columns"]
    assert (CPU_COLUMN in columns) is cpu_time
    assert all(len(row) == len(columns) for row in context["functions"])
    by_name = {row[0].text: row for row in context["functions"]}
    details = {d["name"]: dict(d["figures"]) for d in context["fn_details"]}
    if cpu_time:
        at = columns.index(CPU_COLUMN)
        assert columns[at - 1] == "Active"
        cpu = {s.name: s.cpu_time for s in analytics.snapshot()}
        assert by_name["work"][at].text == duration(cpu["work"])
        assert by_name["fetch"][at].text == "-"  # not measured: unknown, not 0
        assert details["work"][CPU_COLUMN] == duration(cpu["work"])
        assert CPU_COLUMN not in details["fetch"]
        assert "CPU (thread)" in render_report(analytics)
    else:
        assert all(CPU_COLUMN not in figures for figures in details.values())
        assert "CPU (thread)" not in render_report(analytics)


def test_the_json_has_it_per_function_and_in_the_totals() -> None:
    """``to_dict``: each function's CPU time (null when not measured), the measured ones' sum."""
    analytics = recorded(cpu_time=True)
    data = json.loads(json.dumps(analytics.to_dict()))
    found = {f["name"]: f["cpu_time"] for f in data["functions"]}
    assert found["fetch"] is None
    assert found["work"] > 0
    assert found["blk"] > 0
    assert data["totals"]["cpu_time"] == pytest.approx(found["work"] + found["blk"])
