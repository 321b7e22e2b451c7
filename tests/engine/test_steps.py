"""Coroutines and generators through the step proxy: active time, callers, protocol.

Every test runs on both hot paths: the C proxy (when the accelerator is built) and
the pure-Python twin (``stepping.Stepping``), which the ``step_path`` fixture
(conftest) selects by making ``sinks.stepping`` answer None, as it does without the
extension.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import pickle
import sys
import time
import traceback
import types
from collections import abc
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from callmetrics import Analytics
from callmetrics._engine import accel as _accel
from callmetrics._engine import sinks
from callmetrics._outputs.report_time import own_time
from core_helpers import snapshots as snaps
from core_helpers import step_records


def spin_cpu(seconds: float) -> tuple[float, float]:
    """Busy the thread for ``seconds`` of its CPU time; return (CPU, wall) seconds spent."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    while time.thread_time() - cpu0 < seconds:
        pass
    return time.thread_time() - cpu0, time.perf_counter() - wall0


def test_a_sleeping_coroutine_is_not_active(step_path: str) -> None:
    """Awaiting asyncio.sleep(0.1): about 0.1 s of duration, about 0 of active time."""
    analytics = Analytics()

    @analytics.track("t", name="nap")
    async def nap() -> str:
        await asyncio.sleep(0.1)
        return "rested"

    assert asyncio.run(nap()) == "rested"
    snap = snaps(analytics)["nap"]
    assert snap.total >= 0.1
    assert snap.active_time is not None
    assert snap.active_self_time is not None
    # Two steps of a few microseconds each; generous for a loaded machine.
    assert snap.active_time < 0.02
    assert snap.active_self_time <= snap.active_time
    assert snap.self_time == pytest.approx(snap.total)


def test_fifty_concurrent_tasks(step_path: str) -> None:
    """50 tasks that sleep, then do measured CPU work: active time is the work.

    The tasks wake 30 ms apart and work 5 ms of CPU each, so none waits behind
    another: each one's duration is its sleep plus its work.
    """
    analytics = Analytics()
    measured: dict[str, tuple[float, float, float]] = {}

    def make(i: int) -> Callable[[], Any]:
        name = f"task{i:02}"

        async def task() -> None:
            began = time.perf_counter()
            await asyncio.sleep(0.02 + 0.03 * i)
            slept = time.perf_counter() - began  # the sleep as the loop gave it
            cpu, wall = spin_cpu(0.005)
            measured[name] = (slept, cpu, wall)

        return analytics.track("t", name=name)(task)

    tasks = [make(i) for i in range(50)]

    async def main() -> None:
        await asyncio.gather(*(asyncio.create_task(t()) for t in tasks))

    asyncio.run(main())
    found = snaps(analytics)
    for name, (slept, cpu, wall) in measured.items():
        snap = found[name]
        assert snap.active_time is not None
        # Its steps contain the work (at least its CPU time) and little else: tens of
        # microseconds, 30 ms allowed for steps preempted on a loaded machine (its sleep
        # is 20 ms to 1.5 s: counted as active, it would fail this for every task but
        # the first two; the next line checks the sleep is left out for all).
        assert cpu * 0.9 <= snap.active_time <= wall * 1.1 + 0.03, name
        assert snap.active_time <= snap.total - slept * 0.9, name
        assert snap.total == pytest.approx(slept + wall, rel=0.1, abs=0.02), name
    stats = analytics.get_stats()
    # Where the time goes: the functions' own time never exceeds the wall time, though
    # their durations (concurrent) add up to far more.
    own = [own_time(s) for s in found.values()]
    assert all(value is not None for value in own)
    assert sum(v for v in own if v is not None) <= stats["wall_time"]
    assert stats["self_time"] <= stats["wall_time"]
    assert sum(s.total for s in found.values()) > 5 * stats["wall_time"]


def test_callers_across_an_await_chain(step_path: str) -> None:
    """An awaited tracked coroutine's caller is its awaiter; a sync call's, its coroutine."""
    analytics = Analytics()

    @analytics.track("t", name="parse")
    def parse(n: int) -> int:
        return n * 2

    @analytics.track("t", name="fetch")
    async def fetch(n: int) -> int:
        await asyncio.sleep(0.05)
        return parse(n)

    @analytics.track("t", name="handler")
    async def handler() -> list[int]:
        first = await fetch(1)
        rest = await asyncio.gather(fetch(2), fetch(3))  # tasks: started by the loop
        return [first, *rest]

    assert asyncio.run(handler()) == [2, 4, 6]
    found = snaps(analytics)
    by_name = {name: {e.name: e.calls for e in s.callers} for name, s in found.items()}
    assert by_name["handler"] == {}
    assert by_name["fetch"] == {"handler": 1}  # the two gathered ones have no tracked caller
    assert by_name["parse"] == {"fetch": 3}
    handler_snap, fetch_snap = found["handler"], found["fetch"]
    awaited = next(e.time for e in fetch_snap.callers if e.name == "handler")
    assert handler_snap.self_time == pytest.approx(handler_snap.total - awaited, abs=1e-9)
    # The awaited fetches' sleeps (two of 50 ms in a row) are handler's waits too, not
    # its running time.
    assert handler_snap.active_time is not None
    assert handler_snap.active_time <= handler_snap.total - 0.09
    assert handler_snap.active_self_time is not None
    assert handler_snap.active_self_time <= handler_snap.active_time


def test_a_recursive_coroutine_counts_once(step_path: str) -> None:
    """A coroutine awaiting itself: nested calls, its inclusive time its outer call's."""
    analytics = Analytics()

    @analytics.track("t", name="walk")
    async def walk(depth: int) -> int:
        await asyncio.sleep(0.01)
        return 0 if depth == 0 else 1 + await walk(depth - 1)

    assert asyncio.run(walk(3)) == 3
    snap = snaps(analytics)["walk"]
    assert snap.calls == 4
    assert {e.name: e.calls for e in snap.callers} == {"walk": 3}
    nested = snap.callers[0].time
    assert snap.inclusive_time is not None
    assert snap.inclusive_time == pytest.approx(snap.total - nested, abs=1e-9)
    assert snap.inclusive_time >= 0.04  # the outer call: four sleeps


def test_generator_active_time(step_path: str) -> None:
    """A generator is active while it computes an item, not while its consumer does."""
    analytics = Analytics()
    spent: list[tuple[float, float]] = []

    @analytics.track("t", name="produce")
    def produce(n: int) -> Iterator[int]:
        for i in range(n):
            spent.append(spin_cpu(0.01))
            yield i

    consumer_wall = 0.0
    for _item in produce(3):
        consumer_wall += spin_cpu(0.02)[1]
    snap = snaps(analytics)["produce"]
    assert snap.total >= consumer_wall
    assert snap.active_time is not None
    cpu = sum(c for c, _ in spent)
    wall = sum(w for _, w in spent)
    assert cpu * 0.9 <= snap.active_time <= wall * 1.1 + 0.02


def test_generator_closed_early_and_dropped(step_path: str) -> None:
    """close() of a started generator, and dropping one, are successes; unstarted: nothing."""
    analytics = Analytics()

    @analytics.track("t", name="count")
    def count() -> Generator[int, None, None]:
        yield from range(10)

    closed = count()
    assert next(closed) == 0
    closed.close()
    for item in count():
        if item == 2:
            break
    gc.collect()
    unstarted = count()
    unstarted.close()
    del unstarted
    snap = snaps(analytics)["count"]
    assert (snap.calls, snap.successes) == (2, 2)


def test_protocol_of_a_tracked_coroutine(step_path: str) -> None:
    """What a call returns is accepted where a coroutine is."""
    analytics = Analytics()

    @analytics.track("t", name="answer")
    async def answer(x: int) -> Any:
        await asyncio.sleep(0)
        return (x,)

    assert inspect.iscoroutinefunction(answer)
    assert asyncio.iscoroutinefunction(answer)
    assert not inspect.isgeneratorfunction(answer)
    coro: Any = answer(1)
    assert coro.__name__ == "answer"
    assert coro.__qualname__.endswith("answer")
    assert coro.cr_frame is not None
    assert coro.cr_code is answer.__wrapped__.__code__  # type: ignore[attr-defined]  # functools.wraps
    assert asyncio.iscoroutine(coro)
    assert inspect.isawaitable(coro)
    assert isinstance(coro, abc.Coroutine)
    assert isinstance(coro, abc.Awaitable)
    assert not isinstance(coro, types.CoroutineType)  # what differs (README)
    assert not inspect.iscoroutine(coro)

    async def main() -> Any:
        direct = await coro
        task = await asyncio.create_task(answer(2))
        waited = await asyncio.wait_for(answer(3), 5)
        return direct, task, waited

    assert asyncio.run(main()) == ((1,), (2,), (3,))
    # Driven by hand: send() returns what it yields, StopIteration carries the value.
    driven = answer(4)
    assert driven.send(None) is None  # asyncio.sleep(0) yields None
    with pytest.raises(StopIteration) as stop:
        driven.send(None)
    assert stop.value.value == (4,)
    assert snaps(analytics)["answer"].calls == 4


def test_exceptions_pass_through_untouched(step_path: str) -> None:
    """The exception raised is the function's own object, with its traceback."""
    analytics = Analytics()
    raised: list[BaseException] = []

    @analytics.track("t", name="broken")
    async def broken() -> None:
        await asyncio.sleep(0)
        error = ValueError("bad")
        raised.append(error)
        raise error

    with pytest.raises(ValueError, match="bad") as info:
        asyncio.run(broken())
    assert info.value is raised[0]
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "broken"
    snap = snaps(analytics)["broken"]
    assert (snap.calls, snap.failures) == (1, 1)
    assert snap.active_time is not None


def test_throw_and_cancellation(step_path: str) -> None:
    """throw() reaches the coroutine; cancelling a task records a CancelledError failure."""
    analytics = Analytics()

    @analytics.track("t", name="guarded")
    async def guarded() -> str:
        try:
            await asyncio.sleep(0)
        except KeyError:
            return "handled"
        return "slept"

    @analytics.track("t", name="forever")
    async def forever() -> None:
        await asyncio.sleep(10)

    coro = guarded()
    coro.send(None)
    with pytest.raises(StopIteration) as stop:
        coro.throw(KeyError("k"))
    assert stop.value.value == "handled"

    async def main() -> None:
        task = asyncio.create_task(forever())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(main())
    found = snaps(analytics)
    assert (found["guarded"].calls, found["guarded"].successes) == (1, 1)
    assert (found["forever"].calls, found["forever"].successes) == (1, 0)
    errors = [call.error for call in analytics.retained() if call.error]
    assert errors == ["CancelledError"]


def test_protocol_of_a_tracked_generator(step_path: str) -> None:
    """What a call returns is accepted where a generator is: iteration, send, throw, return."""
    analytics = Analytics()

    @analytics.track("t", name="echo")
    def echo() -> Any:
        got = yield "ready"
        while got is not None:
            try:
                got = yield got * 2
            except KeyError:
                got = yield "caught"
        return "done"

    assert inspect.isgeneratorfunction(echo)
    assert not inspect.iscoroutinefunction(echo)
    gen: Any = echo()
    assert gen.gi_frame is not None
    assert gen.__name__ == "echo"
    assert iter(gen) is gen
    assert isinstance(gen, abc.Generator)
    assert not inspect.isgenerator(gen)  # what differs (README)
    assert next(gen) == "ready"
    assert gen.send(2) == 4
    assert gen.throw(KeyError("k")) == "caught"
    with pytest.raises(StopIteration) as stop:
        gen.send(None)
    assert stop.value.value == "done"

    def delegate() -> Any:
        return (yield from echo())

    outer = delegate()
    assert next(outer) == "ready"
    with pytest.raises(StopIteration) as stop:
        outer.send(None)
    assert stop.value.value == "done"
    assert snaps(analytics)["echo"].successes == 2


def test_methods_bind_and_pickle_by_reference(step_path: str) -> None:
    """A tracked coroutine method binds; a tracked module-level function pickles by name."""
    analytics = Analytics()

    class Service:
        @analytics.track("t", name="Service.get")
        async def get(self, x: int) -> int:
            return x + 1

    service = Service()
    assert inspect.iscoroutinefunction(service.get)
    assert asyncio.run(service.get(1)) == 2
    module = types.ModuleType("tracked_steps_module")
    sys.modules[module.__name__] = module
    try:
        async def remote() -> int:
            return 1

        remote.__module__ = module.__name__
        remote.__qualname__ = "remote"
        tracked = analytics.track("t")(remote)
        module.remote = tracked  # type: ignore[attr-defined]  # a module made for the test
        assert pickle.loads(pickle.dumps(tracked)) is tracked  # noqa: S301  # our own bytes
    finally:
        del sys.modules[module.__name__]


def test_c_and_python_proxies_record_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Differential: the same coroutine and generator program on both paths, same records."""
    if _accel.IMPLEMENTATION != "c":
        pytest.skip(f"the C accelerator is not in use ({_accel.REASON})")

    def play(analytics: Analytics) -> dict[str, Any]:
        @analytics.track("t", name="leaf")
        def leaf(n: int) -> int:
            if n % 5 == 4:
                raise KeyError(n)
            return n

        @analytics.track("t", name="gen")
        def gen(n: int) -> Iterator[int]:
            for i in range(n):
                yield leaf(i)

        @analytics.track("t", name="step")
        async def step(n: int) -> int:
            await asyncio.sleep(0)
            try:
                return sum(gen(n))
            except KeyError:
                return -1

        @analytics.track("t", name="root")
        async def root() -> list[int]:
            done = [await step(n) for n in range(6)]
            done += await asyncio.gather(*(step(n) for n in range(3)))
            return done

        result = asyncio.run(root())
        return step_records(analytics, result)

    from_c = play(Analytics())
    with monkeypatch.context() as patch:
        patch.setattr(sinks, "stepping", lambda *_args: None)
        from_python = play(Analytics())
    assert from_c == from_python
    assert from_c["callers"]["gen"] == [("step", 9)]
    assert all(known == (True, True) for known in from_c["known"].values())
