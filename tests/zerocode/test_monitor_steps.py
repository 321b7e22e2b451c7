"""Generators and coroutines tracked through ``sys.monitoring`` (3.12+): their steps.

A call is the whole life of the generator or coroutine (first step to its end), its
active time the sum of its steps (``PY_START``/``PY_RESUME``/``PY_THROW`` to
``PY_YIELD`` or the end), its suspended seconds are its function's idle time, and
calls made during a step have it as their caller: the same figures as the
decorator's step proxy (tests/engine/test_steps.py), with the program untouched.
Each test runs with the accelerator's callbacks and with their pure-Python twin.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
import textwrap
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callmetrics import Analytics
from callmetrics._engine.accel import speedups
from callmetrics._engine.callers import BOTTOM, STACK
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._zerocode import tool as tool_module
from callmetrics._zerocode.tool import supported

monitoring = pytest.mark.skipif(not supported(), reason="sys.monitoring needs Python 3.12+")

_names = itertools.count()

MODULE = '''
import asyncio
import time

SPENT = {}

def spin_cpu(seconds, into=None):
    """Busy the thread for `seconds` of its CPU time; note (CPU, wall) spent in SPENT."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    while time.thread_time() - cpu0 < seconds:
        pass
    spent = time.thread_time() - cpu0, time.perf_counter() - wall0
    if into is not None:
        SPENT.setdefault(into, []).append(spent)
    return spent

async def nap():
    await asyncio.sleep(0.1)
    return "rested"

def parse(n):
    return n * 2

async def fetch(n):
    await asyncio.sleep(0.05)
    return parse(n)

async def handler():
    first = await fetch(1)
    rest = await asyncio.gather(fetch(2), fetch(3))  # tasks: started by the loop
    return [first, *rest]

async def walk(depth):
    await asyncio.sleep(0.01)
    return 0 if depth == 0 else 1 + await walk(depth - 1)

def produce(n):
    for i in range(n):
        spin_cpu(0.01, "produce")
        yield i

def consume(n):
    total = 0
    for item in produce(n):
        spin_cpu(0.02, "consume")
        total += item
    return total

def guarded():
    try:
        yield 1
    finally:
        spin_cpu(0.01, "guarded")

def tree(depth):
    spin_cpu(0.002, "tree")
    yield depth
    if depth:
        yield from tree(depth - 1)
        yield from tree(depth - 1)

async def catcher():
    try:
        await asyncio.sleep(0)
    except KeyError:
        spin_cpu(0.02, "catcher")
        return "handled"
    return "slept"

async def forever():
    await asyncio.sleep(10)
'''


@pytest.fixture
def module(tmp_path: Path) -> Iterator[Callable[[], types.ModuleType]]:
    name = f"cmsteps{next(_names)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    sys.path.insert(0, str(tmp_path))

    def load_module() -> types.ModuleType:
        sys.modules.pop(name, None)
        return __import__(name)

    load_module.name = name  # type: ignore[attr-defined]
    yield load_module
    sys.path.remove(str(tmp_path))
    sys.modules.pop(name, None)


@pytest.fixture(params=["c", "python"])
def pure(request: pytest.FixtureRequest) -> bool:
    """Whether the pure-Python callbacks are used (else the accelerator's)."""
    if request.param == "c" and speedups is None:
        pytest.skip("the C accelerator is not built")
    return bool(request.param == "python")


def _tracking(module: Callable[[], types.ModuleType], pure: bool,
              monkeypatch: pytest.MonkeyPatch,
              workload: Callable[[types.ModuleType], None]) -> dict[str, FunctionSnapshot]:
    """Run ``workload`` on the module tracked through sys.monitoring; its functions' figures."""
    if pure:
        monkeypatch.setattr(tool_module, "_speedups", None)
    analytics = Analytics()
    name = module.name  # type: ignore[attr-defined]
    analytics.instrument(name)
    try:
        mod = module()
        assert type(mod.produce) is types.FunctionType  # nothing replaced
        workload(mod)
    finally:
        analytics.uninstrument()
        monkeypatch.undo()
    return {s.name.removeprefix(name + "."): s for s in analytics.snapshot()}


def _callers(snap: FunctionSnapshot) -> dict[str, int]:
    return {edge.name.rsplit(".", 1)[-1]: edge.calls for edge in snap.callers}


def _depth() -> int:
    """Tracked calls on this thread's stack (none once every step has ended)."""
    if speedups is not None:
        return int(speedups.frames_depth())
    return len(STACK.calls) - BOTTOM


@monitoring
def test_a_sleeping_coroutine_is_not_active(module: Callable[[], types.ModuleType], pure: bool,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Awaiting asyncio.sleep(0.1): about 0.1 s of duration, about 0 of active time."""
    def run(mod: types.ModuleType) -> None:
        assert asyncio.run(mod.nap()) == "rested"

    snap = _tracking(module, pure, monkeypatch, run)["nap"]
    assert snap.calls == 1
    assert snap.total >= 0.1
    assert snap.active_time is not None
    assert snap.active_self_time is not None
    assert snap.active_time < 0.02  # two steps of microseconds; generous for a loaded machine
    assert snap.active_self_time <= snap.active_time
    assert snap.self_time == pytest.approx(snap.total)


@monitoring
def test_callers_across_an_await_chain(module: Callable[[], types.ModuleType], pure: bool,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An awaited coroutine's caller is its awaiter; a sync call's, its coroutine."""
    def run(mod: types.ModuleType) -> None:
        assert asyncio.run(mod.handler()) == [2, 4, 6]
        assert _depth() == 0

    found = _tracking(module, pure, monkeypatch, run)
    assert _callers(found["handler"]) == {}
    assert _callers(found["fetch"]) == {"handler": 1}  # the gathered two: no tracked caller
    assert _callers(found["parse"]) == {"fetch": 3}
    handler, fetch = found["handler"], found["fetch"]
    awaited = next(e.time for e in fetch.callers if e.name.endswith("handler"))
    assert handler.self_time == pytest.approx(handler.total - awaited, abs=1e-9)
    # The awaited fetches' sleeps (two of 50 ms in a row) are handler's waits too.
    assert handler.active_time is not None
    assert handler.active_time <= handler.total - 0.09
    assert handler.active_self_time is not None
    assert handler.active_self_time <= handler.active_time


@monitoring
def test_a_recursive_coroutine_counts_once(module: Callable[[], types.ModuleType], pure: bool,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A coroutine awaiting itself: nested calls, its inclusive time its outer call's."""
    def run(mod: types.ModuleType) -> None:
        assert asyncio.run(mod.walk(3)) == 3

    snap = _tracking(module, pure, monkeypatch, run)["walk"]
    assert snap.calls == 4
    assert _callers(snap) == {"walk": 3}
    assert snap.inclusive_time is not None
    assert snap.inclusive_time == pytest.approx(snap.total - snap.callers[0].time, abs=1e-9)
    assert snap.inclusive_time >= 0.04  # the outer call: four sleeps
    assert snap.active_time is not None
    assert snap.active_time < 0.03


@monitoring
def test_a_generator_iterated_lazily(module: Callable[[], types.ModuleType], pure: bool,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A generator is active while it computes an item, not while its consumer does."""
    spent: dict[str, list[list[float]]] = {}

    def run(mod: types.ModuleType) -> None:
        assert mod.consume(3) == 3
        spent.update(mod.SPENT)

    found = _tracking(module, pure, monkeypatch, run)
    produce = found["produce"]
    cpu = sum(c for c, _ in spent["produce"])
    wall = sum(w for _, w in spent["produce"])
    assert produce.active_time is not None
    assert cpu * 0.9 <= produce.active_time <= wall * 1.1 + 0.02
    assert produce.total >= sum(w for _, w in spent["consume"][:2])  # it waited on them
    assert _callers(produce) == {"consume": 1}
    # Work done during a step is the generator's; between steps, its consumer's.
    assert _callers(found["spin_cpu"]) == {"produce": 3, "consume": 3}
    consume = found["consume"]
    assert consume.active_time == pytest.approx(consume.total)  # a plain function


@monitoring
def test_a_generator_resumed_on_another_thread(module: Callable[[], types.ModuleType],
                                               pure: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Started on one thread, finished on another: one call, its steps on each."""
    spent: dict[str, list[list[float]]] = {}

    def run(mod: types.ModuleType) -> None:
        gen = mod.produce(4)
        assert next(gen) == 0
        assert _depth() == 0
        rest: list[int] = []
        worker = threading.Thread(target=lambda: rest.extend(gen))
        worker.start()
        worker.join()
        assert rest == [1, 2, 3]
        spent.update(mod.SPENT)

    found = _tracking(module, pure, monkeypatch, run)
    snap = found["produce"]
    assert (snap.calls, snap.successes) == (1, 1)
    cpu = sum(c for c, _ in spent["produce"])
    wall = sum(w for _, w in spent["produce"])
    assert snap.active_time is not None
    assert cpu * 0.9 <= snap.active_time <= wall * 1.1 + 0.02
    assert _callers(found["spin_cpu"]) == {"produce": 4}


@monitoring
def test_generators_abandoned_unfinished(module: Callable[[], types.ModuleType], pure: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropped while suspended: a success ending at its last step (or at its finally)."""
    spent: dict[str, list[list[float]]] = {}

    def run(mod: types.ModuleType) -> None:
        plain = mod.produce(10)
        assert next(plain) == 0
        del plain  # no try block: CPython never runs its frame again (swept)
        with_finally = mod.guarded()
        assert next(with_finally) == 1
        del with_finally  # closed: GeneratorExit runs its finally (one more step)
        gc.collect()
        spent.update(mod.SPENT)

    found = _tracking(module, pure, monkeypatch, run)
    produce, guarded = found["produce"], found["guarded"]
    assert (produce.calls, produce.successes) == (1, 1)
    assert (guarded.calls, guarded.successes) == (1, 1)
    first_cpu, first_wall = spent["produce"][0]
    assert produce.active_time is not None
    assert first_cpu * 0.9 <= produce.active_time <= first_wall * 1.1 + 0.02
    assert produce.total <= first_wall * 1.1 + 0.02  # it ends at its last step
    cpu, wall = spent["guarded"][0]
    assert guarded.active_time is not None
    assert cpu * 0.9 <= guarded.active_time <= wall * 1.1 + 0.02  # the finally ran in a step


@monitoring
def test_exceptions_thrown_in(module: Callable[[], types.ModuleType], pure: bool,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """throw() starts a step (PY_THROW); a cancelled task is a CancelledError failure."""
    spent: dict[str, list[list[float]]] = {}

    def run(mod: types.ModuleType) -> None:
        coro = mod.catcher()
        coro.send(None)
        with pytest.raises(StopIteration) as stop:
            coro.throw(KeyError("k"))
        assert stop.value.value == "handled"
        assert _depth() == 0

        async def main() -> None:
            task = asyncio.create_task(mod.forever())
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        spent.update(mod.SPENT)

    found = _tracking(module, pure, monkeypatch, run)
    catcher, forever = found["catcher"], found["forever"]
    assert (catcher.calls, catcher.successes) == (1, 1)
    cpu, wall = spent["catcher"][0]
    assert catcher.active_time is not None
    assert cpu * 0.9 <= catcher.active_time <= wall * 1.1 + 0.02
    assert _callers(found["spin_cpu"]) == {"catcher": 1}
    assert (forever.calls, forever.failures) == (1, 1)
    assert forever.total >= 0.01
    assert forever.active_time is not None
    assert forever.active_time < 0.01


@monitoring
def test_recursion_through_yield_from(module: Callable[[], types.ModuleType], pure: bool,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Each generator of a ``yield from`` tree is a call nested under the one delegating."""
    spent: dict[str, list[list[float]]] = {}

    def run(mod: types.ModuleType) -> None:
        assert list(mod.tree(3)) == [3, 2, 1, 0, 0, 1, 0, 0, 2, 1, 0, 0, 1, 0, 0]
        spent.update(mod.SPENT)

    found = _tracking(module, pure, monkeypatch, run)
    tree = found["tree"]
    assert tree.calls == 15
    assert _callers(tree) == {"tree": 14}
    assert tree.inclusive_time is not None
    nested = tree.callers[0].time
    assert tree.inclusive_time == pytest.approx(tree.total - nested, abs=1e-9)
    cpu = sum(c for c, _ in spent["tree"])
    wall = sum(w for _, w in spent["tree"])
    # The outermost call's active time contains every step of the tree once.
    assert tree.active_time is not None
    assert tree.active_time >= cpu * 0.9
    assert tree.inclusive_time <= wall * 1.1 + 0.05
    assert _callers(found["spin_cpu"]) == {"tree": 15}


@monitoring
def test_the_c_and_python_callbacks_record_the_same_steps(
        module: Callable[[], types.ModuleType], monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths: the same calls, callers, and every active time known."""
    if speedups is None:
        pytest.skip("the C accelerator is not built")

    def run(mod: types.ModuleType) -> None:
        asyncio.run(mod.handler())
        mod.consume(2)
        list(mod.tree(2))
        gen = mod.guarded()
        next(gen)
        gen.close()

    seen = [_tracking(module, pure, monkeypatch, run) for pure in (False, True)]
    shapes = [{name: (s.calls, s.successes, sorted(_callers(s).items()), s.active_time is None)
               for name, s in found.items()} for found in seen]
    assert shapes[0] == shapes[1]
    assert not any(unknown for *_, unknown in shapes[0].values())
