"""Failures counted by exception type: qualified names, exact totals, a cap, merges."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator

import pytest

from callmetrics import Analytics, FunctionSnapshot
from callmetrics._engine.aggregate import FailedCall
from callmetrics._engine.errors import OTHER_TYPES, TYPES_LIMIT, UNKNOWN_TYPE, type_name
from callmetrics._engine.records import LoggerContainer


class Refused(Exception):  # noqa: N818  # a name as users give them
    """An exception class of this module: counted as ``test_failure_types.Refused``."""


def snapshot_of(analytics: Analytics, name: str) -> FunctionSnapshot:
    [snap] = [s for s in analytics.snapshot() if s.name.endswith(name)]
    return snap


def test_each_failure_is_counted_under_its_qualified_type_name(quiet: LoggerContainer) -> None:
    """Built-ins by their name, others by module and qualified name; the counts add up."""
    analytics = Analytics(loggers=quiet)
    errors = [ValueError("v"), json.JSONDecodeError("bad", "{", 0), Refused(), KeyError("k")]

    @analytics.track("unit")
    def fail(i: int) -> None:
        if i % 5 < 4:
            raise errors[i % 5]

    for i in range(1000):
        with contextlib.suppress(ValueError, json.JSONDecodeError, Refused, KeyError):
            fail(i)
    snap = snapshot_of(analytics, "fail")
    assert snap.failures == 800
    assert snap.failures_by_type == {"ValueError": 200, "json.decoder.JSONDecodeError": 200,
                                     f"{__name__}.Refused": 200, "KeyError": 200}
    assert snap.failure_types() == snap.failures_by_type


def test_async_and_generator_failures_are_counted_too() -> None:
    """Coroutines and generators that raise are counted by type like plain functions."""
    analytics = Analytics()

    @analytics.track("unit")
    async def handler() -> None:
        raise TimeoutError

    @analytics.track("unit")
    def rows() -> Iterator[int]:
        yield 1
        raise LookupError("no more")

    async def run() -> None:
        for _ in range(3):
            with pytest.raises(TimeoutError):
                await handler()

    asyncio.run(run())
    for _ in range(2):
        with pytest.raises(LookupError):
            list(rows())
    assert snapshot_of(analytics, "handler").failures_by_type == {"TimeoutError": 3}
    assert snapshot_of(analytics, "rows").failures_by_type == {"LookupError": 2}


def test_successes_and_expected_exceptions_are_not_failures_of_any_type() -> None:
    """Expected exceptions and SystemExit(0) count as successes: no type entry for them."""
    analytics = Analytics()

    @analytics.track("unit", expected=KeyError)
    def lookup(i: int) -> int:
        if i == 1:
            raise KeyError(i)
        if i == 2:
            raise SystemExit(0)
        if i == 3:
            raise IndexError(i)
        return i

    for i in range(5):
        with contextlib.suppress(KeyError, SystemExit, IndexError):
            lookup(i)
    snap = snapshot_of(analytics, "lookup")
    assert (snap.calls, snap.failures) == (5, 1)
    assert snap.failures_by_type == {"IndexError": 1}


def test_failures_from_many_threads_are_counted_exactly(quiet: LoggerContainer) -> None:
    """Eight threads raising three types: every failure counted once, under its type."""
    analytics = Analytics(loggers=quiet)
    kinds = (ValueError, KeyError, Refused)

    @analytics.track("unit")
    def work(i: int) -> int:
        if i % 4:
            raise kinds[i % 4 - 1]
        return i

    def run() -> None:
        for i in range(8_000):
            with contextlib.suppress(ValueError, KeyError, Refused):
                work(i)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    snap = snapshot_of(analytics, "work")
    assert snap.calls == 64_000
    assert snap.failures_by_type == {"ValueError": 16_000, "KeyError": 16_000,
                                     f"{__name__}.Refused": 16_000}


def test_types_past_the_cap_are_folded_and_totals_stay_exact(quiet: LoggerContainer) -> None:
    """25 distinct types: the first 20 by name, the other 5 as '(other)', summing exactly."""
    analytics = Analytics(loggers=quiet)
    classes = [type(f"Error{i:02}", (Exception,), {}) for i in range(25)]

    @analytics.track("unit")
    def fail(i: int) -> None:
        raise classes[i % 25](i)

    for round_ in range(2):  # the first round fills the names, the second folds again
        for i in range(250):
            with pytest.raises(Exception, match=str(i)):
                fail(i)
        snap = snapshot_of(analytics, "fail")
        counts = snap.failure_types()
        assert len(counts) == TYPES_LIMIT + 1
        assert counts[OTHER_TYPES] == 50 * (round_ + 1)
        assert sum(counts.values()) == snap.failures == 250 * (round_ + 1)
        assert {name for name in counts if name != OTHER_TYPES} == {
            f"{__name__}.Error{i:02}" for i in range(TYPES_LIMIT)}


def test_merge_with_keeps_the_counts_by_type() -> None:
    """merge_with adds the other instance's failures by type to this one's."""
    first, second = Analytics(), Analytics()
    for analytics, error in ((first, ValueError), (second, KeyError)):
        @analytics.track("unit", name="job")
        def job(error: type[Exception] = error) -> None:
            raise error

        for _ in range(3):
            with pytest.raises(error):
                job()
    first.merge_with(second)
    snap = snapshot_of(first, "job")
    assert snap.failures_by_type == {"ValueError": 3, "KeyError": 3}
    assert second.snapshot() == [] or snapshot_of(second, "job").failures_by_type == {}


def test_failures_drained_from_elsewhere_are_counted_under_the_name_given() -> None:
    """A FailedCall made with a type name (drain_calls) is counted under that name."""
    analytics = Analytics()
    recorder = analytics._recorder  # as an integration feeds calls
    stats = recorder.stats_for("job", "unit", "m", explicit=True)
    recorder.drain_calls(
        [stats, FailedCall(stats, "Timeout", "slow", None), FailedCall(stats, "Timeout", None,
                                                                        None)],
        [0.0, 1.0, 2.0], [0.1, 0.2, 0.3])
    assert snapshot_of(analytics, "job").failures_by_type == {"Timeout": 2}


def test_snapshots_without_types_report_their_failures_as_unknown() -> None:
    """A snapshot whose types were not recorded shows them as '(unknown)', never as none."""
    analytics = Analytics()

    @analytics.track("unit")
    def fail() -> None:
        raise ValueError("once")

    with pytest.raises(ValueError, match="once"):
        fail()
    snap = snapshot_of(analytics, "fail")
    import dataclasses  # noqa: PLC0415  # only here

    unrecorded = dataclasses.replace(snap, failures_by_type=None)
    assert unrecorded.failure_types() == {UNKNOWN_TYPE: 1}
    restored = Analytics()
    restored.restore([unrecorded], [])
    assert snapshot_of(restored, "fail").failures_by_type == {UNKNOWN_TYPE: 1}


def test_type_names_fall_back_to_what_the_class_has() -> None:
    """Built-ins without ``builtins.``; a class whose module is not a str by its qualname."""
    nameless = type("Odd", (Exception,), {"__module__": None})
    assert type_name(nameless) == "Odd"
    assert type_name(ValueError) == "ValueError"
    assert type_name(json.JSONDecodeError) == "json.decoder.JSONDecodeError"
    assert type_name("Given") == "Given"
