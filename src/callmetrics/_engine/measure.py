"""``Analytics.measure("name")``: time a block, recorded like a call of a function.

Users write ``with analytics.measure("x"):`` with a fresh object each time, so what
the name resolves to (its aggregates, the buffer, the logging decision) is resolved
once and cached in a ``BlockKind``; each ``measure()`` then costs one dict lookup
and one small object, and the block's end does what a tracked call does.

A block may carry a one-line note, ``block.message = "cache hit"``: a successful
block is then recorded with it (``Ends.noted``), and its event's ``Message`` holds it.
"""

from __future__ import annotations

from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from callmetrics._engine.accel import speedups as _speedups
from callmetrics._engine.callers import STACK, frames_pop, frames_push, key_for, unwind
from callmetrics._engine.cputime import suspending
from callmetrics._engine.logs import CACHE_KEY
from callmetrics._engine.wrap import CallObserver, end_observers, start_observers

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats
    from callmetrics._engine.wrap import Runtime

__all__ = ["BlockKind", "Measure", "NoMeasure", "new_measure"]


class BlockKind:
    """Everything a block named ``stats.name`` needs at its end, resolved once."""

    __slots__ = ("after", "buffer", "cache", "event_type", "failed", "noted", "observers",
                 "refresh", "rt", "stats")

    def __init__(self, stats: FunctionStats, event_type: str, rt: Runtime) -> None:
        """Resolve the buffer, the call ends and the logging cache of ``stats``."""
        self.stats = stats
        self.event_type = event_type  # as asked by measure(), to find it again
        self.rt = rt
        self.observers = rt.observers  # mutated in place, never rebound
        self.buffer = rt.buffer
        self.cache = rt.ends.cache
        self.refresh = rt.ends.log.refresh
        self.failed = rt.ends.failed
        self.noted = rt.ends.noted
        self.after = rt.ends.after


class Measure:
    """The context manager ``measure()`` returns (sync and async).

    ``message`` (None unless set) is a one-line note kept on the block's event when
    the block ends normally: ``str()`` of it at exit, cleaned as a failure's message
    is (one line, at most 500 characters).  When an exception leaves the block, the
    exception's message is recorded instead and the note is ignored.

    A block is entered once at a time: entering it again while it is active raises
    ``RuntimeError``; exiting it again (or without entering it) is ignored, so a block
    is recorded once per entry.

    Made by :func:`new_measure` without a Python ``__init__`` (a fresh one per block
    is the common use, so its creation is part of the hot path).
    """

    __slots__ = ("_at", "_kind", "_stack", "_started", "_t0", "message")

    _at: int
    _stack: list[Any] | None
    _kind: BlockKind
    # False: not active (fresh, or exited); else active, with the observers started.
    _started: list[tuple[CallObserver, object]] | Literal[False] | None
    _t0: float
    message: object

    def __enter__(self) -> Measure:
        """Start timing (after the observers, if any, have seen the start)."""
        kind = self._kind
        if self._started is not False:
            raise RuntimeError(f"measure({kind.stats.name!r}) block entered while already "
                               "active; use a fresh analytics.measure(...) for each block")
        self._started = start_observers(kind.rt, kind.stats) if kind.observers else None
        # A block is a tracked call: on the thread's stack while it runs (_callers).
        # The pure-Python stack is kept for the exit (a block ends on its thread).
        if _PURE:
            stack = self._stack = STACK.calls
            self._at = len(stack)
            stack.append(kind.stats)
        else:
            self._stack = None
            self._at = frames_push(kind.stats)
        self._t0 = perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Record the block: a success (with its note, if any), or a failure."""
        started = self._started
        if started is False:
            return  # exited already (or never entered): recorded once, at most
        self._started = False
        kind = self._kind
        at = self._at
        if exc is not None:
            duration = kind.failed(kind.stats, self._t0, exc, at)
        elif self.message is not None:
            duration = kind.noted(kind.stats, self._t0, self.message, at)
        else:
            t0 = self._t0
            duration = perf_counter() - t0
            buffer = kind.buffer
            stats = kind.stats
            stack = self._stack
            if stack is not None:
                top = stack.pop()
                if top is not stats:  # something was left above this block (rare)
                    unwind(stack, top, stats)
                caller = stack[-1]
                key = stats if caller is None else key_for(stats, caller, stats not in stack,
                                                           duration)
            else:
                key = stats if at < 0 else frames_pop(stats, at, duration)
            buffer.extend((key, t0, duration))
            cache = kind.cache
            try:
                if len(buffer) >= cache[CACHE_KEY]:
                    kind.after(kind.stats, duration, cache[CACHE_KEY])
            except KeyError:  # logging changed a level and cleared its caches
                kind.after(kind.stats, duration, kind.refresh())
        if started:
            end_observers(started, kind.stats, duration, exc)

    async def __aenter__(self) -> Measure:
        """Start timing, as ``__enter__`` (off the stack: a coroutine's blocks interleave)."""
        return self._enter_suspending()

    def _enter_suspending(self) -> Measure:
        """``__aenter__``'s work (what the C ``measure()`` hands an observed ``async with`` to)."""
        kind = self._kind
        # Its thread runs other work while it awaits: no thread CPU time (cputime).
        self._started = (suspending(start_observers(kind.rt, kind.stats), kind.stats)
                         if kind.observers else None)
        self._at = -1
        self._stack = None
        self._t0 = perf_counter()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Record the block, as ``__exit__``."""
        self.__exit__(exc_type, exc, tb)


_new = object.__new__
# Whether blocks use the pure-Python stack inline (else _speedups' stack, through calls).
_PURE = _speedups is None


def new_measure(kind: BlockKind) -> Measure:
    """Return a fresh ``Measure`` of ``kind`` (``Analytics.measure`` inlines this)."""
    measure: Measure = _new(Measure)
    measure._kind = kind
    measure._started = False
    measure.message = None
    return measure


class NoMeasure:
    """What ``measure()`` returns on a disabled instance: does nothing (``message`` too)."""

    __slots__ = ("message",)

    def __init__(self) -> None:
        """Start with no note, as a ``Measure`` does."""
        self.message: object = None

    def __enter__(self) -> NoMeasure:
        """Do nothing."""
        return self

    def __exit__(self, *exc: Any) -> None:
        """Do nothing; an exception propagates."""

    async def __aenter__(self) -> NoMeasure:
        """Do nothing."""
        return self

    async def __aexit__(self, *exc: Any) -> None:
        """Do nothing; an exception propagates."""
