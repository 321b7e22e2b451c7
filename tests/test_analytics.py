"""The Analytics class: decorating every kind of callable, what is recorded, and read-back."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import inspect
import logging
import math
import re
import sys
import threading
import time
import traceback
import tracemalloc
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import callmetrics
from callmetrics import (
    Analytics,
    AnalyticsConfig,
    CallInfo,
    DurationSketch,
    Event,
    LoggerContainer,
    TimingInfo,
)
from callmetrics._recorder import BUFFER_LIMIT
from callmetrics._state import FunctionSnapshot

SEED_KEYS = ["Function", "Event Type", "Start Time", "End Time", "Duration (s)", "Success",
             "Error", "Message", "Location"]
DAY = 86_400.0
# asyncio may run a timer up to its clock resolution early; durations of tracked calls
# that await asyncio.sleep(t) are checked against t less this margin.
ASYNCIO_EARLY = 1e-3


def fetch_rows(limit: int) -> list[int]:
    """Return ``limit`` numbers (a module-level function whose key other modules may share)."""
    return list(range(limit))


def feed(analytics: Analytics, name: str, durations: list[float], *, event_type: str = "fed",
         failures: int = 0, events: int = 0) -> None:
    """Add ``durations`` as calls of ``name`` through ``restore``, the last ``events`` retained."""
    sketch = DurationSketch()
    for d in durations:
        sketch.add(d)
    short, medium = analytics.short_max, analytics.medium_max
    now = time.time()
    starts = [now - len(durations) + i for i in range(len(durations))]
    slow_i = max(range(len(durations)), key=durations.__getitem__)
    fast_i = min(range(len(durations)), key=durations.__getitem__)
    snap = FunctionSnapshot(
        name=name, event_type=event_type, module="fed", calls=len(durations),
        successes=len(durations) - failures, total=math.fsum(durations),
        fast=sum(1 for d in durations if d <= short),
        medium=sum(1 for d in durations if short < d <= medium),
        slow=sum(1 for d in durations if d > medium), overhead=0.0, sketch=sketch,
        slowest=Event(name, event_type, starts[slow_i], durations[slow_i], None),
        fastest=Event(name, event_type, starts[fast_i], durations[fast_i], None),
    )
    kept = [(starts[i], durations[i], None, name)
            for i in range(len(durations) - events, len(durations))]
    analytics.restore([snap], kept)


def exact_quantile(values: list[float], q: float) -> float:
    """Return the sample at index floor(q * (n - 1)) of the sorted values."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@pytest.fixture
def quiet() -> Iterator[LoggerContainer]:
    """Private loggers that drop everything below CRITICAL (for bulk calls that fail)."""
    made = [logging.getLogger(f"test.quiet.{role}") for role in ("console", "error", "analytics")]
    for logger in made:
        logger.setLevel(logging.CRITICAL)
    yield LoggerContainer(*made)
    for logger in made:
        logger.setLevel(logging.NOTSET)


def only_event(analytics: Analytics) -> Event:
    """Return the single retained event."""
    events = analytics.events
    assert len(events) == 1
    return events[0]


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


def test_plain_function_is_tracked(analytics: Analytics) -> None:
    """A decorated function returns its result and its call is recorded."""

    @analytics.track("unit")
    def double(x: int) -> int:
        return x * 2

    assert double(21) == 42
    assert analytics.call_counts == {"test_plain_function_is_tracked.double": 1}
    assert analytics.success_counts == {"test_plain_function_is_tracked.double": 1}
    event = only_event(analytics)
    assert event["Event Type"] == "unit"
    assert event["Success"] is True
    assert event["Error"] is None


def test_coroutine_function_is_tracked_until_it_completes(analytics: Analytics) -> None:
    """An async function is timed until its coroutine finishes, not just created."""

    @analytics.track("io")
    async def fetch(x: int) -> int:
        await asyncio.sleep(0.02)
        return x + 1

    assert asyncio.run(fetch(1)) == 2
    key = "test_coroutine_function_is_tracked_until_it_completes.fetch"
    assert analytics.call_counts == {key: 1}
    assert only_event(analytics).duration >= 0.02 - ASYNCIO_EARLY


def test_generator_is_timed_from_first_step_to_exhaustion(analytics: Analytics) -> None:
    """A generator's call runs from the first next() to exhaustion, not from its creation."""

    @analytics.track("gen")
    def lines(n: int) -> Iterator[int]:
        for i in range(n):
            time.sleep(0.01)
            yield i

    gen = lines(3)
    time.sleep(0.05)  # would be counted if timing began at creation
    began = time.perf_counter()
    assert list(gen) == [0, 1, 2]
    elapsed = time.perf_counter() - began
    duration = only_event(analytics).duration
    assert 0.03 <= duration <= elapsed
    key = "test_generator_is_timed_from_first_step_to_exhaustion.lines"
    assert analytics.success_counts == {key: 1}


def test_generator_passes_send_and_return_value_through(analytics: Analytics) -> None:
    """send() reaches the generator and its return value reaches `yield from` callers."""

    @analytics.track("gen")
    def echo() -> Generator[int, int | None, str]:
        total = 0
        while True:
            got = yield total
            if got is None:
                return f"total {total}"
            total += got

    def consumer() -> Generator[int | str, int | None, None]:
        result = yield from echo()
        yield result

    gen = echo()
    assert next(gen) == 0
    assert gen.send(5) == 5
    assert gen.send(2) == 7
    with pytest.raises(StopIteration) as stop:
        gen.send(None)
    assert stop.value.value == "total 7"
    assert list(consumer()) == [0, "total 0"]
    assert analytics.call_counts == {"test_generator_passes_send_and_return_value_through.echo": 2}


def test_generator_closed_early_is_a_success(analytics: Analytics) -> None:
    """A consumer that stops early records one successful call."""

    @analytics.track("gen")
    def numbers() -> Generator[int, None, None]:
        yield from range(100)

    gen = numbers()
    assert next(gen) == 0
    gen.close()
    for value in numbers():
        if value == 3:
            break
    key = "test_generator_closed_early_is_a_success.numbers"
    assert analytics.call_counts == {key: 2}
    assert analytics.success_counts == {key: 2}


def test_generator_never_started_records_nothing(analytics: Analytics) -> None:
    """A generator created but never stepped (dropped or closed) records no call."""

    @analytics.track("gen")
    def numbers() -> Generator[int, None, None]:
        yield 1

    dropped = numbers()
    del dropped
    closed = numbers()
    closed.close()
    assert analytics.call_counts == {}
    assert analytics.events == []


def test_generator_raising_is_a_failure(analytics: Analytics) -> None:
    """An exception raised inside a generator propagates and records a failure."""

    @analytics.track("gen")
    def broken() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    gen = broken()
    assert next(gen) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(gen)
    event = only_event(analytics)
    assert event["Success"] is False
    assert event["Error"] == "OSError"


def test_generator_throw_is_passed_on(analytics: Analytics) -> None:
    """throw() reaches the generator: handled it goes on, unhandled it is a failure."""

    @analytics.track("gen")
    def tolerant() -> Generator[int, None, None]:
        try:
            yield 1
        except ValueError:
            yield 99

    @analytics.track("gen")
    def fragile() -> Generator[int, None, None]:
        yield 1

    gen = tolerant()
    next(gen)
    assert gen.throw(ValueError("handled")) == 99
    gen.close()
    other = fragile()
    next(other)
    with pytest.raises(ValueError, match="unhandled"):
        other.throw(ValueError("unhandled"))
    prefix = "test_generator_throw_is_passed_on."
    assert analytics.success_counts == {prefix + "tolerant": 1, prefix + "fragile": 0}


def test_async_generator_is_timed_from_first_step_to_exhaustion(analytics: Analytics) -> None:
    """An async generator's call runs from the first step to exhaustion."""

    @analytics.track("agen")
    async def ticks(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0.01)
            yield i

    async def main() -> tuple[list[int], float]:
        agen = ticks(3)
        await asyncio.sleep(0.05)  # would be counted if timing began at creation
        began = time.perf_counter()
        got = [i async for i in agen]
        return got, time.perf_counter() - began

    got, elapsed = asyncio.run(main())
    assert got == [0, 1, 2]
    duration = only_event(analytics).duration
    assert 0.03 - ASYNCIO_EARLY <= duration <= elapsed
    assert inspect.isasyncgenfunction(ticks)


def test_async_generator_asend_passes_through(analytics: Analytics) -> None:
    """asend() values reach the async generator."""

    @analytics.track("agen")
    async def accumulate() -> Any:
        total = 0
        while True:
            got = yield total
            total += got

    async def main() -> list[int]:
        agen = accumulate()
        out = [await agen.__anext__(), await agen.asend(3), await agen.asend(4)]
        await agen.aclose()
        return out

    assert asyncio.run(main()) == [0, 3, 7]
    assert analytics.success_counts == {"test_async_generator_asend_passes_through.accumulate": 1}


def test_async_generator_early_close_and_never_started(analytics: Analytics) -> None:
    """An early aclose() is a success; an async generator never stepped records nothing."""

    @analytics.track("agen")
    async def ticks() -> AsyncGenerator[int, None]:
        for i in range(100):
            yield i

    async def main() -> None:
        async with contextlib.aclosing(ticks()) as agen:
            async for value in agen:
                if value == 2:
                    break
        untouched = ticks()
        await untouched.aclose()

    asyncio.run(main())
    key = "test_async_generator_early_close_and_never_started.ticks"
    assert analytics.call_counts == {key: 1}
    assert analytics.success_counts == {key: 1}


def test_async_generator_raising_is_a_failure(analytics: Analytics) -> None:
    """An exception inside an async generator propagates and records a failure."""

    @analytics.track("agen")
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise LookupError("gone")

    async def main() -> None:
        async for _ in broken():
            pass

    with pytest.raises(LookupError, match="gone"):
        asyncio.run(main())
    assert only_event(analytics)["Error"] == "LookupError"


def make_client_class(analytics: Analytics) -> type[Any]:
    """Build a class with methods, classmethods and staticmethods tracked under and over."""

    class Service:
        factor = 3

        def __init__(self) -> None:
            self.base = 10

        @analytics.track("method")
        def fetch(self, x: int) -> int:
            """Fetch a value."""
            return self.base + x

        @analytics.track("classmethod-over")
        @classmethod
        def over_cls(cls, x: int) -> int:
            return cls.factor * x

        @classmethod
        @analytics.track("classmethod-under")
        def under_cls(cls, x: int) -> int:
            return cls.factor * x

        @analytics.track("staticmethod-over")
        @staticmethod
        def over_static(x: int) -> int:
            return x - 1

        @staticmethod
        @analytics.track("staticmethod-under")
        def under_static(x: int) -> int:
            return x - 2

    return Service


def test_methods_classmethods_and_staticmethods_are_tracked(analytics: Analytics) -> None:
    """Methods, classmethods and staticmethods work with the decorator under or over them."""
    service_class = make_client_class(analytics)
    service = service_class()
    assert service.fetch(1) == 11
    assert service_class.over_cls(2) == 6
    assert service.over_cls(2) == 6
    assert service_class.under_cls(2) == 6
    assert service_class.over_static(5) == 4
    assert service.over_static(5) == 4
    assert service_class.under_static(5) == 3
    assert analytics.call_counts == {
        "make_client_class.Service.fetch": 1,
        "make_client_class.Service.over_cls": 2,
        "make_client_class.Service.under_cls": 1,
        "make_client_class.Service.over_static": 2,
        "make_client_class.Service.under_static": 1,
    }
    types = {e.function: e.event_type for e in analytics.events}
    assert types["make_client_class.Service.over_cls"] == "classmethod-over"
    assert types["make_client_class.Service.under_static"] == "staticmethod-under"


def test_async_method_is_tracked(analytics: Analytics) -> None:
    """An async method is tracked and keyed Class.method."""

    class Api:
        @analytics.track("API")
        async def get(self, x: int) -> int:
            await asyncio.sleep(0)
            return x

    assert asyncio.run(Api().get(4)) == 4
    assert analytics.call_counts == {"test_async_method_is_tracked.Api.get": 1}


def test_partial_is_tracked_under_its_function_name(analytics: Analytics) -> None:
    """A functools.partial is recorded under its underlying function's name."""
    tracked = analytics.track("partial")(functools.partial(fetch_rows, 3))
    assert tracked() == [0, 1, 2]
    assert analytics.call_counts == {"fetch_rows": 1}


def test_async_partial_is_awaited(analytics: Analytics) -> None:
    """A partial of a coroutine function is tracked until the coroutine completes."""

    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0.01)
        return a + b

    tracked = analytics.track("partial")(functools.partial(add, 1))
    assert inspect.iscoroutinefunction(tracked)
    assert asyncio.run(tracked(2)) == 3
    assert only_event(analytics).duration >= 0.01 - ASYNCIO_EARLY


def test_callable_object_is_tracked(analytics: Analytics) -> None:
    """An object with __call__ (no __name__) is tracked under its class's name."""

    class Multiplier:
        def __init__(self, k: int) -> None:
            self.k = k

        def __call__(self, x: int) -> int:
            return self.k * x

    tracked = analytics.track("object")(Multiplier(4))
    assert tracked(2) == 8
    assert analytics.call_counts == {"test_callable_object_is_tracked.Multiplier": 1}
    assert isinstance(tracked.__name__, str)


# ------------------------------------------------------------ wrapper metadata


def _sample_sync(a: int, /, b: str = "x", *args: float, c: bool = False, **kw: Any) -> str:
    """Sample sync docstring."""
    return f"{a}{b}{args}{c}{kw}"


async def _sample_async(a: int, *, b: int = 2) -> int:
    """Sample async docstring."""
    return a + b


def _sample_gen(n: int) -> Iterator[int]:
    """Sample generator docstring."""
    yield from range(n)


async def _sample_agen(n: int) -> AsyncIterator[int]:
    """Sample async generator docstring."""
    for i in range(n):
        yield i


@pytest.mark.parametrize("original", [_sample_sync, _sample_async, _sample_gen, _sample_agen],
                         ids=["sync", "async", "gen", "agen"])
def test_wrapper_keeps_metadata_and_signature(
    analytics: Analytics, original: Callable[..., Any]
) -> None:
    """The wrapper keeps name, qualname, doc, __wrapped__, signature and inspect's kind."""
    wrapped = analytics.track("meta")(original)
    assert wrapped.__name__ == original.__name__
    assert wrapped.__qualname__ == original.__qualname__
    assert wrapped.__doc__ == original.__doc__
    assert wrapped.__wrapped__ is original  # type: ignore[attr-defined]  # set by functools.wraps
    assert inspect.signature(wrapped) == inspect.signature(original)
    for predicate in (inspect.iscoroutinefunction, inspect.isgeneratorfunction,
                      inspect.isasyncgenfunction):
        assert predicate(wrapped) == predicate(original)


def test_method_wrapper_keeps_metadata(analytics: Analytics) -> None:
    """A tracked method keeps its qualname, doc and signature (self included)."""
    service_class = make_client_class(analytics)
    fetch = service_class.__dict__["fetch"]
    assert fetch.__qualname__ == "make_client_class.<locals>.Service.fetch"
    assert fetch.__doc__ == "Fetch a value."
    assert list(inspect.signature(fetch).parameters) == ["self", "x"]
    assert list(inspect.signature(service_class().fetch).parameters) == ["x"]


# ------------------------------------------------------------------------- keys


def make_handler(analytics: Analytics) -> Callable[[], int]:
    """Return a tracked closure, whose qualname has a <locals> part."""

    @analytics.track("handler")
    def handler() -> int:
        return 1

    return handler


def test_key_drops_locals_parts(analytics: Analytics) -> None:
    """A nested function is keyed by its qualname without the <locals> parts."""
    handler = make_handler(analytics)
    assert handler.__qualname__ == "make_handler.<locals>.handler"
    handler()
    assert analytics.call_counts == {"make_handler.handler": 1}


def test_name_overrides_key(analytics: Analytics) -> None:
    """name= chooses the recorded key."""

    @analytics.track("db", name="orders.load")
    def load() -> int:
        return 1

    load()
    assert analytics.call_counts == {"orders.load": 1}
    assert load.__name__ == "load"


def test_same_key_in_another_module_is_kept_apart(
    analytics: Analytics, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two functions sharing a key in different modules are recorded apart, with a warning."""
    source = tmp_path / "other_rows_module.py"
    source.write_text("def fetch_rows(limit):\n    return ['other'] * limit\n")
    spec = importlib.util.spec_from_file_location("other_rows_module", source)
    assert spec is not None
    assert spec.loader is not None
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)

    ours = analytics.track("rows")(fetch_rows)
    with caplog.at_level(logging.WARNING):
        theirs = analytics.track("rows")(other.fetch_rows)
    assert ours(2) == [0, 1]
    assert theirs(1) == ["other"]
    assert theirs(1) == ["other"]
    assert analytics.call_counts == {"fetch_rows": 1, "other_rows_module.fetch_rows": 2}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("other_rows_module.fetch_rows" in r.getMessage() for r in warnings)


def test_same_function_decorated_twice_shares_its_key(analytics: Analytics) -> None:
    """Decorating the same function again records into the same key (no warning needed)."""
    first = analytics.track("rows")(fetch_rows)
    second = analytics.track("rows")(fetch_rows)
    first(1)
    second(1)
    assert analytics.call_counts == {"fetch_rows": 2}


@pytest.mark.parametrize(
    ("event_type", "name", "error"),
    [("", None, ValueError), ("  ", None, ValueError), (3, None, TypeError),
     (None, None, TypeError), ("ok", "", ValueError), ("ok", 5, TypeError)],
)
def test_track_rejects_bad_arguments(
    analytics: Analytics, event_type: Any, name: Any, error: type[Exception]
) -> None:
    """track() fails at once, naming the field, for a bad event_type or name."""
    field = "event_type" if name is None else "name"
    with pytest.raises(error, match=field):
        analytics.track(event_type, name=name)


def test_track_rejects_non_callable(analytics: Analytics) -> None:
    """Decorating something that is not callable is a TypeError."""
    with pytest.raises(TypeError, match="callable"):
        analytics.track("x")(42)  # type: ignore[arg-type]  # the bad input under test


# ------------------------------------------------------------------ exceptions


def test_exception_propagates_unchanged_and_counts_as_failure(analytics: Analytics) -> None:
    """The same exception object propagates with its traceback; the call is a failure."""
    error = ValueError("bad input")

    @analytics.track("unit")
    def explode() -> None:
        raise error

    with pytest.raises(ValueError, match="bad input") as info:
        explode()
    assert info.value is error
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "explode"
    key = "test_exception_propagates_unchanged_and_counts_as_failure.explode"
    assert analytics.call_counts == {key: 1}
    assert analytics.success_counts == {key: 0}
    event = only_event(analytics)
    assert event["Success"] is False
    assert event["Error"] == "ValueError"
    assert event.error == "ValueError"


def test_async_exception_propagates_and_counts(analytics: Analytics) -> None:
    """An async function's exception propagates as the same object and is a failure."""
    error = KeyError("k")

    @analytics.track("io")
    async def explode() -> None:
        await asyncio.sleep(0)
        raise error

    with pytest.raises(KeyError) as info:
        asyncio.run(explode())
    assert info.value is error
    assert only_event(analytics)["Error"] == "KeyError"


def test_cancellation_is_a_failure_and_propagates(analytics: Analytics) -> None:
    """A cancelled tracked coroutine records a CancelledError failure and stays cancelled."""

    @analytics.track("io")
    async def wait_forever() -> None:
        await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.create_task(wait_forever())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(main())
    key = "test_cancellation_is_a_failure_and_propagates.wait_forever"
    assert analytics.call_counts == {key: 1}
    assert analytics.success_counts == {key: 0}
    assert only_event(analytics)["Error"] == "CancelledError"


def test_keyboard_interrupt_is_a_failure_and_propagates(analytics: Analytics) -> None:
    """KeyboardInterrupt raised in a tracked function propagates and is a failure."""

    @analytics.track("unit")
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert only_event(analytics)["Error"] == "KeyboardInterrupt"
    assert analytics.get_stats()["total_success"] == 0


def test_sync_function_inside_running_loop_is_tracked(analytics: Analytics) -> None:
    """A sync tracked function called from a coroutine under a running loop is tracked."""

    @analytics.track("cpu")
    def compute(x: int) -> int:
        return x * x

    async def main() -> int:
        return compute(3) + compute(4)

    assert asyncio.run(main()) == 25
    assert analytics.call_counts == {"test_sync_function_inside_running_loop_is_tracked.compute": 2}


# ------------------------------------------------------- execute_*_wrapped_call


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


def test_measure_block(analytics: Analytics) -> None:
    """A `with measure(...)` block is recorded like a call of that name and event type."""
    with analytics.measure("load config", event_type="IO"):
        time.sleep(0.01)
    event = only_event(analytics)
    assert (event["Function"], event["Event Type"], event["Success"]) == ("load config", "IO",
                                                                         True)
    assert event.duration >= 0.01
    with analytics.measure("load config", event_type="IO"):
        pass
    assert analytics.call_counts == {"load config": 2}


def test_measure_block_failure_propagates(analytics: Analytics) -> None:
    """An exception leaving a measured block propagates and records a failure."""
    error = OSError("missing")
    with pytest.raises(OSError, match="missing") as info, analytics.measure("read"):
        raise error
    assert info.value is error
    event = only_event(analytics)
    assert (event["Event Type"], event["Error"]) == ("block", "OSError")


def test_measure_async_block(analytics: Analytics) -> None:
    """`async with measure(...)` records the block; a failure propagates."""

    async def main() -> None:
        async with analytics.measure("fetch all", event_type="API"):
            await asyncio.sleep(0.01)
        with pytest.raises(TimeoutError):
            async with analytics.measure("fetch all", event_type="API"):
                raise TimeoutError

    asyncio.run(main())
    assert analytics.call_counts == {"fetch all": 2}
    assert analytics.success_counts == {"fetch all": 1}
    assert [e["Error"] for e in analytics.events] == [None, "TimeoutError"]


def test_measure_rejects_bad_names(analytics: Analytics) -> None:
    """measure() fails at once for an empty name or event type, naming the field."""
    with pytest.raises(ValueError, match="name"):
        analytics.measure("")
    with pytest.raises(ValueError, match="event_type"):
        analytics.measure("ok", event_type="")
    with pytest.raises(TypeError, match="name"):
        analytics.measure(None)  # type: ignore[arg-type]  # the bad input under test


# ---------------------------------------------------------------------- disabled


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


def test_events_have_seed_keys_and_values(analytics: Analytics) -> None:
    """Each event is a mapping with the seed's keys plus Error, holding the call's facts."""

    @analytics.track("unit")
    def work() -> None:
        time.sleep(0.01)

    before, began = time.time(), time.perf_counter()
    work()
    elapsed, after = time.perf_counter() - began, time.time()
    event = only_event(analytics)
    assert list(event) == SEED_KEYS
    assert len(event) == len(SEED_KEYS)
    assert event["Function"] == "test_events_have_seed_keys_and_values.work"
    assert event["Event Type"] == "unit"
    assert isinstance(event["Duration (s)"], float)
    assert 0.01 <= event["Duration (s)"] <= elapsed
    assert before - 0.5 <= event.start <= after + 0.5
    assert event.end == pytest.approx(event.start + event.duration)
    assert event["Success"] is True
    assert event["Error"] is None
    assert event["Start Time"] == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.start))
    assert event["End Time"] == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.end))
    with pytest.raises(KeyError):
        event["Nope"]


@pytest.fixture
def half_hour_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with local time at UTC+05:30, so local and UTC times differ."""
    monkeypatch.setenv("TZ", "IST-05:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("half_hour_zone")
def test_event_times_use_time_format_in_local_time() -> None:
    """Start/End Time are formatted with time_format in local time."""
    analytics = Analytics({"time_format": "%d/%m/%Y %H.%M.%S"})
    feed(analytics, "f", [0.5], events=1)
    start = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    analytics.restore([], [(start, 0.5, None, "f")])
    event = analytics.events[0]
    assert event.start == start
    assert event["Start Time"] == "15/11/2023 03.43.20"
    assert event["End Time"] == "15/11/2023 03.43.20"


@pytest.mark.usefixtures("half_hour_zone")
def test_compact_time_formats_hours_minutes_seconds() -> None:
    """With compact_time, Start/End Time read as %H:%M:%S in local time."""
    analytics = Analytics({"compact_time": True, "time_format": "%Y"})
    analytics.restore([], [(1_700_000_000.0, 2.0, None, "f")])
    event = analytics.events[0]
    assert event["Start Time"] == "03:43:20"
    assert event["End Time"] == "03:43:22"


def test_events_ring_keeps_newest(loggers: LoggerContainer) -> None:
    """At most max_events events are kept, the newest, oldest first."""
    analytics = Analytics(loggers=loggers, max_events=5)

    @analytics.track("unit")
    def step(i: int) -> int:
        return i

    for i in range(23):
        step(i)
    events = analytics.events
    assert len(events) == 5
    starts = [e.start for e in events]
    assert starts == sorted(starts)
    assert analytics.call_counts == {"test_events_ring_keeps_newest.step": 23}


def test_events_ring_keeps_newest_across_functions() -> None:
    """The retained events are the newest max_events calls over all functions together."""
    analytics = Analytics(max_events=10)

    @analytics.track("unit")
    def ping() -> None:
        pass

    @analytics.track("unit")
    def pong() -> None:
        pass

    for _ in range(10):
        ping()
        pong()
    names = [e.function.rsplit(".", 1)[-1] for e in analytics.events]
    assert names == ["ping", "pong"] * 5


def test_events_ring_newest_kept_after_buffer_drain() -> None:
    """After thousands of calls (several bulk drains) the very last call is retained."""
    analytics = Analytics(max_events=3)

    @analytics.track("unit")
    def step(i: int) -> int:
        return i

    @analytics.track("unit")
    def last() -> None:
        pass

    for i in range(9000):
        step(i)
    last()
    events = analytics.events
    assert len(events) == 3
    assert events[-1].function.endswith("last")
    assert analytics.call_counts["test_events_ring_newest_kept_after_buffer_drain.step"] == 9000


def test_max_events_zero_keeps_everything() -> None:
    """max_events=0 means no cap."""
    analytics = Analytics(max_events=0)

    @analytics.track("unit")
    def step() -> None:
        pass

    for _ in range(12_000):
        step()
    assert len(analytics.events) == 12_000


def test_failures_drain_in_bulk_without_a_read(quiet: LoggerContainer) -> None:
    """Failing calls share the bounded buffer with successes, so memory stays bounded."""
    analytics = Analytics(loggers=quiet, max_events=10)

    @analytics.track("unit")
    def explode() -> None:
        raise ValueError

    for _ in range(3 * 4096):
        with contextlib.suppress(ValueError):
            explode()
    # White-box: without any read-back call, the buffer never held more than one chunk.
    assert len(analytics.buffer) <= 3 * BUFFER_LIMIT
    assert analytics.call_counts == {"test_failures_drain_in_bulk_without_a_read.explode": 3 * 4096}


def test_memory_stays_bounded(quiet: LoggerContainer) -> None:
    """100,000 more calls (some failing) with max_events=1000 grow the heap by under 2 MB."""
    analytics = Analytics(loggers=quiet, max_events=1000)

    @analytics.track("unit")
    def ok(i: int) -> int:
        return i

    @analytics.track("unit")
    def bad(i: int) -> None:
        raise ValueError(i)

    def run(calls: int) -> None:
        for i in range(calls):
            ok(i)
            if i % 10 == 0:
                with contextlib.suppress(ValueError):
                    bad(i)

    run(20_000)  # fill the ring, the sketch's buckets and the buffers first
    analytics.get_stats()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(100_000)
        analytics.get_stats()
        grown, peak = (size - before for size in tracemalloc.get_traced_memory())
    finally:
        tracemalloc.stop()
    # Keeping every call would take about 7 MB here (two floats and a list slot each).
    assert grown < 2_000_000
    assert peak < 3_000_000
    assert analytics.call_counts == {"test_memory_stays_bounded.ok": 120_000,
                                     "test_memory_stays_bounded.bad": 12_000}


def test_counts_are_exact_beyond_the_cap(quiet: LoggerContainer) -> None:
    """call_counts and success_counts count every call, not just the retained ones."""
    analytics = Analytics(loggers=quiet, max_events=7)

    @analytics.track("unit")
    def maybe(i: int) -> int:
        if i % 3 == 0:
            raise ValueError(i)
        return i

    for i in range(10_000):
        with contextlib.suppress(ValueError):
            maybe(i)
    key = "test_counts_are_exact_beyond_the_cap.maybe"
    assert analytics.call_counts == {key: 10_000}
    assert analytics.success_counts == {key: 10_000 - 3334}
    assert len(analytics.events) == 7
    stats = analytics.get_stats()
    assert stats["total_calls"] == 10_000
    assert stats["event_count"] == 7


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


STAT_KEYS = {"total_calls", "total_success", "success_rate", "total_time", "avg_duration",
             "slowest", "fastest", "duration_counts", "function_count", "event_count",
             "min_duration", "max_duration", "p50", "p90", "p95", "p99"}


def test_get_stats_empty(analytics: Analytics) -> None:
    """With no calls, get_stats gives zeros and None for slowest, fastest and percentiles."""
    stats = analytics.get_stats()
    assert set(stats) == STAT_KEYS
    assert stats["total_calls"] == stats["total_success"] == 0
    assert stats["success_rate"] == stats["total_time"] == stats["avg_duration"] == 0
    assert stats["duration_counts"] == {"fast": 0, "medium": 0, "slow": 0}
    assert stats["function_count"] == stats["event_count"] == 0
    assert stats["min_duration"] == stats["max_duration"] == 0
    for key in ("slowest", "fastest", "p50", "p90", "p95", "p99"):
        assert stats[key] is None


def test_get_stats_covers_every_call_not_just_retained() -> None:
    """Totals, averages, extremes and percentiles cover all calls, not the kept events."""
    analytics = Analytics(config={"duration_thresholds": {"short_max": 0.1, "medium_max": 0.5,
                                                          "long_max": 1.0}})
    durations = [0.001 * (i + 1) for i in range(1000)]  # 1 ms .. 1 s
    feed(analytics, "load", durations, failures=100, events=3)
    stats = analytics.get_stats()
    assert set(stats) == STAT_KEYS
    assert stats["total_calls"] == 1000
    assert stats["total_success"] == 900
    assert stats["success_rate"] == pytest.approx(90.0)
    assert stats["total_time"] == pytest.approx(math.fsum(durations))
    assert stats["avg_duration"] == pytest.approx(math.fsum(durations) / 1000)
    assert stats["duration_counts"] == {"fast": 100, "medium": 400, "slow": 500}
    assert stats["function_count"] == 1
    assert stats["event_count"] == 3
    assert stats["min_duration"] == pytest.approx(0.001)
    assert stats["max_duration"] == pytest.approx(1.0)
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        assert stats[key] == pytest.approx(exact_quantile(durations, q), rel=0.01)
    assert isinstance(stats["slowest"], Event)
    assert stats["slowest"].duration == pytest.approx(1.0)
    assert stats["fastest"].duration == pytest.approx(0.001)


def test_get_stats_slowest_is_kept_after_ring_drops_it() -> None:
    """The slowest call ever seen is reported even after its event left the ring."""
    analytics = Analytics(max_events=2)

    @analytics.track("unit")
    def nap(seconds: float) -> None:
        if seconds:
            time.sleep(seconds)

    nap(0.1)
    for _ in range(10):
        nap(0)
    stats = analytics.get_stats()
    slowest = stats["slowest"]
    assert slowest is not None
    assert slowest.duration >= 0.1
    assert slowest.duration == stats["max_duration"]
    assert all(e.duration < slowest.duration for e in analytics.events)
    assert stats["fastest"].duration == stats["min_duration"]


def test_duration_counts_follow_thresholds() -> None:
    """fast/medium/slow count each call by short_max and medium_max."""
    analytics = Analytics(
        config={"duration_thresholds": {"short_max": 0.005, "medium_max": 0.02,
                                         "long_max": 1.0}},
        max_events=0,
    )

    @analytics.track("unit")
    def nap(seconds: float) -> None:
        time.sleep(seconds)

    for seconds in (0, 0, 0.01, 0.03, 0.03):
        nap(seconds)
    durations = [e.duration for e in analytics.events]
    expected = {
        "fast": sum(1 for d in durations if d <= 0.005),
        "medium": sum(1 for d in durations if 0.005 < d <= 0.02),
        "slow": sum(1 for d in durations if d > 0.02),
    }
    counts = analytics.get_stats()["duration_counts"]
    assert counts == expected
    assert counts["slow"] >= 2  # a 30 ms sleep is never faster than 20 ms


def test_get_stats_filters(analytics: Analytics) -> None:
    """A name, a list of names, or an unknown name select the functions counted."""
    feed(analytics, "a", [0.1, 0.2], events=2)
    feed(analytics, "b", [0.3], events=1)
    feed(analytics, "c", [0.4, 0.5, 0.6], events=1)
    one = analytics.get_stats("a")
    assert (one["total_calls"], one["function_count"], one["event_count"]) == (2, 1, 2)
    assert one["total_time"] == pytest.approx(0.3)
    two = analytics.get_stats(["b", "c"])
    assert (two["total_calls"], two["function_count"], two["event_count"]) == (4, 2, 2)
    assert two["max_duration"] == pytest.approx(0.6)
    assert analytics.get_stats(["a", "nope"])["total_calls"] == 2
    unknown = analytics.get_stats("nope")
    assert unknown["total_calls"] == unknown["function_count"] == unknown["event_count"] == 0
    assert unknown["p50"] is None
    assert unknown["slowest"] is None
    # A falsy filter means every function, as in the seed.
    assert analytics.get_stats([])["total_calls"] == 6
    assert analytics.get_stats("")["total_calls"] == 6
    assert analytics.get_stats()["total_calls"] == 6


@pytest.mark.parametrize("bad", [3, 1.5, [1, 2], object()])
def test_get_stats_bad_filter_type(analytics: Analytics, bad: Any) -> None:
    """A filter that is neither a name nor names is a TypeError."""
    with pytest.raises(TypeError, match="function_filter"):
        analytics.get_stats(bad)


# ------------------------------------------------------------------- log_summary


def test_log_summary_lines(loggers: LoggerContainer, caplog: pytest.LogCaptureFixture) -> None:
    """log_summary writes the seed's two INFO lines on the console logger."""
    analytics = Analytics(loggers=loggers)
    feed(analytics, "f", [0.1, 0.2, 3.0, 6.0], failures=1)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        analytics.log_summary()
    lines = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert lines == [
        (loggers.console.name, logging.INFO,
         "Analytics Summary: 4 calls | 75.0% success | avg 2.33 s"),
        (loggers.console.name, logging.INFO, "Performance: fast 50% | medium 25% | slow 25%"),
    ]


def test_log_summary_disabled_logs_nothing(loggers: LoggerContainer,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """A disabled instance's log_summary writes nothing."""
    analytics = Analytics({"enabled": False}, loggers)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        analytics.log_summary()
    assert caplog.records == []


# -------------------------------------------------------------- clear_old_events


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
    """Merging keeps the newest max_events of both in time order and sums the counts."""
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
    expected_starts = sorted(e.start for e in mine.events + theirs.events)[-5:]
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


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Make threads switch as often as possible, restoring the interval afterwards."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("tiny_switch_interval")
@pytest.mark.parametrize("level", [logging.CRITICAL, logging.INFO], ids=["quiet", "info"])
def test_counts_are_exact_under_threads(quiet: LoggerContainer, level: int) -> None:
    """8 threads calling tracked functions at once give exact counts and successes."""
    quiet.analytics.setLevel(level)  # INFO takes the wrappers' logging path on every call
    analytics = Analytics(loggers=quiet, max_events=100)
    calls = 20_000

    @analytics.track("unit")
    def work(i: int) -> int:
        if i % 10 == 0:
            raise ValueError(i)
        return i

    @analytics.track("unit")
    def other() -> None:
        pass

    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        for i in range(calls):
            with contextlib.suppress(ValueError):
                work(i)
            other()
            if i % 1000 == 0:
                analytics.get_stats()  # reads race with the writers too

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    prefix = "test_counts_are_exact_under_threads."
    assert analytics.call_counts == {prefix + "work": 8 * calls, prefix + "other": 8 * calls}
    assert analytics.success_counts == {prefix + "work": 8 * calls * 9 // 10,
                                        prefix + "other": 8 * calls}
    stats = analytics.get_stats()
    assert stats["total_calls"] == 16 * calls
    assert sum(stats["duration_counts"].values()) == 16 * calls
    assert len(analytics.events) == 100


def test_concurrent_tasks_are_counted(quiet: LoggerContainer) -> None:
    """Many asyncio tasks awaiting the same tracked coroutine are all counted."""
    analytics = Analytics(loggers=quiet)

    @analytics.track("io")
    async def fetch(i: int) -> int:
        await asyncio.sleep(0)
        if i % 4 == 0:
            raise ConnectionError
        return i

    async def main() -> None:
        await asyncio.gather(*(fetch(i) for i in range(200)), return_exceptions=True)

    asyncio.run(main())
    key = "test_concurrent_tasks_are_counted.fetch"
    assert analytics.call_counts == {key: 200}
    assert analytics.success_counts == {key: 150}


def test_config_object_is_kept(analytics: Analytics) -> None:
    """The instance exposes its AnalyticsConfig and the seed's attributes."""
    assert isinstance(analytics.config, AnalyticsConfig)
    assert analytics.enabled is True
    assert analytics.max_events == 10_000
    assert (analytics.short_max, analytics.medium_max, analytics.long_max) == (2.0, 5.0, 10.0)
    assert analytics.time_format == "%Y-%m-%d %H:%M:%S"
    assert analytics.compact_time is False
    assert analytics.enable_gc_collect is True
    assert analytics.GC_COLLECTION_THRESHOLD == 5000
    assert re.search(r"Analytics\(#\d+", repr(analytics))
