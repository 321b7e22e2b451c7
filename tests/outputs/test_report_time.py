"""Where the time goes in the report: self time against the wall time, the call tree.

Also the other displays that read the attribution figures, built from given snapshots
(the engine fills them in live runs).
"""

import re
from dataclasses import dataclass, field
from html import unescape

from test_report import CallsSource, call, cells, table_rows, timeline

from callmetrics import AnalyticsConfig, DurationSketch, FunctionSnapshot
from callmetrics._engine.state import CallerEdge
from callmetrics._engine.view import Reading, RetainedCall
from callmetrics._outputs.environment import RunSummary
from callmetrics._outputs.names import natural_key
from callmetrics._outputs.report import build_report, render_report
from callmetrics._outputs.report_charts import histograms


def snap(name: str, total: float, calls: int = 100, *, self_time: float | None = None,
         active_self: float | None = None, active: float | None = None,
         callers: tuple[CallerEdge, ...] = (), overhead: float = 0.0,
         failures: int = 0, durations: list[float] | None = None) -> FunctionSnapshot:
    sketch = DurationSketch()
    for d in durations or [total / calls] * calls:
        sketch.add(d)
    return FunctionSnapshot(
        name=name, event_type="t", module="m", calls=calls, successes=calls - failures,
        total=total, fast=calls, medium=0, slow=0, overhead=overhead, sketch=sketch,
        slowest=None, fastest=None, self_time=self_time, inclusive_time=total,
        active_time=active if active is not None else total, active_self_time=active_self,
        callers=callers)


@dataclass
class Snaps:
    """A Source of given snapshots, retained calls and wall time."""

    functions: list[FunctionSnapshot]
    wall_time: float | None = None
    calls: list[RetainedCall] = field(default_factory=list)

    @property
    def settings(self) -> AnalyticsConfig:
        """Defaults."""
        return AnalyticsConfig()

    def snapshot(self) -> list[FunctionSnapshot]:
        """The snapshots given."""
        return self.functions

    def retained(self) -> list[RetainedCall]:
        """The calls given."""
        return self.calls

    def read(self) -> Reading:
        """All of it, with the wall time."""
        return Reading(self.functions, self.calls, self.wall_time)


def service() -> Snaps:
    """An async handler that mostly waits, the queries it awaits, and a CPU helper."""
    return Snaps([
        snap("handle", 8.0, 400, self_time=6.0, active_self=0.05, active=0.3),
        snap("query", 2.0, 800, self_time=2.0, active_self=0.2, active=0.2,
             callers=(CallerEdge("handle", 800, 2.0),)),
        snap("render", 0.1, 400, self_time=0.1, active_self=0.1,
             callers=(CallerEdge("handle", 400, 0.1),)),
    ], wall_time=1.0)


def test_time_goes_to_active_self_time_against_the_wall_time() -> None:
    """Awaiting is not time spent: the bars add up to at most the wall time, the rest drawn."""
    report = build_report(service())
    bars = report["bars"]
    assert [b.label for b in bars] == ["query", "render", "handle", "untracked code or waiting"]
    assert [b.value for b in bars] == ["200 ms", "100 ms", "50.0 ms", "650 ms"]
    assert [b.share for b in bars] == ["20.0%", "10.0%", "5.0%", "65.0%"]
    assert sum(b.width for b in bars) <= 100.0001
    assert bars[-1].kind == "rest"
    html = render_report(service())
    assert re.search(r'id="kpi-wall">1.00 s<', html)
    note = unescape(re.search(r'id="wall-note">(.*?)</p>', html, re.S).group(1))  # type: ignore[union-attr]
    assert "took 1.00 s of wall time" in note
    assert "Durations overlap" in note
    assert "10.1 s" in note  # summed over calls: 8 + 2 + 0.1 s


def test_threads_running_at_once_are_said_so() -> None:
    """Self times above the wall time (threads) leave no remainder and the note says why."""
    source = Snaps([snap(f"worker_{i}", 0.9, self_time=0.9) for i in range(4)], wall_time=1.0)
    chart = build_report(source)["chart"]
    assert all(b.kind != "rest" for b in chart.bars)
    assert "threads ran at the same time" in chart.note


def test_the_call_tree_starts_from_the_wall_time() -> None:
    """Main calls fib (recursive) and save; the tree goes caller to callee with times."""
    source = Snaps([
        snap("main", 3.0, 1, self_time=0.5),
        snap("fib", 5.0, 1000, self_time=2.0,
             callers=(CallerEdge("main", 1, 2.0), CallerEdge("fib", 999, 3.0))),
        snap("save", 0.5, 10, self_time=0.5, callers=(CallerEdge("main", 10, 0.5),)),
    ], wall_time=4.0)
    tree = build_report(source)["tree"]
    assert (tree.label, tree.value) == ("wall time", "4.00 s")
    (main,) = tree.children
    assert (main.label, main.value, main.share) == ("main", "3.00 s", "75.0%")
    assert [(c.label, c.value, c.estimated) for c in main.children] == [
        ("fib", "2.00 s", False), ("save", "500 ms", False)]
    assert main.children[0].children == []  # the recursion stops at the repeated function
    html = render_report(source)
    assert '<details class="node"><summary data-fn="main">' in html


def test_the_call_tree_counts_the_time_coroutines_ran() -> None:
    """400 concurrent handlers waiting together do not make 8 s of a 1 s run."""
    tree = build_report(service())["tree"]
    (handle,) = tree.children
    assert (handle.label, handle.value, handle.share) == ("handle", "300 ms", "30.0%")
    assert [(c.label, c.value) for c in handle.children] == [("query", "200 ms"),
                                                             ("render", "100 ms")]


def test_no_callers_no_tree_and_unknown_self_time_is_said_so() -> None:
    """Old stores: no tree, total-time bars labelled as such, Self shows '-'."""
    source = CallsSource([call(float(i), 0.01, "old") for i in range(3)])
    report = build_report(source)
    assert report["tree"] is None
    html = render_report(source)
    assert "callers were not recorded" in html
    assert cells(table_rows(html, "function-table")[0])[6:9] == ["-", "30.0 ms", "-"]


def test_the_functions_table_has_self_and_active_sorted_by_self() -> None:
    """Self and Active columns, the most self time first."""
    html = render_report(service())
    rows = [cells(row) for row in table_rows(html, "function-table")]
    assert [row[0] for row in rows] == ["handle", "query", "render"]  # by self time
    assert rows[0][6:9] == ["6.00 s", "8.00 s", "300 ms"]
    assert re.search(r'aria-sort="descending"><button type="button" data-col="6"', html)


def test_histograms_go_to_the_functions_with_the_most_time_and_failures() -> None:
    """Not the busiest: the most (active) self time, then the failing; 20 calls at least."""
    helpers = [snap(f"helper_{i}", 0.001, 100_000, self_time=0.001, active_self=0.001)
               for i in range(12)]
    api = snap("api_call", 5.0, 50, self_time=5.0, active_self=5.0)
    failing = snap("flaky", 0.0001, 30, self_time=0.0001, active_self=0.0001, failures=30)
    rare = snap("rare", 9.0, 3, self_time=9.0, active_self=9.0)
    names = [h.name for h in histograms([*helpers, api, failing, rare])]
    assert names[0] == "api_call"
    assert "flaky" in names
    assert "rare" not in names  # three calls say nothing about a distribution
    assert len(names) == 12


def test_histogram_axes_stop_at_the_p999_with_an_overflow_bar() -> None:
    """A few very slow calls do not squeeze the rest: they are one bar past the axis."""
    durations = [0.001 * (1 + (i % 10) / 10) for i in range(5000)] + [30.0] * 3
    chart = histograms([snap("api", sum(durations), len(durations), durations=durations)])[0]
    assert chart.overflow is not None
    assert "3 calls" in chart.overflow.tip
    assert all("s" not in t.label or "ms" in t.label or "µs" in t.label
               for t in chart.x_ticks)  # no tick in whole seconds: the axis ends near 2 ms


def test_names_sort_naturally() -> None:
    """fn_2 before fn_10."""
    names = ["fn_10", "fn_2", "Fn_1", "fn_2b"]
    assert sorted(names, key=natural_key) == ["Fn_1", "fn_2", "fn_2b", "fn_10"]
    # Digits that are not decimal digits (a superscript two) are text, never an error.
    assert sorted(["x\u00b2", "x1"], key=natural_key) == ["x1", "x\u00b2"]


def test_tracking_cost_is_flagged_with_what_to_do() -> None:
    """Overhead of 20% of a function's own time or more is listed, worst first."""
    source = Snaps([snap("tiny", 0.01, 10_000, self_time=0.01, overhead=0.008),
                    snap("cheap", 1.0, 100, self_time=1.0, overhead=0.001)], wall_time=2.0)
    report = build_report(source)
    assert [(r.name, r.share) for r in report["overhead"]] == [("tiny", "80%")]
    assert "measure()" in report["overhead"][0].advice
    assert "Tracking costs 20% or more" in render_report(source)


def test_idle_gaps_between_runs_are_cut_out_of_the_timeline() -> None:
    """Two bursts three minutes apart: one short break, labels in true time."""
    calls = [call(i * 0.1, 0.01, "a") for i in range(20)]
    calls += [call(180 + i * 0.1, 0.01, "a") for i in range(20)]
    data = timeline(render_report(CallsSource(calls)))
    assert len(data["g"]) == 1
    assert data["g"][0][1].endswith(" idle")
    assert sum(data["s"]) < 10e6  # the axis spans seconds, not three minutes
    labels = [tick[1] for ticks in data["xt"] for tick in ticks]
    assert any(label.startswith("3m") for label in labels)


def test_the_header_lists_the_runs_or_this_process() -> None:
    """A store's report lists its runs; a live one shows the process's environment."""
    runs = [RunSummary(1, "main", "build-1", "app.py", 1.7e9, 1.7e9 + 12, 500),
            RunSummary(2, None, "build-2", "app.py", 1.7e9 + 200, 1.7e9 + 230, 700)]
    html = render_report(CallsSource([call(0, 0.01)]), runs=runs)
    rows = [cells(row) for row in table_rows(html, "run-table")]
    assert [(r[0], r[1], r[2], r[4], r[5]) for r in rows] == [
        ("1", "main", "build-1", "12.0 s", "500"), ("2", "-", "build-2", "30.0 s", "700")]
    live = render_report(CallsSource([call(0, 0.01)]))
    assert 'id="environment"' in live
    assert "python" in live
    assert "hot path" in live


def test_percentiles_over_time_follow_a_slowdown() -> None:
    """The function view's trend: p50 per slice of time, from the retained calls."""
    from callmetrics._outputs.report_detail import over_time  # noqa: PLC0415

    starts = [i * 0.01 for i in range(200)]
    durations = [0.001 if i < 100 else 0.004 for i in range(200)]
    trend = over_time(starts, durations)
    assert trend is not None
    assert trend["p50"][0] == 1000.0  # microseconds
    assert trend["p50"][-1] == 4000.0
    assert trend["span"] == "1.99 s"
    assert over_time(starts[:5], durations[:5]) is None  # too few to follow
