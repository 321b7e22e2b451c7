"""Tracking through ``sys.monitoring`` (3.12+): the C callbacks and their Python twin agree.

Each workload runs twice in this process, once with the accelerator's ``Monitor`` and
once with the pure-Python one, and both runs must record the same calls (counts,
failures, names) as a decorated function would.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
import textwrap
import threading
import tracemalloc
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callmetrics import Analytics
from callmetrics._engine.accel import speedups
from callmetrics._zerocode import tool as tool_module
from callmetrics._zerocode.tool import supported

pytestmark = pytest.mark.skipif(not supported(), reason="sys.monitoring needs Python 3.12+")

_names = itertools.count()

MODULE = '''
import asyncio
import functools

REGISTRY = {}

def register(func):
    REGISTRY[func.__name__] = func
    return func

@register
def fast(x):
    return x + 1

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def fails(x):
    raise KeyError(x)

def catches():
    try:
        fails(1)
    except KeyError:
        return "caught"

def numbers(n):
    yield from range(n)

def guarded(n):
    try:
        yield from range(n)
    finally:
        pass

async def fetch(x):
    await asyncio.sleep(0)
    return x

async def afails():
    await asyncio.sleep(0)
    raise ValueError("no")

async def agen(n):
    for i in range(n):
        yield i

def make_adder(k):
    def add(x):
        return x + k
    return add

@functools.singledispatch
def show(x):
    return "any"

@show.register
def _(x: int):
    return "int"

class Thing:
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def get(self):
        return self.v

def later():
    def defined_at_run_time():
        return 1
    return defined_at_run_time
'''

EXPECTED = {
    "fast": 10, "fib": 177, "fails": 2, "catches": 1, "numbers": 3, "guarded": 2,
    "fetch": 2, "afails": 1, "agen": 1, "make_adder": 1, "make_adder.add": 3,
    "show": 1, "_": 1, "Thing.__init__": 1, "Thing.get": 1, "later": 1,
    "later.defined_at_run_time": 1, "register": 1,
}
FAILED = {"fails": 2, "afails": 1}


def _workload(mod: types.ModuleType) -> None:
    for i in range(10):
        mod.REGISTRY["fast"](i)  # the very function the registry stored
    mod.fib(10)
    with pytest.raises(KeyError):
        mod.fails(0)
    assert mod.catches() == "caught"
    assert sum(mod.numbers(4)) == 6
    early = mod.numbers(10)
    next(early)
    early.close()  # closed without running its frame again (no try block)
    abandoned = mod.numbers(10)
    next(abandoned)
    del abandoned  # collected: closed the same way
    gc.collect()
    guarded = mod.guarded(10)
    next(guarded)
    guarded.close()  # GeneratorExit runs through the frame: a success, as decorated
    assert list(mod.guarded(2)) == [0, 1]

    async def main() -> None:
        assert await mod.fetch(1) == 1
        assert list(await asyncio.gather(mod.fetch(2))) == [2]
        with pytest.raises(ValueError, match="no"):
            await mod.afails()
        assert [i async for i in mod.agen(3)] == [0, 1, 2]

    asyncio.run(main())
    add = mod.make_adder(1)
    assert [add(1), add(2), add(3)] == [2, 3, 4]
    assert mod.show(1) == "int"
    assert mod.show.registry[object](1) == "any"
    assert mod.Thing(5).get() == 5
    assert mod.later()() == 1


@pytest.fixture
def module(tmp_path: Path) -> Iterator[Callable[[], types.ModuleType]]:
    name = f"cmmon{next(_names)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    sys.path.insert(0, str(tmp_path))

    def load() -> types.ModuleType:
        sys.modules.pop(name, None)
        return __import__(name)

    load.name = name  # type: ignore[attr-defined]
    yield load
    sys.path.remove(str(tmp_path))
    sys.modules.pop(name, None)


def _run(module: Callable[[], types.ModuleType], pure: bool,
         monkeypatch: pytest.MonkeyPatch) -> Analytics:
    if pure:
        monkeypatch.setattr(tool_module, "_speedups", None)
    analytics = Analytics()
    name = module.name  # type: ignore[attr-defined]
    analytics.instrument(name)
    try:
        mod = module()
        assert type(mod.fast) is types.FunctionType  # nothing replaced
        _workload(mod)
    finally:
        analytics.uninstrument()
    monkeypatch.undo()
    return analytics


def _short(analytics: Analytics, name: str) -> dict[str, int]:
    return {key.removeprefix(name + "."): count for key, count in analytics.call_counts.items()}


@pytest.mark.parametrize("pure", [False, True], ids=["c", "python"])
def test_every_call_is_seen_however_it_is_reached(module: Callable[[], types.ModuleType],
                                                  pure: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if not pure and speedups is None:
        pytest.skip("the C accelerator is not built")
    analytics = _run(module, pure, monkeypatch)
    name = module.name  # type: ignore[attr-defined]
    assert _short(analytics, name) == EXPECTED
    failed = {key.removeprefix(name + "."): calls - analytics.success_counts[key]
              for key, calls in analytics.call_counts.items()}
    assert {k: v for k, v in failed.items() if v} == FAILED


def test_the_c_and_python_callbacks_record_the_same_calls(
        module: Callable[[], types.ModuleType], monkeypatch: pytest.MonkeyPatch) -> None:
    if speedups is None:
        pytest.skip("the C accelerator is not built")
    with_c = _run(module, False, monkeypatch)
    pure = _run(module, True, monkeypatch)
    assert with_c.call_counts == pure.call_counts
    assert with_c.success_counts == pure.success_counts
    errors = [sorted((e["Function"], str(e["Error"])) for e in a.events if e["Error"])
              for a in (with_c, pure)]
    assert errors[0] == errors[1]
    assert len(errors[0]) == 3


def test_threads_keep_their_own_call_stacks(module: Callable[[], types.ModuleType]) -> None:
    analytics = Analytics()
    name = module.name  # type: ignore[attr-defined]
    analytics.instrument(name)
    try:
        mod = module()
        workers = [threading.Thread(target=mod.fib, args=(12,)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        analytics.uninstrument()
    assert analytics.call_counts[f"{name}.fib"] == 4 * 465


def test_a_dropped_function_keeps_its_identity_and_stops_counting(
        module: Callable[[], types.ModuleType]) -> None:
    from callmetrics._zerocode.instrument import _BY_ANALYTICS  # noqa: PLC0415  # the live one

    analytics = Analytics()
    name = module.name  # type: ignore[attr-defined]
    analytics.instrument(name)
    try:
        mod = module()
        fast = mod.fast
        handlers = {fast: "handler"}
        callbacks = [fast]
        mod.fast(1)
        (inst,) = _BY_ANALYTICS[id(analytics)]
        assert inst.drop({f"{name}.fast"}) == 1
        assert mod.fast is fast
        assert mod.REGISTRY["fast"] is fast
        assert handlers[mod.fast] == "handler"
        callbacks.remove(mod.fast)
        for i in range(5):
            mod.fast(i)
        mod.fib(3)
    finally:
        analytics.uninstrument()
    assert analytics.call_counts == {f"{name}.fast": 1, f"{name}.fib": 5,
                                     f"{name}.register": 1}


def test_recursion_goes_as_deep_as_plain_python(module: Callable[[], types.ModuleType]) -> None:
    analytics = Analytics()
    name = module.name  # type: ignore[attr-defined]
    source = "def deep(n):\n    return 0 if n == 0 else 1 + deep(n - 1)\n"
    path = Path(sys.path[0]) / f"{name}.py"
    path.write_text(source)
    analytics.instrument(name)
    try:
        mod = module()
        depth = sys.getrecursionlimit() - len(_frames()) - 20
        assert mod.deep(depth) == depth  # no frame added, no recursion limit raised
    finally:
        analytics.uninstrument()
    assert analytics.call_counts[f"{name}.deep"] == depth + 1


def _frames() -> list[Any]:
    frames, frame = [], sys._getframe()
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back  # type: ignore[assignment]  # None ends the loop
    return frames


def test_steady_state_calls_allocate_nothing_tracemalloc_sees(
        module: Callable[[], types.ModuleType]) -> None:
    if speedups is None:
        pytest.skip("the pure-Python path allocates the buffer's items")
    analytics = Analytics()
    name = module.name  # type: ignore[attr-defined]
    analytics.instrument(name)
    try:
        mod = module()
        for i in range(5_000):  # the stack and the buffer reach their size
            mod.fast(i)
        assert analytics.call_counts  # a read drains the buffer: no drain in the loop below
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(500):
                mod.fast(i)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    finally:
        analytics.uninstrument()
    assert grown < 1_000  # nothing per call (500 calls of 24 bytes would be 12,000)


def test_no_free_tool_id_falls_back_to_wrapping(module: Callable[[], types.ModuleType],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    mon: Any = sys.monitoring  # type: ignore[attr-defined]  # 3.12+, checked by pytestmark
    taken = [i for i in (2, 3, 4, 5) if mon.get_tool(i) is None]
    for tool_id in taken:
        mon.use_tool_id(tool_id, "someone else")
    analytics = Analytics()
    name = module.name  # type: ignore[attr-defined]
    try:
        analytics.instrument(name)
        try:
            mod = module()
            assert hasattr(mod.fast, "__callmetrics_owner__")  # wrapped
            mod.fast(1)
        finally:
            analytics.uninstrument()
    finally:
        for tool_id in taken:
            mon.free_tool_id(tool_id)
    assert "no free sys.monitoring tool id" in capsys.readouterr().err
    assert analytics.call_counts == {f"{name}.fast": 1}
