"""The C hot path and the pure-Python one record exactly the same thing.

Hypothesis builds call sequences (successes, failures of several kinds, several
functions and blocks, calls nested in calls) and plays each on two instances: one
whose wrappers and ``measure()`` are the pure-Python ones, one using the C
accelerator.  Every aggregate must agree exactly, and the retained events must be
the same once durations and start times are set aside (as a multiset: events are
ordered by start, and calls a few hundred nanoseconds apart can share a start
time at the resolution of a Unix timestamp, in an order that depends on speed).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callmetrics import Analytics, LoggerContainer
from callmetrics._analytics import Analytics as AnalyticsClass
from callmetrics._engine import accel as _accel
from callmetrics._engine import wrap as _wrap

pytestmark = pytest.mark.skipif(_accel.IMPLEMENTATION != "c",
                                reason=f"the C accelerator is not in use ({_accel.REASON})")

FUNCTIONS = ("alpha", "beta", "gamma")
BLOCKS = ("load", "save")
ERRORS: dict[str, type[Exception]] = {"value": ValueError, "key": KeyError,
                                      "runtime": RuntimeError}

# An operation: (kind, index, outcome, nested operations)
#   kind "call" calls FUNCTIONS[index], "block" runs a measure(BLOCKS[index]) block;
#   outcome "ok" or a key of ERRORS; nested operations run inside, before the outcome.
Op = tuple[str, int, str, list[Any]]

outcomes = st.sampled_from(["ok", "ok", "ok", *ERRORS])
leaf: st.SearchStrategy[Op] = st.tuples(
    st.sampled_from(["call", "block"]), st.integers(0, 2), outcomes, st.just([]))
operations = st.recursive(
    st.lists(leaf, max_size=6),
    lambda inner: st.lists(
        st.tuples(st.sampled_from(["call", "block"]), st.integers(0, 2), outcomes, inner),
        max_size=4),
    max_leaves=25,
)


def _silent() -> LoggerContainer:
    made = []
    for part in ("console", "error", "analytics"):
        logger = logging.getLogger(f"test.accel.differential.{part}")
        logger.setLevel(logging.CRITICAL)
        logger.propagate = False
        made.append(logger)
    return LoggerContainer(*made)


class Player:
    """One instance with its tracked functions; plays operations on them."""

    def __init__(self, *, python: bool, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make an instance whose hot path is pure Python (``python``) or C."""
        self.analytics = Analytics(loggers=_silent(), max_events=0)
        self.measure: Callable[[str], Any]
        if python:
            # The Python builder and the Python method: what runs without the extension.
            with monkeypatch.context() as patch:
                patch.setitem(_wrap._BUILDERS, "sync", _wrap._wrap_sync)
                self.functions = [self._track(name) for name in FUNCTIONS]
            analytics = self.analytics
            self.measure = lambda name: AnalyticsClass.measure(analytics, name)
        else:
            self.functions = [self._track(name) for name in FUNCTIONS]
            self.measure = self.analytics.measure

    def _track(self, name: str) -> Callable[..., None]:
        @self.analytics.track("unit", name=name)
        def tracked(player: Player, nested: list[Op], outcome: str) -> None:
            player.play(nested)
            if outcome != "ok":
                raise ERRORS[outcome](f"{name} failed")

        return tracked

    def play(self, ops: list[Op]) -> None:
        """Run ``ops`` in order; failures are swallowed once recorded."""
        for kind, index, outcome, nested in ops:
            try:
                if kind == "call":
                    self.functions[index](self, nested, outcome)
                else:
                    with self.measure(BLOCKS[index % len(BLOCKS)]):
                        self.play(nested)
                        if outcome != "ok":
                            raise ERRORS[outcome](f"block {index} failed")
            except tuple(ERRORS.values()):
                pass


def _recorded(analytics: Analytics) -> dict[str, Any]:
    stats = analytics.get_stats()
    snapshots = {snap.name: (snap.calls, snap.successes, snap.failures, snap.event_type)
                 for snap in analytics.snapshot()}
    events = sorted((call.name, call.event_type, call.error or "", call.message or "",
                     call.location or "")
                    for call in analytics.retained())
    return {
        "counts": analytics.call_counts,
        "successes": analytics.success_counts,
        "snapshots": snapshots,
        "totals": {key: stats[key] for key in ("total_calls", "total_success",
                                               "success_rate", "function_count",
                                               "event_count")},
        "categories": stats["duration_counts"],
        "events": events,
    }


@pytest.fixture
def players(monkeypatch: pytest.MonkeyPatch) -> Callable[[], tuple[Player, Player]]:
    """Make a (pure-Python, C) pair of players."""

    def make() -> tuple[Player, Player]:
        return (Player(python=True, monkeypatch=monkeypatch),
                Player(python=False, monkeypatch=monkeypatch))

    return make


# Fewer examples under valgrind (.ci/run sets CALLMETRICS_EXAMPLES), where calls are slow.
@settings(max_examples=int(os.environ.get("CALLMETRICS_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_both_hot_paths_record_the_same(players: Callable[[], tuple[Player, Player]],
                                        ops: list[Op]) -> None:
    """Same calls in, same counts, categories and event sequence out."""
    python, accelerated = players()
    assert type(python.functions[0]).__name__ == "function"
    assert type(accelerated.functions[0]).__name__ == "Tracked"
    python.play(ops)
    accelerated.play(ops)
    assert _recorded(accelerated.analytics) == _recorded(python.analytics)


def test_both_hot_paths_agree_across_drains(
        players: Callable[[], tuple[Player, Player]]) -> None:
    """Beyond one buffer's worth of calls (so drains run mid-sequence), still identical."""
    python, accelerated = players()
    ops: list[Op] = [("call", i % 3, "ok" if i % 7 else "value", []) for i in range(5_000)]
    ops += [("block", i % 2, "ok" if i % 5 else "key", []) for i in range(3_000)]
    for player in (python, accelerated):
        player.play(ops)
    assert _recorded(accelerated.analytics) == _recorded(python.analytics)
