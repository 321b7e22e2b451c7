"""Async generators through the step proxy: threads, closing mid-way, C against Python.

Threads, an awaitable closed mid-way, and the differential test of the C proxy
against its pure-Python twin.  Every test but the differential one runs on both hot
paths (the ``step_path`` fixture, conftest).
"""

from __future__ import annotations

import asyncio
import gc
import threading
import types
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from callmetrics import Analytics
from callmetrics._engine import accel as _accel
from callmetrics._engine import sinks
from core_helpers import callers_by_name as callers
from core_helpers import snapshots as snaps
from core_helpers import step_records


def test_threads_keep_their_own_callers(step_path: str) -> None:
    """Four threads, each with its loop consuming an async generator: callers per thread."""
    analytics = Analytics()

    @analytics.track("t", name="leaf")
    def leaf(n: int) -> int:
        return n + 1

    @analytics.track("t", name="produce")
    async def produce(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0.001)
            yield leaf(i)

    @analytics.track("t", name="consume")
    async def consume() -> int:
        return sum([i async for i in produce(20)])

    results: list[int] = []

    def run() -> None:
        results.extend(asyncio.run(consume()) for _ in range(5))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [210] * 20
    found = callers(analytics)
    assert found["leaf"] == {"produce": 400}
    assert found["produce"] == {"consume": 20}
    snap = snaps(analytics)["produce"]
    assert (snap.calls, snap.successes) == (20, 20)
    assert snap.active_time is not None
    assert snap.active_time < snap.total


def test_c_and_python_proxies_record_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Differential: the same async-generator program on both paths, same records."""
    if _accel.IMPLEMENTATION != "c":
        pytest.skip(f"the C accelerator is not in use ({_accel.REASON})")

    def play(analytics: Analytics) -> dict[str, Any]:
        @analytics.track("t", name="leaf")
        def leaf(n: int) -> int:
            if n % 7 == 6:
                raise KeyError(n)
            return n

        @analytics.track("t", name="agen")
        async def agen(n: int) -> AsyncGenerator[int, Any]:
            for i in range(n):
                await asyncio.sleep(0)
                try:
                    got = yield leaf(i)
                except ValueError:
                    yield -1
                    return
                if got == "stop":
                    return

        @analytics.track("t", name="step")
        async def step(n: int) -> list[int]:
            out: list[int] = []
            try:
                async for value in agen(n):
                    out.append(value)
                    if value == 4:
                        break
            except KeyError:
                out.append(-2)
            return out

        async def driven() -> list[Any]:
            gen = agen(5)
            got = [await anext(gen), await gen.asend("go"), await gen.athrow(ValueError())]
            with pytest.raises(StopAsyncIteration):
                await anext(gen)
            stopped = agen(5)
            got.append(await anext(stopped))
            with pytest.raises(StopAsyncIteration):
                await stopped.asend("stop")
            return got

        @analytics.track("t", name="root")
        async def root() -> list[Any]:
            done: list[Any] = [await step(n) for n in range(9)]
            done += await asyncio.gather(*(step(n) for n in range(3)))
            done.append(await driven())
            return done

        result = asyncio.run(root())
        gc.collect()
        return step_records(analytics, result)

    from_c = play(Analytics())
    with monkeypatch.context() as patch:
        patch.setattr(sinks, "stepping", lambda *_args: None)
        from_python = play(Analytics())
    assert from_c == from_python
    assert all(known == (True, True) for known in from_c["known"].values())
    assert from_c["calls"]["agen"][0] == 14  # 9 + 3 stepped, 2 driven by hand


def test_an_awaitable_closed_mid_way(step_path: str) -> None:
    """Closing an awaitable while the generator waits inside: one call, a success.

    3.13 closes the generator with it; 3.11 and 3.12 leave it running, refusing every
    resume ("already running", untimed), until it is dropped.  Either way the call is
    recorded once, as a success, and the generator's cleanup runs.
    """
    analytics = Analytics()
    cleaned: list[bool] = []

    @types.coroutine
    def suspend() -> Any:
        yield "suspended"

    @analytics.track("t", name="waits")
    async def waits() -> AsyncIterator[int]:
        try:
            await suspend()
            yield 1
        finally:
            cleaned.append(True)

    gen: Any = waits()
    awaitable = gen.__anext__()
    assert awaitable.send(None) == "suspended"
    assert awaitable.close() is None
    with pytest.raises((RuntimeError, StopAsyncIteration)):
        gen.__anext__().send(None)
    del gen, awaitable
    gc.collect()
    assert cleaned == [True]
    snap = snaps(analytics)["waits"]
    assert (snap.calls, snap.successes) == (1, 1)
