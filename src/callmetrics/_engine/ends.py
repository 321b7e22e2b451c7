"""How tracked calls end: the ``Ends`` every wrapper of an instance shares, and observers.

``Ends`` records a finished call into the instance's buffer (a success, a noted
success, a failure described by ``_aggregate.failure_of``), drains a full buffer
(bounded, also under threads: ``BACKLOG``) and logs what is logged.  ``Runtime`` is
what a wrapper needs from its ``Analytics``; ``CallObserver`` what wants to see each
call (batch progress, spans).  The wrappers themselves are in ``_wrap``.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

from callmetrics._engine.aggregate import failure_of, note_of
from callmetrics._engine.callers import frames_pop
from callmetrics._engine.logs import CACHE_KEY, report_internal_error

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats
    from callmetrics._engine.logs import CallLogger

__all__ = [
    "BACKLOG",
    "BACKLOG_WAIT",
    "CallObserver",
    "Ends",
    "Runtime",
    "end_observers",
    "start_observers",
]

# Chunks a full buffer may hold while another thread drains, before a call waits
# (at most BACKLOG_WAIT seconds) for that drain: the buffer's bound under threads.
BACKLOG = 8
BACKLOG_WAIT = 0.05


class CallObserver(Protocol):
    """Something that wants to see each tracked call (batch progress, spans).

    Observers are only consulted while at least one is registered; the default
    path pays a single truthiness check for them.
    """

    def on_start(self, stats: FunctionStats) -> object:
        """Run just before the call; the return value is passed to ``on_end``."""

    def on_end(self, token: object, stats: FunctionStats, duration: float,
               error: BaseException | None) -> None:
        """Run just after the call, with its duration and exception (None on success)."""


class Runtime(Protocol):
    """What a wrapper needs from its ``Analytics`` instance."""

    @property
    def call_logger(self) -> CallLogger:
        """Writes the per-call log lines."""

    @property
    def observers(self) -> list[CallObserver]:
        """Registered observers (mutated in place)."""

    @property
    def buffer(self) -> Any:
        """The instance's call buffer: a list, or the accelerator's ``CallBuffer``."""

    @property
    def ends(self) -> Ends:
        """How calls end (shared by the instance's wrappers)."""

    def drain_soon(self, wait: float = 0.0) -> bool:
        """Fold one chunk of a full buffer, unless another thread is draining (False)."""


def start_observers(rt: Runtime, stats: FunctionStats) -> list[tuple[CallObserver, object]]:
    started = []
    for observer in list(rt.observers):
        try:
            started.append((observer, observer.on_start(stats)))
        except Exception as exc:  # noqa: BLE001  # an observer must not break the call
            report_internal_error(f"observer {type(observer).__name__}.on_start", exc)
    return started


def end_observers(started: list[tuple[CallObserver, object]], stats: FunctionStats,
                   duration: float, error: BaseException | None) -> None:
    for observer, token in reversed(started):
        try:
            observer.on_end(token, stats, duration, error)
        except Exception as exc:  # noqa: BLE001  # an observer must not break the call
            report_internal_error(f"observer {type(observer).__name__}.on_end", exc)


def _normal_exit(exc: BaseException) -> bool:
    """Whether ``exc`` ends a call normally: ``SystemExit`` with code 0 or None."""
    return type(exc) is SystemExit and exc.code in (0, None)


class Ends:
    """How calls end, shared by every wrapper of one instance (one object, no closures).

    ``ok(stats, t0)``, ``noted(stats, t0, message)`` (a success with a note) and
    ``failed(stats, t0, exc)`` record a call that started at ``t0`` and return its
    duration; ``after(stats, duration, limit)`` drains a full buffer and logs a
    success.  Wrappers inline ``ok`` on their hot path.  A call that pushed itself on
    the thread's stack of tracked calls (``_callers.frames_push``) passes where, ``at``:
    the end pops it and records the call under its caller's edge.
    """

    __slots__ = ("buffer", "cache", "capacity", "drain_soon", "expected", "expected_names",
                 "extend", "hooks", "log")

    def __init__(self, rt: Runtime) -> None:
        """Resolve the runtime's buffer, drain and logging cache once."""
        self.buffer = rt.buffer
        self.extend = rt.buffer.extend
        self.log = rt.call_logger
        self.cache = self.log.cache
        self.capacity = self.log.capacity
        self.drain_soon = rt.drain_soon
        # Bound once: every wrapper holds these same objects (memory per function).
        self.hooks = (self.after, self.failed, self.log.refresh)
        # The exceptions declared expected per function (track/measure(expected=...)):
        # decided here, where a call that raised ends, so a success costs nothing more.
        self.expected: dict[FunctionStats, tuple[type[BaseException], ...]] = {}
        # Exception classes expected of every function, by name (``callmetrics run
        # --expected``): ``KeyError``, or ``module.Class``; their subclasses too.
        self.expected_names: frozenset[str] = frozenset()

    def expect_named(self, names: frozenset[str]) -> None:
        """Count calls of every function raising a class named in ``names`` as successes."""
        self.expected_names = self.expected_names | names

    def _is_expected(self, stats: FunctionStats, exc: BaseException) -> bool:
        if isinstance(exc, self.expected.get(stats, ())):
            return True
        names = self.expected_names
        return bool(names) and any(
            cls.__name__ in names or f"{cls.__module__}.{cls.__qualname__}" in names
            for cls in type(exc).__mro__)

    def expect(self, stats: FunctionStats, types: tuple[type[BaseException], ...]) -> None:
        """Count calls of ``stats`` raising one of ``types`` as successes from now on."""
        known = self.expected.get(stats, ())
        self.expected[stats] = known + tuple(t for t in types if t not in known)

    def after(self, stats: FunctionStats, duration: float, limit: int) -> None:
        """Drain a full buffer; log the success while successful calls are logged."""
        # Reached when the buffer is full or when successful calls are being logged
        # (the cached limit is then 0).
        self._make_room(limit)
        if limit == 0:
            self.log.success(stats.name, stats.event_type, duration)

    def _make_room(self, limit: int) -> None:
        """Drain a chunk if the buffer is full; ``limit`` is the cached limit in force."""
        size = len(self.buffer)
        if size < self.capacity:
            return
        if self.drain_soon() or (size >= BACKLOG * self.capacity
                                 and self.drain_soon(BACKLOG_WAIT)):
            if limit > self.capacity:  # a raised limit (below): back to normal
                self._set_limit(limit, self.capacity)
        elif limit:
            # Another thread is draining (under the GIL it may be waiting for its turn
            # to run): let this one's calls fill one more chunk before they come here
            # again, instead of every call failing the lock.  Past BACKLOG chunks, a
            # call waits for that drain (bounded), so that the buffer stays bounded
            # whatever the number of threads.
            self._set_limit(limit, size + self.capacity)

    def _set_limit(self, seen: int, limit: int) -> None:
        """Replace the cached limit ``seen``, unless logging changed it meanwhile."""
        cache = self.cache
        if cache.get(CACHE_KEY) == seen:
            cache[CACHE_KEY] = limit

    def ok(self, stats: FunctionStats, t0: float, at: int = -1) -> float:
        """Record a successful call that started at ``t0``; return its duration."""
        duration = perf_counter() - t0
        key = stats if at < 0 else frames_pop(stats, at, duration)
        return self._succeeded(key, stats, t0, duration)

    def _succeeded(self, key: object, stats: FunctionStats, t0: float,
                   duration: float) -> float:
        """Buffer a successful call under ``key``, then drain or log as the limit says."""
        self.extend((key, t0, duration))
        try:
            limit = self.cache[CACHE_KEY]
        except KeyError:  # logging changed a level and cleared its caches: decide again
            limit = self.log.refresh()
        if len(self.buffer) >= limit:
            self.after(stats, duration, limit)
        return duration

    def noted(self, stats: FunctionStats, t0: float, message: object, at: int = -1) -> float:
        """Record a successful call noted ``message`` (``str()`` of it); return its duration.

        The note is cleaned as a failure's message is (``note_of``).  Never raises.
        """
        duration = perf_counter() - t0
        plain: object = stats if at < 0 else frames_pop(stats, at, duration)
        try:
            key: object = note_of(stats, message, None if plain is stats else plain)
        except Exception as err:  # noqa: BLE001  # never let the note break the call
            report_internal_error("describing a note", err)
            key = plain
        return self._succeeded(key, stats, t0, duration)

    def _expected(self, stats: FunctionStats, t0: float, duration: float,
                  exc: BaseException, plain: object) -> float:
        """Record a call that raised an expected ``exc``: a success noted ``expected KeyError``.

        ``plain`` is what the call is buffered under without a note (``stats`` or its
        caller edge).
        """
        stats.expected += 1
        try:
            key: object = note_of(stats, f"expected {type(exc).__name__}",
                                  None if plain is stats else plain)
        except Exception as err:  # noqa: BLE001  # never let the note break the call
            report_internal_error("describing an expected exception", err)
            key = plain
        return self._succeeded(key, stats, t0, duration)

    def failed(self, stats: FunctionStats, t0: float, exc: BaseException, at: int = -1) -> float:
        """Record a call that raised ``exc``; return its duration.  Never raises."""
        duration = perf_counter() - t0
        plain: object = stats if at < 0 else frames_pop(stats, at, duration)
        if _normal_exit(exc):
            self.extend((plain, t0, duration))
            return duration
        if (self.expected or self.expected_names) and self._is_expected(stats, exc):
            return self._expected(stats, t0, duration, exc, plain)
        try:
            described: object = failure_of(stats, exc, None if plain is stats else plain)
        except Exception as err:  # noqa: BLE001  # never let describing it break the call
            report_internal_error("describing a failure", err)
            described = plain
        self.extend((described, t0, duration))
        self._make_room(self.cache.get(CACHE_KEY, 0))
        self.log.failure(stats.name, stats.event_type, duration, exc)
        return duration
