"""Async generators, step by step: the proxy that gives their active time.

A tracked async generator function is replaced by a callable (``stepping``) that
calls the original and wraps the async generator it returns in an
``AsyncGeneratorSteps``.  Its ``__aiter__`` returns it; ``__anext__()``,
``asend(v)``, ``athrow(...)`` and ``aclose()`` call the original's and wrap the
awaitable it returns in an ``AsyncStep``.  Each time such an awaitable is stepped
(``send``, ``__next__``, ``throw``, ``close``: the event loop resuming the generator) is
one *step*, timed as a coroutine's (``steps``): the function is on the thread's stack
of tracked calls for its length, and its seconds add to the call's active time.

The call starts at the first step of any awaitable and ends at the step that
finishes the generator: ``StopAsyncIteration`` (it returned), ``GeneratorExit`` or a
completed ``aclose()`` (closed early: a success), or any other exception (a failure).
An awaitable's ``StopIteration`` is a value yielded: the call goes on.  Python lets one
awaitable at a time run the generator ("already running" otherwise): while one is
mid-way (``flying``), the others are the original's to answer, untimed.  One closed
before it started records nothing.

A proxy dropped while started is recorded then, as a success made from untracked
code: its generator is released after, and Python and the asyncgen hooks (asyncio's
``shutdown_asyncgens`` and finalizer) finalize it as they would have, its cleanup
untimed.  The hooks see the original generator, not the proxy.

With the accelerator these are C types (``AsyncGenSteps``, ``AsyncStep``;
src/speedups/asteps.c) adding no Python frame to a step; the twin below behaves the
same, with one frame per step.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

from callmetrics._engine.callers import frames_push
from callmetrics._engine.ends import end_observers, start_observers
from callmetrics._engine.steps import (
    CLOSE,
    DONE,
    NEW,
    SEND,
    STARTED,
    THROW,
    StepsCall,
    credit,
    resume,
)

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats
    from callmetrics._engine.ends import Runtime

__all__ = ["AsyncGeneratorSteps", "AsyncStep"]

# What an AsyncStep's awaitable does: resume (__anext__, asend), athrow, aclose.
_NEXT: Final = 0
_ATHROW: Final = 1
_ACLOSE: Final = 2


def _finished(agen: Any) -> bool:
    """Whether the async generator has finished (its frame is gone)."""
    return getattr(agen, "ag_frame", False) is None


class AsyncGeneratorSteps(StepsCall):
    """A tracked async generator: its awaitables' steps timed."""

    __slots__ = ("_flying",)

    def __init__(self, inner: Any, stats: FunctionStats, rt: Runtime) -> None:
        """Wrap ``inner``, the async generator a call of the function of ``stats`` returned."""
        super().__init__(inner, stats, rt)
        self._flying = False

    def __aiter__(self) -> AsyncGeneratorSteps:
        """Return itself."""
        return self

    def __anext__(self) -> AsyncStep:
        """An awaitable resuming it: its next value, or StopAsyncIteration."""
        return AsyncStep(self, self._inner.__anext__(), _NEXT)

    def asend(self, value: Any) -> AsyncStep:
        """An awaitable resuming it with ``value``."""
        return AsyncStep(self, self._inner.asend(value), _NEXT)

    def athrow(self, *args: Any) -> AsyncStep:
        """An awaitable raising an exception where it is suspended."""
        return AsyncStep(self, self._inner.athrow(*args), _ATHROW)

    def aclose(self) -> AsyncStep:
        """An awaitable ending it (a success if it had started)."""
        return AsyncStep(self, self._inner.aclose(), _ACLOSE)

    def __del__(self) -> None:
        """Dropped while started: its call ends now, a success from untracked code."""
        if getattr(self, "_state", NEW) != STARTED or self._running:
            return
        self._state = DONE
        stats = self._stats
        duration = self._rt.ends.ok(stats, self._start)
        credit(stats, None, duration - self._active)
        if self._observed:
            end_observers(self._observed, stats, duration, None)


class AsyncStep:
    """An awaitable of a tracked async generator: each step timed."""

    __slots__ = ("_done", "_flying", "_gen", "_inner", "_what")

    def __init__(self, gen: AsyncGeneratorSteps, inner: Any, what: int) -> None:
        """Wrap ``inner``, an awaitable of the original of ``gen``."""
        self._gen = gen
        self._inner = inner
        self._what = what
        self._flying = False
        self._done = False

    def __await__(self) -> AsyncStep:
        """Return itself: ``await`` drives its steps."""
        return self

    def __iter__(self) -> AsyncStep:
        """Return itself."""
        return self

    def __next__(self) -> Any:
        """Resume with None: one timed step."""
        return self._step(SEND, None)

    def send(self, value: Any) -> Any:
        """Resume with ``value``: one timed step."""
        return self._step(SEND, value)

    def throw(self, *args: Any) -> Any:
        """Raise an exception where the generator is suspended: one timed step."""
        return self._step(THROW, args)

    def close(self) -> Any:
        """Close the awaitable (what the original's does to the generator)."""
        return self._step(CLOSE, None)

    def __repr__(self) -> str:
        """Name the original awaitable."""
        return f"<tracked {self._inner!r}>"

    def __del__(self) -> None:
        """Dropped mid-way: the generator is no longer held by this awaitable."""
        if getattr(self, "_flying", False):
            self._gen._flying = False

    def _step(self, how: int, arg: Any) -> Any:
        gen, inner = self._gen, self._inner
        state = gen._state
        if self._done or state == DONE or gen._running or (gen._flying and not self._flying):
            return resume(inner, how, arg)  # the original answers
        if state == NEW:
            if how == CLOSE or self._what == _ACLOSE:  # closed before it started: no call
                return self._close_unstarted(how, arg)
            gen._state = STARTED
            if gen._rt.observers:
                gen._observed = start_observers(gen._rt, gen._stats)
        gen._running = True
        at = frames_push(gen._stats)
        began = perf_counter()
        if state == NEW:
            gen._start = began
        try:
            result = resume(inner, how, arg)
        except (StopAsyncIteration, GeneratorExit):
            self._completed()
            gen._ended(at, began, None)
            raise
        except StopIteration:  # a value yielded (or the aclose() done)
            self._completed()
            if self._what == _ACLOSE:
                gen._ended(at, began, None)
            else:
                gen._paused(at, began)
            raise
        except BaseException as exc:
            self._completed()
            gen._ended(at, began, exc)
            raise
        if how != CLOSE:  # suspended in an await: this awaitable goes on
            self._flying = gen._flying = True
            gen._paused(at, began)
            return result
        self._closed(at, began)
        return result

    def _closed(self, at: int, began: float) -> None:
        """The step begun at ``began`` closed this awaitable: the generator too on 3.13+."""
        self._completed()
        gen = self._gen
        if _finished(gen._inner):
            gen._ended(at, began, None)
        else:  # on 3.11 and 3.12 it may stay running, refusing every resume
            gen._flying = bool(getattr(gen._inner, "ag_running", False))
            gen._paused(at, began)

    def _completed(self) -> None:
        """This awaitable is done: the original answers what follows."""
        self._done = True
        self._flying = self._gen._flying = False

    def _close_unstarted(self, how: int, arg: Any) -> Any:
        gen = self._gen
        try:
            result = resume(self._inner, how, arg)
        except BaseException:
            if self._what == _ACLOSE:
                gen._state = DONE
            raise
        if self._what == _ACLOSE or _finished(gen._inner):
            gen._state = DONE
        return result
