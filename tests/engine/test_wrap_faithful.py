"""A sync wrapper answers as its function, and stops tracking in place.

``callmetrics run`` on 3.11 replaces a program's functions with these wrappers, so a
program reading its functions' attributes must read the function's own; a wrapper
that stops tracking (pruned, or its instrumentation undone) must stay the very
object every reference holds.  Each test runs on both hot paths: the C wrapper and
the pure-Python one (whose ``__code__``, ``__globals__`` and ``__closure__`` are its
own: a Python function runs the code it reports; the README lists this).
"""

from __future__ import annotations

import asyncio
import copy
import doctest
import functools
import inspect
import pickle
import sys
import types
import typing
from collections.abc import Callable
from typing import Any

import pytest

from callmetrics import Analytics
from callmetrics._engine import accel as _accel
from callmetrics._engine import sinks as _sinks
from callmetrics._engine import wrap as _wrap
from callmetrics._engine.wrap import stop_tracking, stoppable

OFFSET = 5


def subject(x: int, y: int = 2, *, z: int = 3) -> int:
    """Add three numbers and the offset.

    >>> subject(1)
    11
    """
    return x + y + z + OFFSET


def _closure(k: int) -> Callable[[int], int]:
    def add(x: int) -> int:
        return x + k

    return add


@pytest.fixture(params=["c", "python"])
def hot_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sync wrapper under test: the C one (skipped without it) or the Python one."""
    if request.param == "c" and _accel.IMPLEMENTATION != "c":
        pytest.skip(f"the C accelerator is not in use ({_accel.REASON})")
    if request.param == "python":
        monkeypatch.setitem(_wrap._BUILDERS, "sync", _wrap._wrap_sync)
    return str(request.param)


def _track(analytics: Analytics, func: Callable[..., Any]) -> Any:
    return analytics.track("unit")(func)


def test_reads_answer_as_the_function(hot_path: str) -> None:
    """Name, defaults, annotations, signature and source read as the function's own."""
    wrapper = _track(Analytics(), subject)
    assert wrapper(1) == 11
    assert (wrapper.__name__, wrapper.__qualname__, wrapper.__module__) == (
        "subject", "subject", __name__)
    assert wrapper.__doc__ == subject.__doc__
    assert wrapper.__defaults__ == (2,)
    assert wrapper.__kwdefaults__ == {"z": 3}
    assert wrapper.__annotations__ == subject.__annotations__
    assert typing.get_type_hints(wrapper) == {"x": int, "y": int, "z": int, "return": int}
    assert inspect.signature(wrapper) == inspect.signature(subject)
    assert inspect.getsource(wrapper) == inspect.getsource(subject)
    assert inspect.unwrap(wrapper) is subject
    assert not inspect.isgeneratorfunction(wrapper)
    assert not inspect.iscoroutinefunction(wrapper)
    assert copy.copy(wrapper) is wrapper
    assert copy.deepcopy(wrapper) is wrapper
    if hot_path == "c":
        assert wrapper.__code__ is subject.__code__
        assert wrapper.__code__.co_varnames == ("x", "y", "z")
        assert wrapper.__globals__ is globals()
        assert wrapper.__builtins__ is subject.__builtins__
        assert wrapper.__closure__ is None
        assert isinstance(wrapper, types.FunctionType)
        assert inspect.isfunction(wrapper)
        assert inspect.getfile(wrapper) == __file__
        assert inspect.getfullargspec(wrapper) == inspect.getfullargspec(subject)
    else:
        # A Python function runs the code it reports: the wrapper's own.
        assert wrapper.__code__ is not subject.__code__
        assert wrapper.__globals__ is vars(_wrap)
        assert inspect.getfile(wrapper) == _wrap.__file__
        assert inspect.getfullargspec(wrapper).varargs == "args"


def test_a_closure_s_cells_are_the_function_s_on_the_c_wrapper(hot_path: str) -> None:
    """``f.__closure__[0].cell_contents`` reads the captured value (C wrapper)."""
    add = _closure(7)
    wrapper = _track(Analytics(), add)
    assert wrapper(1) == 8
    if hot_path == "c":
        assert wrapper.__closure__ is add.__closure__
        assert add.__closure__ is not None
        assert add.__closure__[0].cell_contents == 7
    else:
        assert wrapper.__closure__ != add.__closure__  # the wrapper's own cells


def test_writes_reach_the_function_so_it_computes_the_same(hot_path: str) -> None:
    """Writing ``__defaults__``/``__kwdefaults__``/``__code__`` on the C wrapper writes them.

    They are the function's own: the program computes what it would compute unwrapped.
    """
    if hot_path != "c":
        pytest.skip("a pure-Python wrapper's own attributes cannot reach its function "
                    "(the README lists this)")

    def scale(x: int, factor: int = 2, *, shift: int = 0) -> int:
        return x * factor + shift

    def other(x: int, factor: int = 2, *, shift: int = 0) -> int:
        return -x

    wrapper = _track(Analytics(), scale)
    wrapper.__defaults__ = (10,)
    wrapper.__kwdefaults__ = {"shift": 1}
    assert scale.__defaults__ == (10,)
    assert scale.__kwdefaults__ == {"shift": 1}
    assert wrapper(3) == scale(3) == 31
    wrapper.__annotations__ = {"x": str}
    assert scale.__annotations__ == {"x": str}
    wrapper.__module__ = "elsewhere"
    assert scale.__module__ == "elsewhere"
    wrapper.__code__ = other.__code__
    assert wrapper(3) == scale(3) == -3
    with pytest.raises(AttributeError):
        wrapper.__globals__ = {}  # read-only, as on a function
    with pytest.raises(AttributeError):
        wrapper.__class__ = int


def test_functools_inspect_and_doctest_see_the_function(hot_path: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Library code that reads a function through its wrapper keeps working."""
    analytics = Analytics()
    wrapper = _track(analytics, subject)

    @functools.wraps(wrapper)
    def again(*args: Any, **kwargs: Any) -> Any:
        return wrapper(*args, **kwargs)

    assert again.__name__ == "subject"
    assert inspect.signature(again) == inspect.signature(subject)

    @functools.singledispatch
    def show(value: object) -> str:
        return "thing"

    def show_int(value: int) -> str:
        return "int"

    show.register(_track(analytics, show_int))  # the dispatch type read from annotations
    assert (show(1), show("x")) == ("int", "thing")

    def echo(self: object, value: int) -> tuple[object, int]:
        return self, value

    class Holder:
        method = _track(analytics, echo)

    holder = Holder()
    assert holder.method(4) == Holder.method(holder, 4) == (holder, 4)

    # doctest finds and runs a tracked function's examples.
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "subject", wrapper)
    found = [test for test in doctest.DocTestFinder().find(this)
             if test.name.endswith(".subject")]
    assert len(found) == 1
    assert doctest.DocTestRunner().run(found[0]).failed == 0
    assert analytics.call_counts["subject"] == 1


def test_a_stopped_wrapper_passes_through_and_stays_the_same_object(hot_path: str) -> None:
    """Stopped, a wrapper calls its function and records nothing.

    Every reference to it (dict keys, list items, ``is``, a class attribute) keeps working.
    """
    analytics = Analytics()

    def fast(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return x

    wrapper = _track(analytics, fast)
    registry = {wrapper: "fast"}
    callbacks = [wrapper]

    class Holder:
        method = wrapper

    assert [wrapper(i) for i in range(3)] == [0, 1, 2]
    assert stoppable(wrapper)
    assert stop_tracking(wrapper)
    assert [wrapper(i) for i in range(5)] == [0, 1, 2, 3, 4]
    assert wrapper(x=7) == 7
    with pytest.raises(ValueError, match="negative") as caught:
        wrapper(-1)
    assert caught.value.__traceback__ is not None
    assert isinstance(Holder().method, types.MethodType)  # binds as before
    assert registry[wrapper] == "fast"
    assert callbacks.index(wrapper) == 0
    callbacks.remove(wrapper)
    name = "test_a_stopped_wrapper_passes_through_and_stays_the_same_object.fast"
    assert analytics.call_counts == analytics.success_counts == {name: 3}  # the -1 unseen
    if hot_path == "c":
        assert wrapper._callmetrics_tracking is False
    assert stop_tracking(wrapper)  # stopping twice is harmless


@pytest.mark.parametrize("stepping", ["c", "python"])
def test_stopped_coroutine_and_generator_functions_return_the_original_s_object(
        stepping: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped, a coroutine's or generator's stepping callable is a pass-through.

    Its calls return the original's own coroutine or generator (no proxy, nothing
    recorded), and it stays the object every reference holds.
    """
    if stepping == "c" and _accel.IMPLEMENTATION != "c":
        pytest.skip(f"the C accelerator is not in use ({_accel.REASON})")
    if stepping == "python":
        monkeypatch.setattr(_sinks, "stepping", lambda *_: None)  # no C stepping callable
    analytics = Analytics()

    async def coro(x: int) -> int:
        return x

    def gen(n: int) -> typing.Iterator[int]:
        yield from range(n)

    wrapped_coro, wrapped_gen = _track(analytics, coro), _track(analytics, gen)
    registry = {wrapped_coro: "coro", wrapped_gen: "gen"}
    assert asyncio.run(wrapped_coro(1)) == 1
    assert list(wrapped_gen(2)) == [0, 1]
    for wrapper in (wrapped_coro, wrapped_gen):
        assert stoppable(wrapper)
        assert stop_tracking(wrapper)
        assert wrapper._callmetrics_tracking is False
    made = wrapped_gen(3)
    assert type(made) is types.GeneratorType  # the original's own generator
    assert list(made) == [0, 1, 2]
    running = wrapped_coro(2)
    assert type(running) is types.CoroutineType
    assert asyncio.run(running) == 2
    assert registry[wrapped_gen] == "gen"
    assert inspect.isgeneratorfunction(wrapped_gen)
    assert analytics.call_counts == {
        "test_stopped_coroutine_and_generator_functions_return_the_original_s_object.coro": 1,
        "test_stopped_coroutine_and_generator_functions_return_the_original_s_object.gen": 1}


@pytest.mark.parametrize("stepping", ["c", "python"])
def test_a_stopped_async_generator_function_returns_the_original_s_object(
        stepping: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped, an async generator's stepping callable passes through as well."""
    if stepping == "c" and _accel.IMPLEMENTATION != "c":
        pytest.skip(f"the C accelerator is not in use ({_accel.REASON})")
    if stepping == "python":
        monkeypatch.setattr(_sinks, "stepping", lambda *_: None)  # no C stepping callable
    analytics = Analytics()

    async def agen(n: int) -> typing.AsyncIterator[int]:
        for i in range(n):
            yield i

    async def collect(made: typing.AsyncIterator[int]) -> list[int]:
        return [item async for item in made]

    wrapper = _track(analytics, agen)
    held = [wrapper]
    assert asyncio.run(collect(wrapper(2))) == [0, 1]
    assert stoppable(wrapper)
    assert stop_tracking(wrapper)
    made = wrapper(3)
    assert type(made) is types.AsyncGeneratorType  # the original's own async generator
    assert asyncio.run(collect(made)) == [0, 1, 2]
    assert held[0] is wrapper
    assert inspect.isasyncgenfunction(wrapper)
    assert analytics.call_counts == {
        "test_a_stopped_async_generator_function_returns_the_original_s_object.agen": 1}


def test_pickling_by_reference_still_works_once_stopped(hot_path: str) -> None:
    """A stopped wrapper still pickles as its function does (by module and name)."""
    wrapper = _track(Analytics(), subject)
    wrapper.__qualname__ = "_PICKLED"
    globals()["_PICKLED"] = wrapper
    try:
        stop_tracking(wrapper)
        assert pickle.loads(pickle.dumps(wrapper)) is wrapper  # noqa: S301  # our own bytes
    finally:
        del globals()["_PICKLED"]
