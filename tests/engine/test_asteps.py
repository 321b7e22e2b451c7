"""Async generators through the step proxy: active time, callers, protocol, finalization.

Every test runs on both hot paths: the C proxy (``AsyncGenSteps``, when the
accelerator is built) and the pure-Python twin (``asteps.AsyncGeneratorSteps``),
which the ``step_path`` fixture (conftest) selects.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import pickle
import sys
import traceback
import types
from collections import abc
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from callmetrics import Analytics
from core_helpers import callers_by_name as callers
from core_helpers import snapshots as snaps


def test_a_sleeping_async_generator_is_not_active(step_path: str) -> None:
    """Two sleeps of 100 ms inside: about 0.2 s of duration, about 0 of active time."""
    analytics = Analytics()

    @analytics.track("t", name="ticks")
    async def ticks() -> AsyncIterator[int]:
        for i in range(2):
            await asyncio.sleep(0.1)
            yield i

    async def main() -> list[int]:
        return [i async for i in ticks()]

    assert asyncio.run(main()) == [0, 1]
    snap = snaps(analytics)["ticks"]
    assert (snap.calls, snap.successes) == (1, 1)
    assert snap.total >= 0.2
    assert snap.active_time is not None
    assert snap.active_self_time is not None
    # Five steps of microseconds each; 50 ms allowed for steps preempted on a loaded
    # machine (counted as active, the sleeps would fail it four times over).
    assert snap.active_time < 0.05
    assert snap.active_self_time <= snap.active_time
    assert snap.self_time == pytest.approx(snap.total)


def test_callers_through_an_async_generator(step_path: str) -> None:
    """Calls made during its steps have it as caller; it has its consumer as caller."""
    analytics = Analytics()

    @analytics.track("t", name="parse")
    def parse(n: int) -> int:
        return n * 2

    @analytics.track("t", name="fetch")
    async def fetch(n: int) -> int:
        await asyncio.sleep(0.01)
        return n

    @analytics.track("t", name="rows")
    async def rows(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield parse(await fetch(i))

    @analytics.track("t", name="handler")
    async def handler() -> list[int]:
        return [row async for row in rows(3)]

    async def main() -> list[int]:
        plain = [row async for row in rows(2)]  # consumed by untracked code
        return [*plain, *await handler()]

    assert asyncio.run(main()) == [0, 2, 0, 2, 4]
    found = callers(analytics)
    assert found["parse"] == {"rows": 5}
    assert found["fetch"] == {"rows": 5}
    assert found["rows"] == {"handler": 1}  # the other call has no tracked caller
    assert found["handler"] == {}
    snap = snaps(analytics)
    handler_snap, rows_snap = snap["handler"], snap["rows"]
    consumed = next(e.time for e in rows_snap.callers if e.name == "handler")
    assert handler_snap.self_time == pytest.approx(handler_snap.total - consumed, abs=1e-9)
    # The fetches' sleeps (three of 10 ms) are waits of rows and of handler.
    assert rows_snap.active_time is not None
    assert rows_snap.active_time <= rows_snap.total - 0.045
    assert handler_snap.active_time is not None
    assert handler_snap.active_time <= handler_snap.total - 0.025


def test_exceptions_pass_through_untouched(step_path: str) -> None:
    """The exception raised is the generator's own object, with its traceback: a failure."""
    analytics = Analytics()
    raised: list[BaseException] = []

    @analytics.track("t", name="broken")
    async def broken() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(0)
        error = LookupError("gone")
        raised.append(error)
        raise error

    async def main() -> list[int]:
        return [i async for i in broken()]

    with pytest.raises(LookupError, match="gone") as info:
        asyncio.run(main())
    assert info.value is raised[0]
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].name == "broken"
    if step_path == "c":  # the C proxy adds no Python frame
        assert not [f for f in frames if "callmetrics" in f.filename]
    snap = snaps(analytics)["broken"]
    assert (snap.calls, snap.failures) == (1, 1)
    assert [call.error for call in analytics.retained()] == ["LookupError"]
    assert snap.active_time is not None


def test_asend_athrow_and_aclose(step_path: str) -> None:
    """Values sent arrive, athrow reaches it (caught or not), aclose ends it: a success."""
    analytics = Analytics()

    @analytics.track("t", name="echo")
    async def echo() -> AsyncGenerator[Any, Any]:
        got = yield "ready"
        while True:
            try:
                got = yield got * 2
            except KeyError:
                got = yield "caught"

    async def main() -> tuple[list[Any], BaseException]:
        closed = echo()
        out = [await closed.__anext__(), await closed.asend(2),
               await closed.athrow(KeyError("k")), await closed.asend(5)]
        await closed.aclose()
        failing = echo()
        await anext(failing)
        error = ValueError("not caught")
        with pytest.raises(ValueError, match="not caught") as info:
            await failing.athrow(error)
        assert info.value is error
        unstarted = echo()
        await unstarted.aclose()  # never started: no call
        dropped = echo()
        del dropped  # never started either
        gc.collect()
        return out, error

    out, _error = asyncio.run(main())
    assert out == ["ready", 4, "caught", 10]
    snap = snaps(analytics)["echo"]
    assert (snap.calls, snap.successes, snap.failures) == (2, 1, 1)
    assert [call.error for call in analytics.retained() if call.error] == ["ValueError"]


def test_early_break_and_shutdown_finalize_the_generator(step_path: str) -> None:
    """Left early, the generator's cleanup still runs (asyncio's asyncgen hooks); recorded once.

    One is dropped after a ``break`` (the loop's finalizer hook closes the original);
    one is still held when ``asyncio.run`` ends (its ``shutdown_asyncgens`` closes it).
    Both calls are successes, recorded when the proxy goes.
    """
    analytics = Analytics()
    cleaned: list[str] = []
    kept: list[Any] = []

    @analytics.track("t", name="stream")
    async def stream(tag: str) -> AsyncIterator[int]:
        try:
            for i in range(100):
                await asyncio.sleep(0)
                yield i
        finally:
            await asyncio.sleep(0)  # an async cleanup: needs the loop to close it
            cleaned.append(tag)

    async def main() -> None:
        async for i in stream("dropped"):
            if i == 2:
                break
        gc.collect()
        for _ in range(5):  # let the loop run the aclose() the hook scheduled
            await asyncio.sleep(0)
        held = stream("held")
        kept.append(held)
        assert await anext(held) == 0

    asyncio.run(main())
    assert sorted(cleaned) == ["dropped", "held"]
    kept.clear()
    gc.collect()
    snap = snaps(analytics)["stream"]
    assert (snap.calls, snap.successes) == (2, 2)
    assert snap.active_time is not None


def test_a_second_awaitable_while_one_runs_is_refused_untimed(step_path: str) -> None:
    """Python's "already running" error passes through and does not end the call."""
    analytics = Analytics()

    @analytics.track("t", name="slow")
    async def slow() -> AsyncIterator[int]:
        await asyncio.sleep(0.01)
        yield 1

    async def main() -> list[int]:
        gen = slow()
        first = asyncio.ensure_future(anext(gen))
        await asyncio.sleep(0)  # the first is now waiting inside the generator
        with pytest.raises(RuntimeError, match="already running"):
            await anext(gen)
        return [await first, *[i async for i in gen]]

    assert asyncio.run(main()) == [1]
    snap = snaps(analytics)["slow"]
    assert (snap.calls, snap.successes) == (1, 1)
    assert snap.total >= 0.01


def test_protocol_of_a_tracked_async_generator(step_path: str) -> None:
    """What a call returns is accepted where an async generator is."""
    analytics = Analytics()

    @analytics.track("t", name="pairs")
    async def pairs(n: int) -> AsyncIterator[tuple[int, int]]:
        for i in range(n):
            await asyncio.sleep(0)
            yield (i, i)

    assert inspect.isasyncgenfunction(pairs)
    assert not inspect.iscoroutinefunction(pairs)
    assert not inspect.isgeneratorfunction(pairs)
    gen: Any = pairs(2)
    made: object = gen  # isinstance() below narrows this name, not gen
    assert isinstance(made, abc.AsyncGenerator)
    assert isinstance(made, abc.AsyncIterator)
    assert not isinstance(made, types.AsyncGeneratorType)  # what differs (README)
    assert not inspect.isasyncgen(made)
    assert gen.__name__ == "pairs"
    assert gen.__qualname__.endswith("pairs")
    assert gen.ag_frame is not None
    assert gen.ag_code is pairs.__wrapped__.__code__  # type: ignore[attr-defined]  # functools.wraps
    assert gen.ag_running is False
    assert aiter(gen) is gen
    assert repr(gen).startswith("<tracked <async_generator object")
    awaitable = anext(gen)
    assert inspect.isawaitable(awaitable)
    assert isinstance(awaitable, abc.Awaitable)

    @contextlib.asynccontextmanager
    @analytics.track("t", name="session")
    async def session() -> AsyncIterator[str]:
        with contextlib.suppress(KeyError):
            yield "open"

    async def main() -> list[Any]:
        got = [await awaitable, *[p async for p in gen]]
        async with session() as state:
            got.append(state)
        async with session():
            raise KeyError("swallowed by the generator")
        error = ValueError("through")
        with pytest.raises(ValueError, match="through") as info:
            async with session():
                raise error
        assert info.value is error
        async with contextlib.aclosing(pairs(3)) as closing:
            got.append(await anext(closing))
        return got

    assert asyncio.run(main()) == [(0, 0), (1, 1), "open", (0, 0)]
    assert gen.ag_frame is None
    found = snaps(analytics)
    assert (found["pairs"].calls, found["pairs"].successes) == (2, 2)
    assert (found["session"].calls, found["session"].successes) == (3, 2)


def test_pickling_and_binding(step_path: str) -> None:
    """A tracked async generator function pickles by reference; a tracked method binds.

    What a call returns does not pickle, as the original's does not.
    """
    analytics = Analytics()
    module = types.ModuleType("tracked_asteps_module")
    sys.modules[module.__name__] = module
    try:
        async def remote() -> AsyncIterator[int]:
            yield 1

        remote.__module__ = module.__name__
        remote.__qualname__ = "remote"
        tracked = analytics.track("t")(remote)
        module.remote = tracked  # type: ignore[attr-defined]  # a module made for the test
        assert pickle.loads(pickle.dumps(tracked)) is tracked  # noqa: S301  # our own bytes
        with pytest.raises(TypeError):
            pickle.dumps(tracked())
        with pytest.raises(TypeError):
            pickle.dumps(remote())
    finally:
        del sys.modules[module.__name__]

    class Source:
        @analytics.track("t", name="Source.items")
        async def items(self, n: int) -> AsyncIterator[int]:
            for i in range(n):
                yield i

    source = Source()
    assert inspect.isasyncgenfunction(source.items)

    async def main() -> list[int]:
        return [i async for i in source.items(3)]

    assert asyncio.run(main()) == [0, 1, 2]
    assert "remote" not in snaps(analytics)  # never iterated: no call
