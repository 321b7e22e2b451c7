"""Coroutines tracked through ``sys.monitoring`` (3.12+): their steps, as the proxy's.

A call is the whole life of the coroutine (first step to its end), its active time
the sum of its steps (``PY_START``/``PY_RESUME``/``PY_THROW`` to ``PY_YIELD`` or the
end), its suspended seconds are its function's idle time, and calls made during a
step have it as their caller: the same figures as the decorator's step proxy
(tests/engine/test_steps.py), with the program untouched.  Each test runs with the
accelerator's callbacks and with their pure-Python twin (generators:
test_monitor_generators.py; the program and helpers: tests/monitor_helpers.py).
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor_helpers import (
    Loader,
    Window,
    callers_of,
    depth,
    monitoring,
    pure_param,
    steps_module,
    tracking,
)


@pytest.fixture
def module(tmp_path: Path) -> Iterator[Loader]:
    with steps_module(tmp_path) as load_module:
        yield load_module


@pytest.fixture(params=["c", "python"])
def pure(request: pytest.FixtureRequest) -> bool:
    """Whether the pure-Python callbacks are used (else the accelerator's)."""
    return pure_param(str(request.param))


@monitoring
def test_a_sleeping_coroutine_is_not_active(module: Loader, pure: bool,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Awaiting asyncio.sleep(0.1): about 0.1 s of duration, about 0 of active time."""
    def run(mod: types.ModuleType) -> None:
        assert asyncio.run(mod.nap()) == "rested"

    snap = tracking(module, pure, monkeypatch, run)["nap"]
    assert snap.calls == 1
    assert snap.total >= 0.1
    assert snap.active_time is not None
    assert snap.active_self_time is not None
    assert snap.active_time <= snap.total - 0.09  # two short steps, the sleep left out
    assert snap.active_self_time <= snap.active_time
    assert snap.self_time == pytest.approx(snap.total)


@monitoring
def test_callers_across_an_await_chain(module: Loader, pure: bool,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An awaited coroutine's caller is its awaiter; a sync call's, its coroutine."""
    def run(mod: types.ModuleType) -> None:
        assert asyncio.run(mod.handler()) == [2, 4, 6]
        assert depth() == 0

    found = tracking(module, pure, monkeypatch, run)
    assert callers_of(found["handler"]) == {}
    assert callers_of(found["fetch"]) == {"handler": 1}  # the gathered two: no tracked caller
    assert callers_of(found["parse"]) == {"fetch": 3}
    handler, fetch = found["handler"], found["fetch"]
    awaited = next(e.time for e in fetch.callers if e.name.endswith("handler"))
    assert handler.self_time == pytest.approx(handler.total - awaited, abs=1e-9)
    # The awaited fetches' sleeps (two of 50 ms in a row) are handler's waits too.
    assert handler.active_time is not None
    assert handler.active_time <= handler.total - 0.09
    assert handler.active_self_time is not None
    assert handler.active_self_time <= handler.active_time


@monitoring
def test_a_recursive_coroutine_counts_once(module: Loader, pure: bool,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A coroutine awaiting itself: nested calls, its inclusive time its outer call's."""
    def run(mod: types.ModuleType) -> None:
        assert asyncio.run(mod.walk(3)) == 3

    snap = tracking(module, pure, monkeypatch, run)["walk"]
    assert snap.calls == 4
    assert callers_of(snap) == {"walk": 3}
    assert snap.inclusive_time is not None
    assert snap.inclusive_time == pytest.approx(snap.total - snap.callers[0].time, abs=1e-9)
    assert snap.inclusive_time >= 0.04  # the outer call: four sleeps
    assert snap.active_time is not None
    assert snap.active_time <= snap.total - 0.09  # each call waits on its sleeps and those below


@monitoring
def test_exceptions_thrown_in(module: Loader, pure: bool,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """throw() starts a step (PY_THROW); a cancelled task is a CancelledError failure."""
    spent: dict[str, list[list[float]]] = {}
    stepping = Window()

    def run(mod: types.ModuleType) -> None:
        coro = mod.catcher()
        with stepping:
            coro.send(None)
        with pytest.raises(StopIteration) as stop, stepping:
            coro.throw(KeyError("k"))
        assert stop.value.value == "handled"
        assert depth() == 0

        async def main() -> None:
            task = asyncio.create_task(mod.forever())
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        spent.update(mod.SPENT)

    found = tracking(module, pure, monkeypatch, run)
    catcher, forever = found["catcher"], found["forever"]
    assert (catcher.calls, catcher.successes) == (1, 1)
    cpu, _ = spent["catcher"][0]
    assert catcher.active_time is not None
    assert cpu * 0.9 <= catcher.active_time <= stepping.bound
    assert callers_of(found["spin_cpu"]) == {"catcher": 1}
    assert (forever.calls, forever.failures) == (1, 1)
    assert forever.active_time is not None
    assert forever.active_time <= forever.total


@monitoring
def test_a_throw_passed_down_an_await_chain(module: Loader, pure: bool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """CPython throws straight into the innermost coroutine: its awaiters step with it."""
    spent: dict[str, list[list[float]]] = {}

    def run(mod: types.ModuleType) -> None:
        coro = mod.delegates()
        coro.send(None)
        assert coro.throw(KeyError("k")) is None  # handled inside, suspended again
        assert depth() == 0
        with pytest.raises(StopIteration) as stop:
            coro.send(None)
        assert stop.value.value == "done"

        async def main() -> None:
            task = asyncio.create_task(mod.outer())
            await asyncio.sleep(0.01)
            task.cancel()  # thrown into outer, passed down to inner
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert depth() == 0
        spent.update(mod.SPENT)

    found = tracking(module, pure, monkeypatch, run)
    assert callers_of(found["keeps_going"]) == {"delegates": 1}
    assert callers_of(found["inner"]) == {"outer": 1}
    assert callers_of(found["spin_cpu"]) == {"keeps_going": 1, "inner": 1, "outer": 1}
    (handled_cpu, _), = spent["keeps_going"]
    delegating = found["delegates"].active_time
    assert delegating is not None
    assert delegating >= handled_cpu * 0.9  # the step it passed down is its too
    cpu = spent["inner"][0][0] + spent["outer"][0][0]
    outer_active = found["outer"].active_time
    assert outer_active is not None
    assert cpu * 0.9 <= outer_active <= found["outer"].total
    assert (found["outer"].failures, found["inner"].failures) == (1, 1)
