"""The Analytics class: decorating every kind of callable, what is recorded, and read-back."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import re
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

import callmetrics
from callmetrics import (
    Analytics,
    AnalyticsConfig,
    CallInfo,
    LoggerContainer,
    TimingInfo,
)
from core_helpers import feed, only_event

DAY = 86_400.0
# asyncio may run a timer up to its clock resolution early; durations of tracked calls
# that await asyncio.sleep(t) are checked against t less this margin.
ASYNCIO_EARLY = 1e-3


def fetch_rows(limit: int) -> list[int]:
    """Return ``limit`` numbers (a module-level function whose key other modules may share)."""
    return list(range(limit))




# ------------------------------------------------------------------- public API


def test_public_names_are_exported() -> None:
    """The issue's public names are importable from the package."""
    for name in ("Analytics", "AnalyticsConfig", "DurationThresholds", "LoggerContainer",
                 "TimingInfo", "CallInfo", "DurationSketch"):
        assert name in callmetrics.__all__
        assert hasattr(callmetrics, name)


def test_record_types_keep_their_attributes() -> None:
    """TimingInfo and CallInfo expose the seed's attributes."""
    timing = TimingInfo(1.0, 3.0, 2.0, 0.001)
    assert (timing.start, timing.end, timing.duration, timing.overhead) == (1.0, 3.0, 2.0, 0.001)
    call = CallInfo("fetch", "API", True)
    assert (call.func_name, call.event_type, call.success) == ("fetch", "API", True)


def test_instance_ids_grow() -> None:
    """Each new instance gets a larger instance_id."""
    first, second = Analytics(), Analytics()
    assert second.instance_id > first.instance_id


def test_default_loggers_live_under_callmetrics() -> None:
    """Without loggers, the instance logs to standard loggers named callmetrics.*."""
    analytics = Analytics()
    for logger in (analytics.console_logger, analytics.error_logger, analytics.analytics_logger):
        assert isinstance(logger, logging.Logger)
        assert logger.name.startswith("callmetrics.")


def test_given_loggers_are_used(loggers: LoggerContainer) -> None:
    """A LoggerContainer's loggers become the instance's loggers."""
    analytics = Analytics(loggers=loggers)
    assert analytics.console_logger is loggers.console
    assert analytics.error_logger is loggers.error
    assert analytics.analytics_logger is loggers.analytics


# ------------------------------------------------------------ kinds of callable


def test_execute_methods_keep_the_seed_signatures(analytics: Analytics) -> None:
    """The execute_*_wrapped_call methods take the seed's parameters, in the seed's order."""

    def names(method: Callable[..., Any]) -> list[str]:
        return [f"{'*' * (p.kind == p.VAR_POSITIONAL)}{'**' * (p.kind == p.VAR_KEYWORD)}{p.name}"
                for p in inspect.signature(method).parameters.values()]

    assert names(analytics.execute_sync_wrapped_call) == ["func", "event_type", "*args",
                                                          "**kwargs"]
    assert names(analytics.execute_async_wrapped_call) == ["func", "event_type", "*args",
                                                           "**kwargs"]
    assert names(analytics.execute_wrapped_call) == ["func", "event_type", "is_async", "*args",
                                                     "**kwargs"]
    assert inspect.iscoroutinefunction(analytics.execute_async_wrapped_call)
    assert inspect.iscoroutinefunction(analytics.execute_wrapped_call)
    assert not inspect.iscoroutinefunction(analytics.execute_sync_wrapped_call)


def test_execute_sync_wrapped_call(analytics: Analytics) -> None:
    """execute_sync_wrapped_call runs the function once, tracked, with its arguments."""
    assert analytics.execute_sync_wrapped_call(fetch_rows, "rows", 2) == [0, 1]
    assert analytics.execute_sync_wrapped_call(fetch_rows, "rows", limit=1) == [0]
    assert analytics.call_counts == {"fetch_rows": 2}
    assert analytics.events[0]["Event Type"] == "rows"


def test_execute_sync_wrapped_call_inside_running_loop(analytics: Analytics) -> None:
    """execute_sync_wrapped_call is tracked inside a running event loop too."""

    async def main() -> list[int]:
        result: list[int] = analytics.execute_sync_wrapped_call(fetch_rows, "rows", 3)
        return result

    assert asyncio.run(main()) == [0, 1, 2]
    assert analytics.call_counts == {"fetch_rows": 1}


def test_execute_sync_wrapped_call_failure(analytics: Analytics) -> None:
    """An exception from execute_sync_wrapped_call propagates and is a failure."""

    def explode() -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError, match="no"):
        analytics.execute_sync_wrapped_call(explode, "unit")
    assert only_event(analytics)["Error"] == "RuntimeError"


def test_execute_async_wrapped_call(analytics: Analytics) -> None:
    """execute_async_wrapped_call awaits the coroutine, tracked to completion."""

    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0.01)
        return a + b

    async def fail() -> None:
        raise ConnectionError("down")

    async def main() -> Any:
        result = await analytics.execute_async_wrapped_call(add, "io", 1, b=2)
        with pytest.raises(ConnectionError):
            await analytics.execute_async_wrapped_call(fail, "io")
        return result

    assert asyncio.run(main()) == 3
    assert analytics.call_counts == {"test_execute_async_wrapped_call.add": 1,
                                     "test_execute_async_wrapped_call.fail": 1}
    assert analytics.success_counts["test_execute_async_wrapped_call.fail"] == 0
    by_name = {e.function: e for e in analytics.events}
    assert by_name["test_execute_async_wrapped_call.add"].duration >= 0.01 - ASYNCIO_EARLY


def test_execute_async_wrapped_call_with_plain_callables(analytics: Analytics) -> None:
    """A sync function, or one returning an awaitable, is tracked once and its result given."""

    async def five() -> int:
        return 5

    async def main() -> tuple[Any, Any]:
        plain = await analytics.execute_async_wrapped_call(fetch_rows, "rows", 2)
        awaited = await analytics.execute_async_wrapped_call(
            lambda: five(), "io"  # noqa: PLW0108  # a sync callable returning an awaitable
        )
        return plain, awaited

    assert asyncio.run(main()) == ([0, 1], 5)
    key = "test_execute_async_wrapped_call_with_plain_callables.main.<lambda>"
    assert analytics.call_counts == {"fetch_rows": 1, key: 1}


def test_execute_wrapped_call_dispatches_on_is_async(analytics: Analytics) -> None:
    """execute_wrapped_call awaits when is_async and calls directly otherwise."""

    async def double(x: int) -> int:
        return 2 * x

    async def main() -> tuple[Any, Any]:
        first = await analytics.execute_wrapped_call(double, "io", True, 4)
        second = await analytics.execute_wrapped_call(fetch_rows, "rows", False, 2)
        return first, second

    assert asyncio.run(main()) == (8, [0, 1])
    assert analytics.call_counts == {"test_execute_wrapped_call_dispatches_on_is_async.double": 1,
                                     "fetch_rows": 1}


# ----------------------------------------------------------------------- measure


def test_disabled_passes_through_and_records_nothing(loggers: LoggerContainer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """With enabled=False calls pass straight through and nothing is recorded or logged."""
    analytics = Analytics({"enabled": False}, loggers)

    def double(x: int) -> int:
        return 2 * x

    async def fetch() -> int:
        return 1

    def explode() -> None:
        raise ValueError

    caplog.clear()
    tracked = analytics.track("unit")(double)
    assert tracked(3) == 6
    assert asyncio.run(analytics.track("io")(fetch)()) == 1
    with pytest.raises(ValueError):  # noqa: PT011  # any ValueError: the function's own
        analytics.track("unit")(explode)()
    with analytics.measure("block"):
        pass
    assert analytics.execute_sync_wrapped_call(double, "unit", 2) == 4
    assert asyncio.run(analytics.execute_async_wrapped_call(fetch, "io")) == 1
    analytics.log_summary()
    assert caplog.records == []
    assert analytics.call_counts == {}
    assert analytics.success_counts == {}
    assert analytics.events == []
    assert analytics.get_stats()["total_calls"] == 0


# ------------------------------------------------------------------------ events


def test_decorator_overhead_is_positive_and_plausible(analytics: Analytics) -> None:
    """decorator_overhead is above zero and below the wall time the calls took."""

    @analytics.track("unit")
    def noop() -> None:
        pass

    began = time.perf_counter()
    for _ in range(5000):
        noop()
    elapsed = time.perf_counter() - began
    began = time.perf_counter()
    overhead = analytics.decorator_overhead  # drains the rest (and calibrates once)
    reading = time.perf_counter() - began
    assert set(overhead) == set(analytics.call_counts)
    spent = overhead["test_decorator_overhead_is_positive_and_plausible.noop"]
    assert spent > 0.0
    # The wrapper's cost lies within the calls' wall time plus the drain done on reading;
    # the factor 2 leaves room for a calibration taken while the machine was busier.
    assert spent < 2 * elapsed + reading
    assert spent / 5000 < 2e-5  # tens of µs a call would be implausible for the wrapper


def test_async_decorator_overhead_is_positive(analytics: Analytics) -> None:
    """An async function's decorator_overhead is above zero and below the calls' wall time."""

    @analytics.track("io")
    async def noop() -> None:
        pass

    async def main() -> float:
        began = time.perf_counter()
        for _ in range(2000):
            await noop()
        return time.perf_counter() - began

    elapsed = asyncio.run(main())
    began = time.perf_counter()
    spent = analytics.decorator_overhead["test_async_decorator_overhead_is_positive.noop"]
    reading = time.perf_counter() - began
    assert 0.0 < spent < 2 * elapsed + reading


class Recorder:
    """An observer that writes down what it sees."""

    def __init__(self) -> None:
        """Start with nothing seen."""
        self.seen: list[tuple[str, str, float, BaseException | None]] = []

    def on_start(self, stats: Any) -> object:
        """Hand a token to on_end."""
        return ("token", stats.name)

    def on_end(self, token: object, stats: Any, duration: float,
               error: BaseException | None) -> None:
        """Record the call."""
        assert token == ("token", stats.name)
        self.seen.append((stats.name, stats.event_type, duration, error))


def test_observers_see_each_call_while_registered(analytics: Analytics) -> None:
    """A registered observer sees every kind of tracked call with its outcome, until removed."""
    recorder = Recorder()

    @analytics.track("unit")
    def ok() -> int:
        return 1

    @analytics.track("io")
    async def fails() -> None:
        raise ConnectionError

    @analytics.track("gen")
    def gen() -> Generator[int, None, None]:
        yield 1

    ok()
    analytics.add_observer(recorder)
    ok()
    with pytest.raises(ConnectionError):
        asyncio.run(fails())
    assert list(gen()) == [1]
    with analytics.measure("block"):
        pass
    analytics.remove_observer(recorder)
    analytics.remove_observer(recorder)  # removing twice is harmless
    ok()
    names = [(name.rsplit(".", 1)[-1], kind) for name, kind, _, _ in recorder.seen]
    assert names == [("ok", "unit"), ("fails", "io"), ("gen", "gen"), ("block", "block")]
    assert isinstance(recorder.seen[1][3], ConnectionError)
    assert all(duration >= 0 for _, _, duration, _ in recorder.seen)
    assert analytics.call_counts["test_observers_see_each_call_while_registered.ok"] == 3


def test_broken_observer_does_not_break_the_call(analytics: Analytics) -> None:
    """An observer that raises never changes the tracked call's result."""

    class Broken:
        def on_start(self, stats: Any) -> object:
            raise RuntimeError(f"observer start {stats.name}")

        def on_end(self, token: object, stats: Any, duration: float,
                   error: BaseException | None) -> None:
            raise RuntimeError(f"observer end {token} {stats.name} {duration} {error}")

    @analytics.track("unit")
    def ok() -> int:
        return 1

    analytics.add_observer(Broken())
    assert ok() == 1
    assert analytics.call_counts == {"test_broken_observer_does_not_break_the_call.ok": 1}


# --------------------------------------------------------------------- get_stats


@pytest.mark.parametrize("compact", [False, True])
def test_clear_old_events_by_age(compact: bool) -> None:
    """Events that started more than `days` ago go, in both time modes; aggregates stay."""
    analytics = Analytics({"compact_time": compact})
    now = time.time()
    feed(analytics, "f", [0.1] * 4)
    starts = [now - 10 * DAY, now - 8 * DAY, now - 2 * DAY, now - 1]
    analytics.restore([], [(s, 0.1, None, "f") for s in starts])
    before = analytics.get_stats()
    assert analytics.clear_old_events(7) == 2
    assert [e.start for e in analytics.events] == starts[2:]
    assert analytics.clear_old_events() == 0
    assert analytics.clear_old_events(1.5) == 1
    after = analytics.get_stats()
    assert after["total_calls"] == before["total_calls"] == 4
    assert after["p50"] == before["p50"]
    assert analytics.call_counts == {"f": 4}
    assert analytics.clear_old_events(0) == 1
    assert analytics.events == []


def test_clear_old_events_keeps_recent_real_calls(analytics: Analytics) -> None:
    """Calls made just now survive clear_old_events with the default 7 days."""

    @analytics.track("unit")
    def work() -> None:
        pass

    work()
    work()
    assert analytics.clear_old_events() == 0
    assert len(analytics.events) == 2


def test_clear_old_events_rejects_negative_days(analytics: Analytics) -> None:
    """Negative (or NaN) days is a ValueError, a non-number a TypeError."""
    with pytest.raises(ValueError, match="days"):
        analytics.clear_old_events(-1)
    with pytest.raises(ValueError, match="days"):
        analytics.clear_old_events(math.nan)
    with pytest.raises(TypeError, match="days"):
        analytics.clear_old_events("7")  # type: ignore[arg-type]  # the bad input under test


# --------------------------------------------------------------------- merge_with


def test_merge_with_keeps_newest_events_and_sums(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """Merging keeps its own events and the other's newest that fit (the seed), and sums counts."""
    mine = Analytics(loggers=loggers, max_events=5)
    theirs = Analytics(loggers=loggers, max_events=100)

    def work(i: int) -> int:
        if i == 2:
            raise ValueError
        return i

    track_mine = mine.track("unit")(work)
    track_theirs = theirs.track("unit")(work)
    order = []
    for i in range(8):
        target = track_mine if i % 2 else track_theirs
        order.append(id(target))
        with contextlib.suppress(ValueError):
            target(i)
    mine_overhead = mine.decorator_overhead["test_merge_with_keeps_newest_events_and_sums.work"]
    their_overhead = theirs.decorator_overhead["test_merge_with_keeps_newest_events_and_sums.work"]
    # The seed's meaning at the cap: all 4 of its own, then the other's newest 1 that fits.
    expected_starts = sorted([e.start for e in mine.events] + [theirs.events[-1].start])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        mine.merge_with(theirs)
    key = "test_merge_with_keeps_newest_events_and_sums.work"
    assert mine.call_counts == {key: 8}
    assert mine.success_counts == {key: 7}
    assert [e.start for e in mine.events] == expected_starts
    assert mine.decorator_overhead[key] == pytest.approx(mine_overhead + their_overhead)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert re.search(r"\b3\b", warnings[0])
    assert theirs.call_counts == {}
    assert theirs.success_counts == {}
    assert theirs.events == []
    assert theirs.decorator_overhead == {}
    assert theirs.get_stats()["total_calls"] == 0
    track_theirs(1)  # the other instance goes on recording on its own
    assert theirs.call_counts == {key: 1}
    assert mine.call_counts == {key: 8}


def test_merge_with_itself_does_nothing(analytics: Analytics) -> None:
    """Merging an instance with itself changes nothing."""
    feed(analytics, "f", [0.1, 0.2, 0.3], events=3)
    before = analytics.get_stats()
    analytics.merge_with(analytics)
    after = analytics.get_stats()
    assert after["total_calls"] == before["total_calls"] == 3
    assert after["event_count"] == before["event_count"] == 3
    assert after["p50"] == before["p50"]


def test_merge_with_without_drops_gives_no_warning(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """When both fit under max_events every event is kept and nothing is warned."""
    mine, theirs = Analytics(loggers=loggers), Analytics(loggers=loggers)
    feed(mine, "a", [0.1, 0.2], events=2)
    feed(theirs, "b", [0.3], events=1)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        mine.merge_with(theirs)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert len(mine.events) == 3
    assert mine.call_counts == {"a": 2, "b": 1}
    assert mine.get_stats("b")["event_count"] == 1
    assert [e.function for e in mine.events if e.function == "b"] == ["b"]


def test_merge_with_merges_sketches_exactly() -> None:
    """After a merge the percentiles equal those of one instance fed every duration."""
    first = [0.0001 * 1.01**i for i in range(700)]
    second = [0.003 * 1.003**i for i in range(500)] + [0.0001 * 1.01**i for i in range(50)]
    mine, theirs, together = Analytics(), Analytics(), Analytics()
    feed(mine, "f", first)
    feed(theirs, "f", second)
    feed(together, "f", first + second)
    mine.merge_with(theirs)
    merged, expected = mine.get_stats(), together.get_stats()
    for key in ("total_calls", "min_duration", "max_duration", "p50", "p90", "p95", "p99",
                "duration_counts"):
        assert merged[key] == expected[key], key
    assert merged["total_time"] == pytest.approx(expected["total_time"])


def test_merge_with_rejects_non_analytics(analytics: Analytics) -> None:
    """Merging something that is not an Analytics is a TypeError."""
    with pytest.raises(TypeError, match="Analytics"):
        analytics.merge_with(object())  # type: ignore[arg-type]  # the bad input under test


# ------------------------------------------------------------------ concurrency


def test_config_object_is_kept(analytics: Analytics) -> None:
    """The instance exposes its AnalyticsConfig and the seed's attributes."""
    assert isinstance(analytics.config, AnalyticsConfig)
    assert analytics.config is analytics.settings
    assert analytics.enabled is True
    assert analytics.max_events == 10_000
    assert (analytics.short_max, analytics.medium_max, analytics.long_max) == (2.0, 5.0, 10.0)
    assert analytics.time_format == "%Y-%m-%d %H:%M:%S"
    assert analytics.compact_time is False
    assert analytics.enable_gc_collect is True
    assert analytics.GC_COLLECTION_THRESHOLD == 5000
    assert re.search(r"Analytics\(#\d+", repr(analytics))


def test_config_is_the_object_the_caller_passed() -> None:
    """analytics.config is the caller's own object (seed); the validated one is settings."""

    class AnalyticsSection:
        max_events = 7

    class AppConfig:
        analytics = AnalyticsSection()
        database_url = "sqlite://"

    app = AppConfig()
    analytics = Analytics(app)
    assert analytics.config is app
    assert analytics.config.database_url == "sqlite://"
    assert isinstance(analytics.settings, AnalyticsConfig)
    assert analytics.settings.max_events == 7
    mapping = {"max_events": 3}
    assert Analytics(mapping).config is mapping


def test_notebook_display_delegates_to_the_notebook_module(analytics: Analytics) -> None:
    """_repr_html_() and report() come from the outputs' notebook module."""
    notebook = pytest.importorskip("callmetrics._outputs.notebook",
                                   reason="the notebook module is written by the report part")
    analytics.track("unit", name="f")(lambda: None)()

    def same(html: str) -> str:  # the wall time goes on between the two renderings
        return re.sub(r"wall time [^<]*<", "wall time <", html)

    assert same(analytics._repr_html_()) == same(notebook.summary_html(analytics))
    assert isinstance(analytics.report(), notebook.InlineReport)
