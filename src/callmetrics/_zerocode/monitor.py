"""The ``sys.monitoring`` callbacks of zero-code tracking, in pure Python (3.12+).

The twin of the accelerator's ``_speedups.Monitor`` (``src/speedups/monitor.c``,
``monpending.c`` and ``monsteps.c``, whose comments tell the whole scheme), used
without it; both record exactly the same calls:

- a sync function's call is pushed on its thread's stack at ``PY_START`` and popped
  at ``PY_RETURN``/``PY_UNWIND`` (the topmost entry of the same code; entries above
  it, left by calls whose events were turned off while they ran, are dropped);
- a generator's or coroutine's call runs from its first step (``PY_START``) to its
  end (``PY_RETURN``, or ``PY_UNWIND``: ``GeneratorExit`` is a success), filed under
  its frame meanwhile.  Each step (from ``PY_START``, ``PY_RESUME`` or ``PY_THROW``
  to ``PY_YIELD`` or the end) puts it on the running thread's stack of tracked calls
  and adds to its active time, as the decorator's step proxy does (``steps``); its
  suspended seconds are credited to its function's ``Idle`` when it ends.  A
  ``throw()`` CPython passes down an await chain without running the awaiters'
  frames begins their steps too (*carried*, outermost first), ended by the
  innermost's next ``PY_YIELD`` or turned into their own when they run.  One closed
  without its frame running again (CPython skips a frame suspended outside any
  ``try``) is recorded by :meth:`Monitor.sweep`, ending at its last step, once only
  the monitor holds its frame.

Callbacks never raise: an internal failure goes to ``report(where, exc)``.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from callmetrics._engine.callers import frames_caller, frames_pop, frames_push
from callmetrics._engine.logs import CACHE_KEY
from callmetrics._engine.steps import credit

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats
    from callmetrics._engine.ends import Ends

__all__ = ["GEN_FLAGS", "Monitor", "PySink"]

# CO_GENERATOR | CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR
GEN_FLAGS = 0x20 | 0x80 | 0x100 | 0x200
# References to a frame that only the pending dict holds, as sys.getrefcount sees it
# inside the comprehension of ``sweep``: the dict's key, the loop variable, the argument.
_ALONE = 3


class PySink:
    """Where one function's calls go without the accelerator: its stats and ``Ends``."""

    __slots__ = ("ends", "stats")

    def __init__(self, stats: FunctionStats, ends: Ends) -> None:
        """Record calls of ``stats`` through ``ends``."""
        self.stats = stats
        self.ends = ends

    def ok(self, start: float, end: float, at: int = -1) -> None:
        """Record a successful call from ``start`` to ``end``, as a wrapper does.

        ``at``: where the call sits on the thread's stack of tracked calls
        (``frames_push``; -1: not on it), taken off here.
        """
        ends, duration = self.ends, end - start
        key = self.stats if at < 0 else frames_pop(self.stats, at, duration)
        ends.extend((key, start, duration))
        after, _, refresh = ends.hooks
        try:
            limit = ends.cache[CACHE_KEY]
        except KeyError:  # logging changed a level and cleared its caches: decide again
            limit = refresh()
        if len(ends.buffer) >= limit:
            after(self.stats, duration, limit)

    def failed(self, start: float, exc: BaseException, at: int = -1) -> float:
        """Record a call from ``start`` that raised ``exc`` (ending now); return its duration."""
        return self.ends.failed(self.stats, start, exc, at)


# Carried steps under way (in any Monitor): PY_YIELD looks for them only when any.
_CARRIED = [0]
_CARRY_MAX = 64  # awaiters one throw() carries at most


def _awaiter(frame: types.FrameType) -> types.FrameType | None:
    """The frame below ``frame`` when it is a generator's or coroutine's, else None."""
    back = frame.f_back
    return back if back is not None and back.f_code.co_flags & GEN_FLAGS else None


class _Pending:
    """A generator or coroutine call under way: its steps so far."""

    __slots__ = ("active", "at", "began", "carried", "last", "running", "sink", "start")

    def __init__(self, sink: PySink, start: float) -> None:
        self.sink = sink
        self.start = start  # the first step's start
        self.began = start  # the running step's start
        self.last = start  # the latest step's end (a yield), or the start
        self.active = 0.0  # seconds of the steps ended so far
        self.at = -1  # the running step's place on its thread's stack (-1: not pushed)
        self.running = False
        self.carried = False  # that step was begun by a throw() passing through

    def resume(self, now: float) -> None:
        """A step begins now, on this thread: on its stack of tracked calls."""
        if self.carried:
            self.carried = False
            _CARRIED[0] -= 1
        if not self.running:
            self.running = True
            self.began = now
            self.at = frames_push(self.sink.stats)

    def suspend(self, now: float) -> int:
        """The running step ends now; return its place on the stack (now left)."""
        if not self.running:
            return -1
        at = self.at
        if self.carried:
            self.carried = False
            _CARRIED[0] -= 1
        self.running = False
        self.active += now - self.began
        self.at = -1
        frames_caller(self.sink.stats, at)  # truncate back to where the step pushed
        return at


class Monitor:
    """``sys.monitoring`` callbacks recording into sinks (start, return, unwind, steps)."""

    def __init__(self, report: Callable[[str, BaseException], None], disable: object) -> None:
        """Report internal failures to ``report``; ``disable`` is ``sys.monitoring.DISABLE``."""
        self._report = report
        self._disable = disable
        self._sinks: dict[int, tuple[types.CodeType, PySink]] = {}
        self._local = threading.local()
        self._pending: dict[types.FrameType, _Pending] = {}
        self._sweep_at = 64

    # ------------------------------------------------------------ code objects
    def attach(self, code: types.CodeType, sink: PySink) -> bool:
        """Record the calls of ``code`` into ``sink``; False if it already has a sink."""
        if not isinstance(code, types.CodeType) or not isinstance(sink, PySink):
            raise TypeError("attach(code, sink) takes a code object and a PySink")
        if id(code) in self._sinks:
            return False
        self._sinks[id(code)] = (code, sink)
        return True

    def detach(self, code: types.CodeType) -> None:
        """Stop recording the calls of ``code`` (those under way still are)."""
        self._sinks.pop(id(code), None)

    def sink(self, code: types.CodeType) -> PySink | None:
        """Return where the calls of ``code`` go, or None."""
        found = self._sinks.get(id(code))
        return found[1] if found is not None and found[0] is code else None

    def depth(self) -> int:
        """Return the number of tracked sync calls under way on this thread."""
        return len(self._stack())

    def _stack(self) -> list[tuple[types.CodeType, PySink, float, int]]:
        try:
            return self._local.stack  # type: ignore[no-any-return]  # set below, a list
        except AttributeError:
            stack: list[tuple[types.CodeType, PySink, float, int]] = []
            self._local.stack = stack
            return stack

    # --------------------------------------------------------------- the ends
    def _end(self, sink: PySink, start: float, end: float, exc: BaseException | None,
             gen: bool, at: int = -1) -> None:
        try:
            if exc is None or (gen and isinstance(exc, GeneratorExit)):
                sink.ok(start, end, at)
            else:
                sink.failed(start, exc, at)
        except Exception as err:  # noqa: BLE001  # never reaches the program
            self._report("recording a call", err)

    def _record(self, entry: _Pending, end: float, exc: BaseException | None, at: int) -> None:
        """The call of ``entry`` ended at ``end`` (its last step left at ``at``): record it."""
        sink = entry.sink
        try:
            caller = frames_caller(sink.stats, at)[0]  # the stack is cut there already
            if exc is None or isinstance(exc, GeneratorExit):
                sink.ok(entry.start, end, at)
                duration = end - entry.start
            else:
                duration = sink.failed(entry.start, exc, at)
            credit(sink.stats, caller, duration - entry.active)
        except Exception as err:  # noqa: BLE001  # never reaches the program
            self._report("recording a generator call", err)

    def sweep(self, everything: bool) -> int:
        """Record the pending calls whose frame only this monitor holds (or all of them).

        They end at their last step; one running (only with ``everything``) ends now.
        """
        pending = self._pending
        gone = [f for f in pending if everything or sys.getrefcount(f) <= _ALONE]
        for frame in gone:
            entry = pending.pop(frame, None)
            if entry is not None:
                end = entry.last
                if entry.running:
                    end = perf_counter()
                    entry.active += end - entry.began
                    entry.running = False
                    if entry.carried:
                        entry.carried = False
                        _CARRIED[0] -= 1
                self._record(entry, end, None, -1)
        self._sweep_at = 64 if len(pending) < 32 else 2 * len(pending)
        return len(gone)

    # -------------------------------------------------------------- callbacks
    def py_start(self, code: types.CodeType, offset: int) -> object:  # noqa: ARG002  # the event's signature
        """``PY_START``: a call of ``code`` begins (a generator's: its first step)."""
        sink = self.sink(code)
        if sink is None:
            return self._disable
        now = perf_counter()
        if code.co_flags & GEN_FLAGS:
            entry = self._pending[sys._getframe(1)] = _Pending(sink, now)
            entry.resume(now)
            if len(self._pending) >= self._sweep_at:
                self.sweep(everything=False)
            return None
        self._stack().append((code, sink, now, frames_push(sink.stats)))
        return None

    def _ended(self, code: types.CodeType, exc: BaseException | None, unwound: bool) -> object:
        now = perf_counter()
        if code.co_flags & GEN_FLAGS:
            entry = self._pending.pop(sys._getframe(2), None)
            if entry is not None:
                self._record(entry, now, exc, entry.suspend(now))
            return None
        stack = self._stack()
        at = len(stack) - 1
        while at >= 0 and stack[at][0] is not code:
            at -= 1
        if at < 0:
            return None if unwound or self.sink(code) is not None else self._disable
        _, sink, start, where = stack[at]
        del stack[at:]
        self._end(sink, start, now, exc, False, where)
        return None

    def py_return(self, code: types.CodeType, offset: int, value: object) -> object:  # noqa: ARG002  # the event's signature
        """``PY_RETURN``: a call of ``code`` returned."""
        return self._ended(code, None, unwound=False)

    def py_unwind(self, code: types.CodeType, offset: int, exc: BaseException) -> object:  # noqa: ARG002  # the event's signature
        """``PY_UNWIND``: a call of ``code`` ends by an exception (any code: a global event)."""
        return self._ended(code, exc, unwound=True)

    def py_resume(self, code: types.CodeType, offset: int) -> object:  # noqa: ARG002  # the event's signature
        """``PY_RESUME``: a step of a generator or coroutine of ``code`` begins."""
        now = perf_counter()
        entry = self._pending.get(sys._getframe(1))
        if entry is not None:
            entry.resume(now)
            return None
        return None if self.sink(code) is not None else self._disable

    def py_throw(self, code: types.CodeType, offset: int, exc: BaseException) -> object:  # noqa: ARG002  # the event's signature
        """``PY_THROW``: a step begins by raising where it is suspended (a global event)."""
        if self.sink(code) is None:
            return None
        now = perf_counter()
        frame = sys._getframe(1)
        entry = self._pending.get(frame)
        if entry is not None:
            if not entry.running:
                self._carry(frame, now)
            entry.resume(now)
        return None

    def _carry(self, frame: types.FrameType, now: float) -> None:
        """Begin the steps of the tracked awaiters a throw into ``frame`` passed through."""
        chain: list[_Pending] = []
        back = _awaiter(frame)
        while back is not None and len(chain) < _CARRY_MAX:
            entry = self._pending.get(back)
            if entry is not None and entry.running:  # it resumed what is below it
                break
            if entry is not None:
                chain.append(entry)
            back = _awaiter(back)
        for entry in reversed(chain):  # outermost first
            entry.resume(now)
            entry.carried = True
            _CARRIED[0] += 1

    def _uncarry(self, frame: types.FrameType, now: float) -> None:
        """A yield going straight back up through carried awaiters ends their steps."""
        back = _awaiter(frame)
        while back is not None:
            entry = self._pending.get(back)
            if entry is not None:
                if not entry.carried:
                    break
                entry.suspend(now)
                entry.last = now
            back = _awaiter(back)

    def py_yield(self, code: types.CodeType, offset: int, value: object) -> Any:  # noqa: ARG002  # the event's signature
        """``PY_YIELD``: a step of a generator or coroutine of ``code`` ends."""
        now = perf_counter()
        frame = sys._getframe(1)
        entry = self._pending.get(frame)
        if entry is not None:
            entry.suspend(now)
            entry.last = now
            if _CARRIED[0] > 0:
                self._uncarry(frame, now)
            return None
        return None if self.sink(code) is not None else self._disable
