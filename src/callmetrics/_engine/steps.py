"""Coroutines and generators, step by step: the proxy that gives their active time.

A tracked coroutine or generator function is replaced by a callable that calls the
original and wraps the object it returns in a proxy.  Each resume of the proxy
(``await``/``am_send``, ``__next__``, ``send``, ``throw``, ``close``) is one *step*,
from the resume to the next suspension or the end: for its length the function is
on the thread's stack of tracked calls (``callers``), so calls made during the step
have it as their caller and an awaited tracked coroutine nests under its awaiter, and
its seconds add to the call's *active* time.  The call starts at its first step and
ends at the step that returns or raises; it is recorded then, with its wall duration,
as any call, and its suspended seconds (duration less active time) are credited to
its function's ``Idle`` and taken off its nearest tracked caller's ``gap``: active
time = total - inactive, active self time = self time - gap (``attribution``).

A call closed before its end (``GeneratorExit``, ``close()``) is a success; a proxy
dropped while started is closed first (so recorded), as a generator is.  Exceptions,
``StopIteration`` values and return values pass through as they are.

With the accelerator the callable and the proxy are C types (``_speedups.stepping``,
``CoroSteps``, ``GenSteps``; src/speedups/steps.c), which add no Python frame to a
step.  The pure-Python twin below (``Stepping``, ``CoroutineSteps``,
``GeneratorSteps``) behaves the same; its methods add one frame per step (also to a
traceback passing through).  The C callable hands calls to the Python one while
observers are registered.  Async generators keep their wrapper (``wrap``): their
steps are not timed yet.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

from callmetrics._engine import sinks
from callmetrics._engine.callers import frames_caller, frames_push
from callmetrics._engine.ends import end_observers, start_observers

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats
    from callmetrics._engine.ends import CallObserver, Runtime

__all__ = ["CoroutineSteps", "GeneratorSteps", "Stepping", "credit", "wrap_steps"]

_NEW: Final = 0
_STARTED: Final = 1
_DONE: Final = 2
_SEND: Final = 0
_THROW: Final = 1
_CLOSE: Final = 2


def credit(stats: Any, caller: Any, inactive: float) -> None:
    """Credit ``inactive`` suspended seconds of a call of ``stats`` made by ``caller``."""
    idle = stats.idle
    idle.inactive += inactive
    idle.gap += inactive
    if caller is not None and inactive:
        theirs = getattr(caller, "idle", None)
        if theirs is not None:
            theirs.gap -= inactive


class _Steps:
    """What both proxies share: the steps, and the attributes read off the original."""

    __slots__ = ("_active", "_inner", "_observed", "_rt", "_running", "_start", "_state",
                 "_stats")

    def __init__(self, inner: Any, stats: FunctionStats, rt: Runtime) -> None:
        """Wrap ``inner``, the object a call of the function of ``stats`` returned."""
        self._inner = inner
        self._stats = stats
        self._rt = rt
        self._start = 0.0
        self._active = 0.0
        self._state = _NEW
        self._running = False
        self._observed: list[tuple[CallObserver, object]] | None = None

    def send(self, value: Any) -> Any:
        """Resume with ``value``: one timed step."""
        return self._step(_SEND, value)

    def __next__(self) -> Any:
        """Resume with None: one timed step."""
        return self._step(_SEND, None)

    def throw(self, *args: Any) -> Any:
        """Raise an exception where it is suspended: one timed step."""
        return self._step(_THROW, args)

    def close(self) -> Any:
        """End it (a success if it had started); return what the original's ``close`` returns."""
        return self._step(_CLOSE, None)

    def __getattr__(self, name: str) -> Any:
        """Read what the proxy lacks (``cr_frame``, ``gi_frame``, ``__name__``...) off the original.

        Only reached for names the proxy does not have itself.
        """
        if name in _Steps.__slots__:  # not set yet (a failed __init__)
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        """Name the original object."""
        return f"<tracked {self._inner!r}>"

    def __del__(self) -> None:
        """Dropped while started: close it (so the call is recorded), as a generator is."""
        if getattr(self, "_state", _NEW) == _STARTED and not self._running:
            self.close()

    def _step(self, how: int, arg: Any) -> Any:
        inner = self._inner
        state = self._state
        if state == _DONE or self._running:  # the original answers
            return _resume(inner, how, arg)
        if state == _NEW:
            if how == _CLOSE:  # never started: no call
                self._state = _DONE
                return inner.close()
            self._state = _STARTED
            rt = self._rt
            if rt.observers:
                self._observed = start_observers(rt, self._stats)
        stats = self._stats
        self._running = True
        at = frames_push(stats)
        began = perf_counter()
        if state == _NEW:
            self._start = began
        try:
            if how == _SEND:
                result = inner.send(arg)
            elif how == _THROW:
                result = inner.throw(*arg)
            else:
                result = inner.close()
        except (StopIteration, GeneratorExit):
            self._ended(at, began, None)
            raise
        except BaseException as exc:
            self._ended(at, began, exc)
            raise
        if how == _CLOSE:
            self._ended(at, began, None)
            return result
        self._active += perf_counter() - began
        self._running = False
        frames_caller(stats, at)  # truncate the stack back to where the step pushed
        return result

    def _ended(self, at: int, began: float, exc: BaseException | None) -> None:
        """The step begun at ``began`` ended the call (``exc``: it raised)."""
        self._active += perf_counter() - began
        self._running = False
        self._state = _DONE
        stats = self._stats
        caller, _ = frames_caller(stats, at)
        ends = self._rt.ends
        if exc is None:
            duration = ends.ok(stats, self._start, at)
        else:
            duration = ends.failed(stats, self._start, exc, at)
        credit(stats, caller, duration - self._active)
        if self._observed:
            end_observers(self._observed, stats, duration, exc)


def _resume(inner: Any, how: int, arg: Any) -> Any:
    if how == _SEND:
        return inner.send(arg)
    if how == _THROW:
        return inner.throw(*arg)
    return inner.close()


class CoroutineSteps(_Steps):
    """A tracked coroutine: awaitable, each step timed."""

    __slots__ = ()

    def __await__(self) -> Any:
        """Return itself: ``await`` drives its steps."""
        return self


class GeneratorSteps(_Steps):
    """A tracked generator: an iterator, each step timed."""

    __slots__ = ()

    def __iter__(self) -> GeneratorSteps:
        """Return itself."""
        return self


class Stepping:
    """The pure-Python callable replacing a coroutine or generator function.

    It binds as a function does; ``wrap`` gives it the original's ``__code__``,
    ``__defaults__`` and ``__kwdefaults__`` so that ``inspect.iscoroutinefunction``
    and ``isgeneratorfunction`` answer as for the original.
    """

    __slots__ = ("__dict__", "__weakref__", "_callmetrics_tracking", "_func", "_rt", "_stats",
                 "_steps")

    def __init__(self, func: Callable[..., Any], stats: FunctionStats, rt: Runtime,
                 generator: bool) -> None:
        """Wrap ``func``, a coroutine function or (``generator``) a generator function."""
        self._func = func
        self._stats = stats
        self._rt = rt
        self._steps = GeneratorSteps if generator else CoroutineSteps
        # False (wrap.stop_tracking): a pass-through, returning the original's own object.
        self._callmetrics_tracking = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the original; return its coroutine or generator in a proxy."""
        if not self._callmetrics_tracking:
            return self._func(*args, **kwargs)
        return self._steps(self._func(*args, **kwargs), self._stats, self._rt)

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        """Bind as a function does: a bound method on an instance, itself on the class."""
        return self if obj is None else types.MethodType(self, obj)

    def __reduce__(self) -> str:
        """Pickle by reference (module and qualified name), as functions are."""
        return str(self.__dict__.get("__qualname__", ""))

    def __repr__(self) -> str:
        """Name the function."""
        return f"<tracked function {self.__dict__.get('__qualname__', '?')}>"


def wrap_steps(func: Callable[..., Any], stats: FunctionStats, rt: Runtime,
               generator: bool) -> Any:
    """Return the stepping callable of ``func``: the C one when built, else the Python one."""
    stats.stepped = True
    python = Stepping(func, stats, rt, generator)
    made = sinks.stepping(func, stats, rt, python, generator)
    return python if made is None else made
