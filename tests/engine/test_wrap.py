"""The wrappers: every kind of callable, names, binding, exceptions."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import inspect
import logging
import time
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from callmetrics import (
    Analytics,
    LoggerContainer,
)
from core_helpers import only_event

# asyncio may run a timer up to its clock resolution early; durations of tracked calls
# that await asyncio.sleep(t) are checked against t less this margin.
ASYNCIO_EARLY = 1e-3





def fetch_rows(limit: int) -> list[int]:
    """Return ``limit`` numbers (a module-level function whose key other modules may share)."""
    return list(range(limit))


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


# -------------------------------------------------------------- binding (issue 8)


class Doubler:
    """A callable object."""

    def __call__(self, x: int) -> int:
        """Return twice ``x``."""
        return 2 * x


def test_tracked_callables_bind_as_the_originals_do(analytics: Analytics) -> None:
    """A tracked partial, builtin, callable object or bound method on a class never gets self."""

    def add(a: int, b: int) -> int:
        return a + b

    class Helper:
        def triple(self, x: int) -> int:
            return 3 * x

    helper = Helper()

    class Holder:
        # Any: mypy would take each for a function and bind it (what this test refutes).
        partial: Any = analytics.track("unit", name="partial")(functools.partial(add, 1))
        length: Any = analytics.track("unit", name="len")(len)
        doubler: Any = analytics.track("unit", name="doubler")(Doubler())
        bound: Any = analytics.track("unit", name="bound")(helper.triple)

        @analytics.track("unit", name="method")
        def method(self, x: int) -> int:
            return x

    holder = Holder()
    assert holder.partial(2) == 3
    assert Holder.partial(2) == 3
    assert holder.length([1, 2, 3]) == 3
    assert holder.doubler(4) == 8
    assert holder.bound(5) == 15
    assert holder.method(6) == 6  # a plain function still becomes a method
    assert analytics.call_counts == {"partial": 2, "len": 1, "doubler": 1, "bound": 1,
                                     "method": 1}


def test_tracked_partial_keeps_its_signature_and_name(analytics: Analytics) -> None:
    """The non-binding wrapper is still introspectable like the original."""

    def add(a: int, b: int) -> int:
        return a + b

    tracked = analytics.track("unit")(functools.partial(add, 1))
    assert tracked(1) == 2
    assert list(inspect.signature(tracked).parameters) == ["b"]


def test_decorating_a_wrapper_again_warns_and_returns_it(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """Decorating this instance's wrapper again returns it: each call counts once."""
    analytics = Analytics(loggers=loggers)

    @analytics.track("unit", name="twice")
    def work() -> int:
        return 1

    with caplog.at_level(logging.WARNING):
        again = analytics.track("unit", name="twice")(work)
        other_name = analytics.track("unit", name="other")(work)
    assert again is work
    assert other_name is work
    assert sum("already tracked by this instance" in r.getMessage()
               for r in caplog.records) == 2
    work()
    assert analytics.call_counts == {"twice": 1}
    # Another instance may track it too: it is its own wrapper around the first.
    second = Analytics()
    both = second.track("unit", name="outer")(work)
    assert both is not work
    both()
    assert analytics.call_counts == {"twice": 2}
    assert second.call_counts == {"outer": 1}


# ------------------------------------------------- what counts as a failure (issue 12)


@pytest.mark.parametrize("code", [0, None])
def test_system_exit_with_success_code_is_a_success(analytics: Analytics,
                                                     code: int | None) -> None:
    """SystemExit(0) and SystemExit(None) end a call normally: propagated, counted as success."""

    @analytics.track("unit", name="main")
    def main() -> None:
        raise SystemExit(code)

    with pytest.raises(SystemExit):
        main()
    assert analytics.success_counts == {"main": 1}
    assert only_event(analytics)["Error"] is None


@pytest.mark.parametrize("code", [1, 2, "fatal"])
def test_system_exit_with_error_code_is_a_failure(analytics: Analytics, code: object) -> None:
    """SystemExit with any other code is a failure."""

    @analytics.track("unit", name="main")
    def main() -> None:
        raise SystemExit(code)

    with pytest.raises(SystemExit):
        main()
    assert analytics.success_counts == {"main": 0}
    assert only_event(analytics)["Error"] == "SystemExit"
