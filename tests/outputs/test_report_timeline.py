"""The report's timeline (test_report.py checks the page as a whole)."""

import itertools
from pathlib import Path

import pytest
from test_report import CallsSource, call, make, record, timeline

from callmetrics._outputs.report import build_report


def test_timeline_arrays_encode_every_retained_call(tmp_path: Path) -> None:
    """The timeline data holds each retained call's start, duration, function and failure."""
    analytics = make(tmp_path)
    record(analytics, ok=3, failing=2)
    record(analytics, ok=2, failing=0, name="second")
    raw = analytics.retained()
    data = timeline(analytics.render_report())
    assert len(data["s"]) == len(data["d"]) == len(data["f"]) == len(raw) == 7
    starts = [sum(data["s"][: i + 1]) for i in range(len(raw))]
    assert starts == [round((r.start - raw[0].start) * 1e6) for r in raw]
    for got, event in zip(data["d"], raw, strict=True):
        assert got == pytest.approx(event.duration * 1e6, rel=0.01, abs=1e-3)
    assert [data["names"][f] for f in data["f"]] == [r.name for r in raw]
    failed = [i for i, r in enumerate(raw) if r.error is not None]
    assert [pair[0] for pair in data["x"]] == failed
    assert data["errors"] == ["ValueError"]
    assert data["c"] == [0, 1]  # the busier function gets the first colour


def test_timeline_colours_the_eight_busiest_functions_and_greys_the_rest() -> None:
    """Colours go by retained calls, busiest first; the legend lists the same, then 'other'."""
    calls = [call(i * 0.1 + k * 0.001, 0.001, f"f{k:02d}") for k in range(11)
             for i in range(k + 1)]
    report = build_report(CallsSource(sorted(calls)))
    data = report["timeline"]
    colour_of = dict(zip(data["names"], data["c"], strict=True))
    assert [colour_of[f"f{k:02d}"] for k in range(10, -1, -1)] == [0, 1, 2, 3, 4, 5, 6, 7,
                                                                   -1, -1, -1]
    legend = [(e.label, e.colour) for e in report["legend"]]
    assert legend == [*((f"f{k:02d}", 10 - k) for k in range(10, 2, -1)),
                      ("3 other functions", -1)]


def test_time_axis_ticks_are_time_since_the_first_call_formatted_as_durations() -> None:
    """Every tick set starts at 0 s, steps evenly, and labels use the shared formatter."""
    calls = [call(i * 0.35, 0.001) for i in range(10)]  # 3.15 s in all
    data = build_report(CallsSource(calls))["timeline"]
    for ticks in data["xt"]:
        assert ticks[0] == [0, "0 s"]
        steps = {round(b[0] - a[0], 3) for a, b in itertools.pairwise(ticks)}
        assert len(steps) <= 1
        assert ticks[-1][0] <= 3.15e6
    labels = [label for ticks in data["xt"] for _, label in ticks]
    assert "1 s" in labels
    assert "500 ms" in labels
    assert all(label.endswith((" s", " ms")) for label in labels)


def test_failures_carry_their_messages_for_the_tooltip() -> None:
    """Each failure points at its (deduplicated, printable, shortened) message."""
    calls = [call(0, 0.001, error="E", message="refused\x1b[2J"), call(1, 0.001),
             call(2, 0.001, error="E", message="refused\x1b[2J"),
             call(3, 0.001, error="F", message="x" * 500), call(4, 0.001, error="E")]
    data = build_report(CallsSource(calls))["timeline"]
    assert data["errors"] == ["E", "F"]
    assert data["messages"] == ["refused\\x1b[2J", "x" * 159 + "…"]
    assert data["x"] == [[0, 0, 0], [2, 0, 0], [3, 1, 1], [4, 0]]


def test_time_runs_from_the_earliest_start_when_an_enclosing_call_ends_last() -> None:
    """A call that encloses others started first though it ended last: no negative time."""
    outer = call(100.0, 0.5, "outer")  # ends at 100.5, after the inner calls
    inner = [call(100.1 + i * 0.1, 0.01, "inner") for i in range(3)]
    report = build_report(CallsSource([*inner, outer]))  # in the order they ended
    data = report["timeline"]
    starts = list(itertools.accumulate(data["s"]))
    assert min(starts) == 0
    assert starts == sorted(starts)
    assert [data["names"][f] for f in data["f"]] == ["outer", "inner", "inner", "inner"]
    assert data["xt"][0][-1][0] <= 0.3e6  # the axis spans the first to the last start
