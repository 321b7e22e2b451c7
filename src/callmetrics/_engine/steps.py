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
step.  The pure-Python twin below (``CoroutineSteps``, ``GeneratorSteps``; the
callable is ``stepping.Stepping``) behaves the same; its methods add one frame per
step (also to a traceback passing through).  The C callable hands calls to the
Python one while observers are registered.  Async generators: ``asteps``.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

from callmetrics._engine.callers import frames_caller, frames_push
from callmetrics._engine.ends import end_observers, start_observers

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats
    from callmetrics._engine.ends import CallObserver, Runtime

__all__ = ["CLOSE", "DONE", "NEW", "SEND", "STARTED", "THROW", "CoroutineSteps",
           "GeneratorSteps", "StepsCall", "credit", "resume"]

# A call's state, and how a step resumes the original.
NEW: Final = 0
STARTED: Final = 1
DONE: Final = 2
SEND: Final = 0
THROW: Final = 1
CLOSE: Final = 2


def credit(stats: Any, caller: Any, inactive: float) -> None:
    """Credit ``inactive`` suspended seconds of a call of ``stats`` made by ``caller``."""
    idle = stats.idle
    idle.inactive += inactive
    idle.gap += inactive
    if caller is not None and inactive:
        theirs = getattr(caller, "idle", None)
        if theirs is not None:
            theirs.gap -= inactive


class StepsCall:
    """What every proxy shares: its call's state and end, and the original's attributes."""

    __slots__ = ("_active", "_inner", "_observed", "_rt", "_running", "_start", "_state",
                 "_stats")

    def __init__(self, inner: Any, stats: FunctionStats, rt: Runtime) -> None:
        """Wrap ``inner``, the object a call of the function of ``stats`` returned."""
        self._inner = inner
        self._stats = stats
        self._rt = rt
        self._start = 0.0
        self._active = 0.0
        self._state = NEW
        self._running = False
        self._observed: list[tuple[CallObserver, object]] | None = None

    def __getattr__(self, name: str) -> Any:
        """Read what the proxy lacks (``cr_frame``, ``gi_frame``, ``__name__``...) off the original.

        Only reached for names the proxy does not have itself.
        """
        if name in StepsCall.__slots__:  # not set yet (a failed __init__)
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        """Name the original object."""
        return f"<tracked {self._inner!r}>"

    def _paused(self, at: int, began: float) -> None:
        """The step begun at ``began`` suspended the call (pushed at ``at``)."""
        self._active += perf_counter() - began
        self._running = False
        frames_caller(self._stats, at)  # truncate the stack back to where the step pushed

    def _ended(self, at: int, began: float, exc: BaseException | None) -> None:
        """The step begun at ``began`` ended the call (``exc``: it raised)."""
        self._active += perf_counter() - began
        self._running = False
        self._state = DONE
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


class _Steps(StepsCall):
    """What the coroutine and generator proxies share: their steps."""

    __slots__ = ()

    def send(self, value: Any) -> Any:
        """Resume with ``value``: one timed step."""
        return self._step(SEND, value)

    def __next__(self) -> Any:
        """Resume with None: one timed step."""
        return self._step(SEND, None)

    def throw(self, *args: Any) -> Any:
        """Raise an exception where it is suspended: one timed step."""
        return self._step(THROW, args)

    def close(self) -> Any:
        """End it (a success if it had started); return what the original's ``close`` returns."""
        return self._step(CLOSE, None)

    def __del__(self) -> None:
        """Dropped while started: close it (so the call is recorded), as a generator is."""
        if getattr(self, "_state", NEW) == STARTED and not self._running:
            self.close()

    def _step(self, how: int, arg: Any) -> Any:
        inner = self._inner
        state = self._state
        if state == DONE or self._running:  # the original answers
            return resume(inner, how, arg)
        if state == NEW:
            if how == CLOSE:  # never started: no call
                self._state = DONE
                return inner.close()
            self._state = STARTED
            rt = self._rt
            if rt.observers:
                self._observed = start_observers(rt, self._stats)
        stats = self._stats
        self._running = True
        at = frames_push(stats)
        began = perf_counter()
        if state == NEW:
            self._start = began
        try:
            if how == SEND:
                result = inner.send(arg)
            elif how == THROW:
                result = inner.throw(*arg)
            else:
                result = inner.close()
        except (StopIteration, GeneratorExit):
            self._ended(at, began, None)
            raise
        except BaseException as exc:
            self._ended(at, began, exc)
            raise
        if how == CLOSE:
            self._ended(at, began, None)
            return result
        self._active += perf_counter() - began
        self._running = False
        frames_caller(stats, at)  # truncate the stack back to where the step pushed
        return result

def resume(inner: Any, how: int, arg: Any) -> Any:
    if how == SEND:
        return inner.send(arg)
    if how == THROW:
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
