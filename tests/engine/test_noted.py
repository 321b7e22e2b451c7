"""Successful calls with a note (``NotedCall``): counted as successes everywhere, kept on events."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections import Counter
from pathlib import Path
from time import perf_counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmetrics import Analytics, load
from callmetrics._cli import main
from callmetrics._engine.aggregate import FailedCall, FunctionStats, NotedCall
from callmetrics._engine.view import RetainedCall
from callmetrics._outputs.report import build_report
from callmetrics._store.runs import read_stored

STORE_V2 = Path(__file__).parents[1] / "data" / "store_v2.db"


def _stats(analytics: Analytics, name: str) -> FunctionStats:
    return analytics._recorder.stats_for(name, "unit", "tests", explicit=True)


def _outcomes(analytics: Analytics) -> list[tuple[str, bool, str | None, str | None]]:
    return [(e.function, e.success, e.error, e.message) for e in analytics.events]


# ------------------------------------------------------------------ the hot path
def test_noted_buffers_one_call_with_its_note_and_returns_its_duration(
        analytics: Analytics) -> None:
    stats = _stats(analytics, "fetch")
    before = len(analytics.buffer)  # three items a call (a list, or the C CallBuffer)
    took = analytics.ends.noted(stats, perf_counter(), "cache hit")
    assert len(analytics.buffer) == before + 3
    assert took >= 0
    (event,) = analytics.events
    assert (event.function, event.success, event.error, event.message) == (
        "fetch", True, None, "cache hit")
    assert event.duration == took


class _BrokenStr:
    def __str__(self) -> str:
        raise RuntimeError("no text")


class _OddText(str):
    def isprintable(self) -> bool:
        raise RuntimeError("odd")


class _OddStr:
    def __str__(self) -> str:
        return _OddText("odd")


@pytest.mark.parametrize(("note", "kept"), [
    ("line one\nline\ttwo", "line one line two"),  # one line, as failure messages
    ("x" * 600, "x" * 500 + "… (600 characters)"),  # at most 500 characters
    (404, "404"),  # str() of anything
    (_BrokenStr(), "<str() raised RuntimeError>"),  # a broken __str__ never breaks the call
    ("", None),  # an empty note leaves a plain success
    (_OddStr(), None),  # describing it failed: recorded as a plain success, not raised
])
def test_notes_are_cleaned_as_failure_messages_are(analytics: Analytics, note: object,
                                                    kept: str | None) -> None:
    analytics.ends.noted(_stats(analytics, "fetch"), perf_counter(), note)
    assert _outcomes(analytics) == [("fetch", True, None, kept)]
    assert analytics.get_stats()["total_success"] == 1


# ------------------------------------------------------------------------ folding
def test_a_noted_call_folds_as_a_success_of_its_function(analytics: Analytics) -> None:
    fetch, save = _stats(analytics, "fetch"), _stats(analytics, "save")
    keys = [NotedCall(fetch, "cache hit"), fetch, FailedCall(fetch, "ValueError", "boom", None),
            NotedCall(save, "200 OK")]
    analytics._recorder.drain_calls(keys, [1.0, 2.0, 3.0, 4.0], [0.5, 0.1, 0.2, 0.3])
    got = analytics.get_stats("fetch")
    assert (got["total_calls"], got["total_success"], got["event_count"]) == (3, 2, 3)
    # The slowest call is the noted one: it reads back as a success with its note.
    assert (got["slowest"]["Success"], got["slowest"]["Error"], got["slowest"]["Message"],
            got["slowest"]["Location"]) == (True, None, "cache hit", None)
    assert (got["fastest"]["Success"], got["fastest"]["Message"]) == (True, None)
    only = analytics.get_stats("save")
    assert only["slowest"] == only["fastest"]
    assert only["slowest"]["Message"] == "200 OK"
    assert analytics.success_counts == {"fetch": 2, "save": 1}
    assert _outcomes(analytics) == [("fetch", True, None, "cache hit"), ("fetch", True, None, None),
                                    ("fetch", False, "ValueError", "boom"),
                                    ("save", True, None, "200 OK")]


def test_a_chunk_of_one_function_s_noted_calls_is_folded_exactly(analytics: Analytics) -> None:
    stats = _stats(analytics, "page")
    n = 3000  # several chunks' worth
    keys = [NotedCall(stats, f"{200 + i % 3} x") for i in range(n)]
    analytics._recorder.drain_calls(keys, [float(i) for i in range(n)],
                                    [1e-6 * (1 + i % 7) for i in range(n)])
    got = analytics.get_stats()
    assert (got["total_calls"], got["total_success"]) == (n, n)
    assert got["slowest"]["Success"]
    assert got["slowest"]["Message"] in {"200 x", "201 x", "202 x"}


def test_the_slowest_noted_call_outlives_the_ring() -> None:
    analytics = Analytics(max_events=2)
    stats = _stats(analytics, "fetch")
    analytics._recorder.drain_calls([NotedCall(stats, "slow one")], [1.0], [9.0])
    analytics._recorder.drain_calls([stats] * 5, [2.0 + i for i in range(5)], [0.1] * 5)
    assert _outcomes(analytics) == [("fetch", True, None, None)] * 2
    slowest = analytics.get_stats()["slowest"]
    assert (slowest.duration, slowest.success, slowest.message) == (9.0, True, "slow one")


# ------------------------------------------------------- against a simple model
OUTCOMES = ("ok", "noted", "failed")


@settings(max_examples=40, deadline=None)
@given(pattern=st.lists(st.tuples(st.sampled_from(OUTCOMES), st.integers(0, 2)), min_size=1,
                        max_size=12),
       repeats=st.integers(1, 250), max_events=st.integers(0, 400))
def test_counts_events_and_extremes_match_a_model(pattern: list[tuple[str, int]], repeats: int,
                                                  max_events: int) -> None:
    """Random runs of plain, noted and failed blocks (past several drains): all exact."""
    analytics = Analytics(max_events=max_events)
    model: list[tuple[str, bool, str | None, str | None]] = []
    for i, (outcome, which) in enumerate(pattern * repeats):
        name = f"f{which}"
        if outcome == "failed":
            with contextlib.suppress(ValueError), analytics.measure(name, event_type="unit") as b:
                b.message = "ignored"  # the exception's message wins
                raise ValueError(f"bad {i}")
            model.append((name, False, "ValueError", f"bad {i}"))
        else:
            with analytics.measure(name, event_type="unit") as block:
                if outcome == "noted":
                    block.message = f"note {i}"
            model.append((name, True, None, f"note {i}" if outcome == "noted" else None))
    assert analytics.call_counts == Counter(m[0] for m in model)
    assert analytics.success_counts == {name: sum(1 for m in model if m[0] == name and m[1])
                                        for name in {m[0] for m in model}}
    kept = model[-max_events:] if max_events else model
    assert Counter(_outcomes(analytics)) == Counter(kept)
    for name in {m[0] for m in model}:
        got = analytics.get_stats(name)
        assert got["event_count"] == sum(1 for m in kept if m[0] == name)
        for extreme in (got["slowest"], got["fastest"]):
            assert (name, extreme.success, extreme.error, extreme.message) in model


# ------------------------------------------------------------ merge and restore
def test_merge_with_keeps_notes_as_successes() -> None:
    mine, theirs = Analytics(), Analytics()
    with theirs.measure("fetch", event_type="unit") as block:
        block.message = "cache hit"
    with mine.measure("fetch", event_type="unit"):
        pass
    mine.merge_with(theirs)
    assert mine.success_counts == {"fetch": 2}
    assert Counter(_outcomes(mine)) == {("fetch", True, None, None): 1,
                                        ("fetch", True, None, "cache hit"): 1}
    assert theirs.call_counts == {}


def test_restore_reads_a_message_without_error_as_a_note() -> None:
    source = Analytics()
    with source.measure("fetch", event_type="unit") as block:
        block.message = "200 OK"
    view = Analytics()
    view.restore(source.snapshot(), [*source.retained(), (9e9, 0.5, None, "fetch", "304 x"),
                                     (9e9 + 1, 0.5, "KeyError", "fetch", "k", "a.py:1 in f")])
    assert view.call_counts == {"fetch": 1}  # the plain events add no aggregates
    assert _outcomes(view) == [("fetch", True, None, "200 OK"), ("fetch", True, None, "304 x"),
                               ("fetch", False, "KeyError", "k")]
    assert view.get_stats()["slowest"].message == "200 OK"


# ------------------------------------------------------------------------ store
def _noted_run(store: Path) -> None:
    with Analytics(store=store) as analytics:
        stats = _stats(analytics, "fetch")
        keys = [NotedCall(stats, "200 OK"), NotedCall(stats, "404 Not Found"),
                FailedCall(stats, "FailedStatus", "503 Service Unavailable", None), stats]
        analytics._recorder.drain_calls(keys, [1.0, 2.0, 3.0, 4.0], [0.3, 0.1, 0.2, 0.05])


def test_the_store_round_trips_notes_exactly(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    _noted_run(store)
    _, calls = read_stored(store)
    assert [(c.name, c.error, c.message, c.location) for c in calls] == [
        ("fetch", None, "200 OK", None), ("fetch", None, "404 Not Found", None),
        ("fetch", "FailedStatus", "503 Service Unavailable", None), ("fetch", None, None, None)]
    view = load(store)
    assert view.success_counts == {"fetch": 3}
    assert [(e.success, e.message) for e in view.events] == [
        (True, "200 OK"), (True, "404 Not Found"), (False, "503 Service Unavailable"),
        (True, None)]
    got = view.get_stats()
    assert (got["slowest"].success, got["slowest"].message) == (True, "200 OK")
    assert (got["fastest"].success, got["fastest"].message) == (True, None)


def test_a_store_written_before_notes_still_loads(tmp_path: Path) -> None:
    """tests/data/store_v2.db: main's schema 2, where successes never had a message."""
    view = load(STORE_V2)
    assert view.call_counts == {"fetch": 100, "parse": 20}
    assert view.success_counts == {"fetch": 90, "parse": 20}
    events = view.events
    assert len(events) == 50
    assert {e.message for e in events if e.success} == {None}
    assert Counter(e.error for e in events) == {None: 47, "ConnectionError": 3}
    # Written to again: the old run is unchanged, the new one keeps its note.
    copy = tmp_path / "v2.db"
    shutil.copy(STORE_V2, copy)
    with Analytics(store=copy) as analytics, analytics.measure("parse", event_type="cpu") as b:
        b.message = "cached"
    again = load(copy)
    assert again.success_counts == {"fetch": 90, "parse": 21}
    assert next(e for e in again.events if e.message == "cached").success


# ------------------------------------------------------ outputs: never a failure
def test_outputs_never_count_a_noted_success_as_a_failure(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "runs.db"
    _noted_run(store)
    view = load(store)
    report = build_report(view)
    assert [(g.error, g.message, g.count) for g in report["failure_groups"]] == [
        ("FailedStatus", "503 Service Unavailable", 1)]
    assert main(["stats", str(store)]) == 0
    printed = capsys.readouterr().out
    assert "Failures among the retained calls (1)" in printed
    assert "200 OK" not in printed
    assert "404 Not Found" not in printed
    assert main(["stats", str(store), "--json"]) == 0
    (function,) = json.loads(capsys.readouterr().out)["functions"]
    assert (function["calls"], function["failures"]) == (4, 1)


def test_retained_calls_carry_the_note_with_no_error(analytics: Analytics) -> None:
    with analytics.measure("fetch", event_type="unit") as block:
        block.message = "cache hit"
    (call,) = analytics.retained()
    assert call == RetainedCall(call.start, call.duration, "fetch", "unit", None, "cache hit")
