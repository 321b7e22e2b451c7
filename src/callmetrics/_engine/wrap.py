"""The hot path: wrappers for sync, async, generator and async-generator functions.

Coroutine, generator and async generator functions get a step proxy (``stepping``,
``steps``, ``asteps``: their active time).

Everything that can be decided at decoration time is (the kind of callable, its
recorded name, the buffer it appends to).  A successful call then costs two clock
reads, one ``buffer.extend((stats, start, duration))`` (one atomic C call: see
``_recorder.py``), a length check and one dict lookup for the cached logging
decision.  Aggregation happens in bulk, later (``Recorder._fold``).  How calls end
(a failure described, a full buffer drained, a line logged) is ``_ends.Ends``.

``SystemExit`` with code 0 or None is a normal end, recorded as a success; every
other exception, ``KeyboardInterrupt`` and ``asyncio.CancelledError`` included, is a
failure (the call did not return), and always propagates untouched.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from callmetrics._engine import sinks
from callmetrics._engine.callers import STACK, frames_push, key_for, unwind
from callmetrics._engine.ends import (
    BACKLOG,
    CallObserver,
    Ends,
    Runtime,
    end_observers,
    start_observers,
)
from callmetrics._engine.logs import CACHE_KEY
from callmetrics._engine.stepping import wrap_steps

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats

# BACKLOG, CallObserver, Ends, Runtime and the observer helpers live in _ends; they
# are also reached from here, where the wrappers that use them are.
__all__ = [
    "BACKLOG",
    "OWNER_ATTRIBUTE",
    "CallObserver",
    "Ends",
    "Runtime",
    "binds",
    "callable_kind",
    "callable_module",
    "end_observers",
    "recorded_name",
    "start_observers",
    "stop_tracking",
    "stoppable",
    "wrap",
]


def recorded_name(func: object) -> str:
    """Return the key a callable is recorded under: ``__qualname__`` without ``<locals>``."""
    target = _unwrap(func)
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if not isinstance(qualname, str):
        qualname = type(target).__qualname__
    parts = [part for part in qualname.split(".") if part != "<locals>"]
    return ".".join(parts) or qualname


def callable_module(func: object) -> str:
    """Return the module that defines a callable (its class's module for objects)."""
    target = _unwrap(func)
    module = getattr(target, "__module__", None)
    if not isinstance(module, str):
        module = type(target).__module__
    return module


def _unwrap(func: object) -> object:
    while True:
        if isinstance(func, functools.partial):
            func = func.func
        elif isinstance(func, classmethod | staticmethod):
            func = func.__func__
        else:
            return func


def callable_kind(func: Callable[..., Any]) -> str:
    """Classify a callable as ``sync``, ``async``, ``gen`` or ``agen``."""
    probes: list[object] = [func]
    target = _unwrap(func)
    if not inspect.isroutine(target) and not inspect.isclass(target):
        call = getattr(type(target), "__call__", None)  # noqa: B004  # we want the method itself
        if call is not None:
            probes.append(call)
    for probe in probes:
        if inspect.isasyncgenfunction(probe):
            return "agen"
        if inspect.isgeneratorfunction(probe):
            return "gen"
        if inspect.iscoroutinefunction(probe):
            return "async"
    return "sync"


def _observed_sync(rt: Runtime, func: Callable[..., Any], stats: FunctionStats,
                   args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    started = start_observers(rt, stats)
    at = frames_push(stats)
    t0 = perf_counter()
    try:
        result = func(*args, **kwargs)
    except BaseException as exc:
        end_observers(started, stats, rt.ends.failed(stats, t0, exc, at), exc)
        raise
    end_observers(started, stats, rt.ends.ok(stats, t0, at), None)
    return result


def _wrap_sync(func: Callable[..., Any], stats: FunctionStats, rt: Runtime) -> Callable[..., Any]:
    # Every name below is a closure cell of the wrapper (40 bytes each per function);
    # the clock and the cache key are module globals, as fast to load in 3.11+.
    ends = rt.ends
    buf, extend, cache = ends.buffer, ends.extend, ends.cache
    after, failed, refresh = ends.hooks
    observers = rt.observers
    edges, nested = stats.edges, stats.nested

    # The body below is the library's hot path; it repeats Ends.ok() inline on
    # purpose, since one more Python call there would add a quarter of its cost.
    # The thread's stack of tracked calls (_callers) is the pure-Python one: with the
    # accelerator this wrapper only runs observed calls (through frames_push).
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if observers:  # observers registered, or this wrapper stopped tracking
            if observers is _PASS:  # type: ignore[comparison-overlap]  # stop_tracking() set the cell
                return func(*args, **kwargs)
            return _observed_sync(rt, func, stats, args, kwargs)
        stack = STACK.calls
        stack.append(stats)
        t0 = perf_counter()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            failed(stats, t0, exc, len(stack) - 1)
            raise
        duration = perf_counter() - t0
        top = stack.pop()
        if top is not stats:  # something was left above this call's entry (rare)
            unwind(stack, top, stats)
        caller = stack[-1]
        if caller is None:  # called from untracked code
            extend((stats, t0, duration))
        else:  # called by a tracked call: buffered under its edge
            if stats in stack:
                key = nested.get(caller) or key_for(stats, caller, False, duration)
            else:
                key = edges.get(caller) or key_for(stats, caller, True, duration)
            extend((key, t0, duration))
        try:
            if len(buf) >= cache[CACHE_KEY]:
                after(stats, duration, cache[CACHE_KEY])
        except KeyError:  # logging changed a level and cleared its caches: decide again
            after(stats, duration, refresh())
        return result

    return wrapper


class _PassThrough:
    """Stands in for a stopped sync wrapper's observers.

    Truthy, so that the check the wrapper already makes per call is the only one (a
    tracked call pays nothing more).
    """

    __slots__ = ()


_PASS = _PassThrough()
# The code every pure-Python sync wrapper runs, and where its observers cell sits.
_SYNC_CODE = next(const for const in _wrap_sync.__code__.co_consts
                  if isinstance(const, types.CodeType) and const.co_name == "wrapper")
_OBSERVERS_CELL = _SYNC_CODE.co_freevars.index("observers")


def _sync_wrapper(wrapper: object) -> Any:
    """The stoppable wrapper inside ``wrapper``: sync or stepping (None for other kinds)."""
    target = wrapper.__func__ if isinstance(wrapper, staticmethod) else wrapper
    if hasattr(type(target), "_callmetrics_tracking"):  # C wrappers, the Python Stepping
        return target
    # type(), not isinstance(): the C wrapper answers __class__ as a function's
    if type(target) is types.FunctionType and target.__code__ is _SYNC_CODE:
        return target
    return None


def stoppable(wrapper: object) -> bool:
    """Whether :func:`stop_tracking` can turn ``wrapper`` into a pass-through.

    Sync wrappers and the stepping callables of coroutine, generator and async
    generator functions can.
    """
    return _sync_wrapper(wrapper) is not None


def stop_tracking(wrapper: object) -> bool:
    """Turn a sync wrapper or a stepping callable into a pass-through, in place.

    It then calls its function and records nothing, and stays the very object every
    reference holds (dict keys, lists, ``is``).

    The C wrapper swaps its vectorcall (its tracked calls never read a flag); the
    pure-Python one has its observers cell set to a marker its per-call ``if
    observers`` already tests.  A stopped stepping callable (``stepping``) returns the
    original's own coroutine or (async) generator, without a proxy.  Calls already
    running finish tracked.  Returns False (nothing changed) for anything else.
    """
    target = _sync_wrapper(wrapper)
    if target is None:
        return False
    if type(target) is types.FunctionType:
        target.__closure__[_OBSERVERS_CELL].cell_contents = _PASS  # type: ignore[index]  # a closure: its code has free variables
    else:
        target._callmetrics_tracking = False
    return True


def _wrap_agen(func: Callable[..., Any], stats: FunctionStats, rt: Runtime) -> Any:
    return wrap_steps(func, stats, rt, "agen")


def _wrap_async(func: Callable[..., Any], stats: FunctionStats, rt: Runtime) -> Any:
    return wrap_steps(func, stats, rt, "async")


def _wrap_gen(func: Callable[..., Any], stats: FunctionStats, rt: Runtime) -> Any:
    return wrap_steps(func, stats, rt, "gen")


def _function_like(wrapper: Any, func: Callable[..., Any]) -> None:
    """Let ``inspect``'s iscoroutinefunction and its kin see the original.

    ``iscoroutinefunction``, ``isgeneratorfunction`` and ``isasyncgenfunction`` read
    the flags of ``__code__`` on anything that looks like a function (a callable with
    ``__name__``, ``__code__``, ``__defaults__``, ``__kwdefaults__``): the stepping
    callable gets the original's (its ``__call__``'s for an object).
    """
    target = _unwrap(func)
    code = getattr(target, "__code__", None)
    if not isinstance(code, types.CodeType):
        target = getattr(type(target), "__call__", None)  # noqa: B004  # the method itself
        code = getattr(target, "__code__", None)
    if isinstance(code, types.CodeType):
        wrapper.__code__ = code
        wrapper.__defaults__ = getattr(target, "__defaults__", None)
        wrapper.__kwdefaults__ = getattr(target, "__kwdefaults__", None)


_BUILDERS = {"sync": _wrap_sync, "async": _wrap_async, "gen": _wrap_gen, "agen": _wrap_agen}
# accel: sync calls run through the C wrapper when the accelerator is built.
_BUILDERS["sync"] = sinks.sync_builder(_wrap_sync)


# Set on every wrapper: the instance that made it (decorating it again is a no-op).
OWNER_ATTRIBUTE = "__callmetrics_owner__"


def binds(func: object) -> bool:
    """Whether ``func`` becomes a bound method when stored as a class attribute.

    Functions and method descriptors (``str.upper``) bind; a bound method is
    already bound (its ``__get__`` returns it unchanged); partials, builtins,
    callable objects and classes have no ``__get__`` at all.
    """
    if isinstance(func, types.MethodType):
        return False
    if isinstance(func, functools.partial) and sys.version_info < (3, 14):
        # 3.13 gave partial a __get__ that returns it unchanged (with a FutureWarning);
        # partials bind from 3.14 on.
        return False
    return hasattr(type(func), "__get__")


def wrap(func: Callable[..., Any], kind: str, stats: FunctionStats, rt: Runtime) -> Any:
    """Return the tracking wrapper of ``func``, with its metadata and signature kept.

    The wrapper binds as ``func`` binds: a plain function wrapper becomes a method
    when stored on a class, so a sync callable that does not bind (a
    ``functools.partial``, a builtin such as ``len``, a callable object, a class) gets
    a ``staticmethod`` around its wrapper, which is callable and never binds.  Async
    and generator wrappers stay functions, so that ``inspect.iscoroutinefunction``
    and friends keep recognising them.
    """
    stats.kind = kind
    wrapper = _BUILDERS[kind](func, stats, rt)
    functools.update_wrapper(wrapper, func)
    if type(wrapper) is types.FunctionType and isinstance(func, types.FunctionType):
        # A pure-Python wrapper reads its function's defaults (they do not change what
        # its own (*args, **kwargs) code does); the C wrapper forwards them, reads and
        # writes, with __code__, __globals__, __closure__ (see tracked.c).
        wrapper.__defaults__ = func.__defaults__
        wrapper.__kwdefaults__ = func.__kwdefaults__
    if not hasattr(func, "__name__"):  # functools.partial, callable objects
        wrapper.__name__ = stats.name.rsplit(".", 1)[-1]
        wrapper.__qualname__ = stats.name
    if kind in ("async", "gen", "agen"):
        _function_like(wrapper, func)
    result: Any = wrapper
    if kind == "sync" and not binds(func):
        result = staticmethod(wrapper)
    setattr(result, OWNER_ATTRIBUTE, rt)
    return result
