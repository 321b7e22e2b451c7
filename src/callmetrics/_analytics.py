"""The ``Analytics`` class: decorators, exact aggregates, events and their read-back."""

from __future__ import annotations

import inspect
import itertools
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from callmetrics._calibrate import per_call_overhead
from callmetrics._config import AnalyticsConfig, coerce_config
from callmetrics._logging import CallLogger, default_loggers, report_internal_error
from callmetrics._records import Event, LoggerContainer
from callmetrics._sketch import DurationSketch
from callmetrics._state import EventRing, FunctionSnapshot, FunctionStats, RawEvent
from callmetrics._view import Reading, RetainedCall
from callmetrics._wrap import (
    CallObserver,
    Finisher,
    callable_kind,
    callable_module,
    end_observers,
    finisher,
    recorded_name,
    start_observers,
    wrap,
)

if TYPE_CHECKING:
    from rich.console import Console

    from callmetrics._console import BatchMode

__all__ = ["Analytics"]

P = ParamSpec("P")
R = TypeVar("R")

_SECONDS_PER_DAY = 86_400.0
_GC_THRESHOLD = 5_000


def _check_text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


class Analytics:
    """Tracks function performance, success rates, and execution patterns.

    Decorate functions with :meth:`track`; read exact statistics with
    :meth:`get_stats`, recent calls with :attr:`events`, and write a report with
    :meth:`generate_reports`.  Safe to use from many threads and asyncio tasks.
    """

    _ids = itertools.count(1)
    GC_COLLECTION_THRESHOLD = _GC_THRESHOLD

    def __init__(
        self,
        config: object = None,
        loggers: LoggerContainer | None = None,
        max_events: int | None = None,
        *,
        store: str | Path | None = None,
    ) -> None:
        """Create an instance.

        Args:
            config: None (defaults), an ``AnalyticsConfig``, a mapping of its fields,
                or an object with an ``analytics`` attribute holding one of those.
            loggers: the console, error and analytics loggers; None gives
                ``callmetrics.*`` standard-library loggers.
            max_events: overrides ``config.max_events`` (0 keeps every event).
            store: a SQLite file to persist this run to (overrides ``store_path``).

        Raises:
            TypeError: for a value of the wrong type (the message names the field).
            ValueError: for an out-of-range value (the message names the field).

        """
        cfg = coerce_config(config)
        if max_events is not None:
            cfg = cfg.replace(max_events=max_events)
        if store is not None:
            cfg = cfg.replace(store_path=store)
        if loggers is None:
            loggers = default_loggers()
        elif not isinstance(loggers, LoggerContainer):
            raise TypeError(f"loggers must be a LoggerContainer, got {type(loggers).__name__}")

        self.instance_id = next(Analytics._ids)
        self.config: AnalyticsConfig = cfg
        self.enabled = cfg.enabled
        self.max_events = cfg.max_events
        thresholds = cfg.duration_thresholds
        self.short_max = thresholds.short_max
        self.medium_max = thresholds.medium_max
        self.long_max = thresholds.long_max
        self.time_format = cfg.time_format
        self.compact_time = cfg.compact_time
        self.enable_gc_collect = cfg.enable_gc_collect
        self.loggers = loggers
        self.console_logger = loggers.console
        self.error_logger = loggers.error
        self.analytics_logger = loggers.analytics

        self._lock = threading.RLock()
        self._stats: dict[str, FunctionStats] = {}
        self._ring = EventRing(cfg.max_events)
        self._call_logger = CallLogger(loggers, self.long_max)
        self._observers: list[CallObserver] = []
        self._adhoc: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Callable[..., Any]]]
        self._adhoc = weakref.WeakKeyDictionary()
        self._finishers: dict[int, Finisher] = {}
        self._store: Any = None
        if cfg.store_path is not None and self.enabled:
            from callmetrics._store import attach_store  # noqa: PLC0415  # optional feature

            self._store = attach_store(self, Path(cfg.store_path))
        try:
            self.console_logger.debug("Analytics #%s initialized", self.instance_id)
        except Exception as exc:  # noqa: BLE001  # a broken handler must not break start-up
            report_internal_error("logging", exc)

    # ----------------------------------------------------------------- runtime
    @property
    def call_logger(self) -> CallLogger:
        """The per-call log writer (part of the wrappers' runtime)."""
        return self._call_logger

    @property
    def observers(self) -> list[CallObserver]:
        """Registered call observers, mutated in place (part of the wrappers' runtime)."""
        return self._observers

    def add_observer(self, observer: CallObserver) -> None:
        """Have ``observer`` see every tracked call from now on."""
        with self._lock:
            self._observers.append(observer)

    def remove_observer(self, observer: CallObserver) -> None:
        """Stop sending calls to ``observer`` (no error if it was not registered)."""
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)

    def drain_soon(self) -> None:
        """Fold buffered calls into the aggregates, unless another thread already is."""
        if self._lock.acquire(blocking=False):
            try:
                self._drain_locked()
            except Exception as exc:  # noqa: BLE001  # runs inside a user's call: never break it
                report_internal_error("draining buffered calls", exc)
            finally:
                self._lock.release()

    def _drain_locked(self) -> None:
        offset = time.time() - perf_counter()
        began = perf_counter()
        drained: list[tuple[FunctionStats, int]] = []
        generation = []
        for stats in self._stats.values():
            calls = stats.drain(offset, self.short_max, self.medium_max)
            if calls is None:
                continue
            flat, failed = calls
            generation.append(self._ring.chunk(stats, offset, flat, failed))
            drained.append((stats, len(flat) // 2 + len(failed)))
        self._ring.add_generation(generation)
        if drained:
            # The bulk work is part of what the decorator costs: share it out by calls.
            spent = perf_counter() - began
            total = sum(n for _, n in drained)
            for stats, n in drained:
                stats.drain_seconds += spent * n / total

    def _finisher_for(self, stats: FunctionStats) -> Finisher:
        found = self._finishers.get(id(stats))
        if found is None:
            found = self._finishers[id(stats)] = finisher(stats, self)
        return found

    def _drain(self) -> None:
        with self._lock:
            self._drain_locked()

    def _stats_for(self, name: str, event_type: str, module: str, *, explicit: bool,
                   warn: bool = True) -> FunctionStats:
        with self._lock:
            stats = self._stats.get(name)
            if stats is None:
                stats = self._stats[name] = FunctionStats(name, event_type, module)
                return stats
            if explicit or stats.module == module:
                if stats.event_type != event_type and warn:
                    self.console_logger.warning(
                        "callmetrics: %s is already tracked as event type %r; keeping it "
                        "(asked for %r)", name, stats.event_type, event_type)
                return stats
            qualified = f"{module}.{name}"
            if warn:
                self.console_logger.warning(
                    "callmetrics: %s in module %s has the same name as one in %s; recording "
                    "it as %s", name, module, stats.module, qualified)
            return self._stats_for(qualified, event_type, module, explicit=True, warn=warn)

    # -------------------------------------------------------------- decorators
    def track(
        self, event_type: str, *, name: str | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Return a decorator that records every call of the function it decorates.

        Works on functions, coroutines, generators, async generators, methods,
        classmethods, staticmethods and other callables.

        Args:
            event_type: the category shown next to the function (e.g. "API call").
            name: the key to record under; defaults to the ``__qualname__`` without
                ``<locals>`` parts.

        Raises:
            TypeError, ValueError: for a bad ``event_type`` or ``name``, at once.

        """
        _check_text("event_type", event_type)
        if name is not None:
            _check_text("name", name)

        def decorator(func: Callable[P, R]) -> Callable[P, R]:
            return self._decorate(func, event_type, name)  # type: ignore[no-any-return]

        return decorator

    def _decorate(self, func: Any, event_type: str, name: str | None) -> Any:
        if isinstance(func, classmethod | staticmethod):
            return type(func)(self._decorate(func.__func__, event_type, name))
        if not callable(func):
            raise TypeError(f"track() needs a callable, got {type(func).__name__}")
        if not self.enabled:
            return func
        key = name if name is not None else recorded_name(func)
        stats = self._stats_for(key, event_type, callable_module(func), explicit=name is not None)
        return wrap(func, callable_kind(func), stats, self)

    def measure(self, name: str, *, event_type: str = "block") -> _Measure:
        """Time a block of code, recorded like a call of a function called ``name``.

        Usable as ``with`` and ``async with``; an exception leaving the block is a
        failure and propagates.
        """
        _check_text("name", name)
        _check_text("event_type", event_type)
        if not self.enabled:
            return _Measure(None, self)
        stats = self._stats_for(name, event_type, "<block>", explicit=True)
        stats.kind = "block"
        return _Measure(stats, self)

    def _adhoc_wrapper(self, func: Callable[..., Any], event_type: str,
                       kind: str | None = None) -> Callable[..., Any]:
        _check_text("event_type", event_type)
        if not callable(func):
            raise TypeError(f"func must be callable, got {type(func).__name__}")
        key = (event_type, kind or "")
        try:
            per_func = self._adhoc.setdefault(func, {})
        except TypeError:  # not weak-referenceable: wrap afresh each time
            per_func = {}
        wrapper = per_func.get(key)
        if wrapper is None:
            if kind == "async" and callable_kind(func) == "sync":
                wrapper = self._awaiting_wrapper(func, event_type)
            else:
                wrapper = self._decorate(func, event_type, None)
            per_func[key] = wrapper
        return wrapper

    def _awaiting_wrapper(self, func: Callable[..., Any], event_type: str) -> Callable[..., Any]:
        """Track a plain callable that returns an awaitable, timing it to completion."""

        async def call_and_await(*args: Any, **kwargs: Any) -> Any:
            result = func(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        name, module = recorded_name(func), callable_module(func)
        call_and_await.__qualname__ = name
        call_and_await.__module__ = module
        stats = self._stats_for(name, event_type, module, explicit=False)
        return wrap(call_and_await, "async", stats, self)  # type: ignore[no-any-return]

    def execute_sync_wrapped_call(
        self, func: Callable[..., Any], event_type: str, *args: Any, **kwargs: Any
    ) -> Any:
        """Call ``func(*args, **kwargs)`` once, tracked, and return its result.

        Unlike the seed, this works (and is tracked) inside a running event loop.
        """
        if not self.enabled:
            return func(*args, **kwargs)
        return self._adhoc_wrapper(func, event_type)(*args, **kwargs)

    async def execute_async_wrapped_call(
        self, func: Callable[..., Any], event_type: str, *args: Any, **kwargs: Any
    ) -> Any:
        """Await ``func(*args, **kwargs)`` once, tracked, and return its result."""
        if not self.enabled:
            result = func(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return await self._adhoc_wrapper(func, event_type, "async")(*args, **kwargs)

    async def execute_wrapped_call(
        self, func: Callable[..., Any], event_type: str, is_async: bool,  # seed API
        *args: Any, **kwargs: Any,
    ) -> Any:
        """Run one tracked call of ``func``, awaiting it when ``is_async``."""
        if is_async:
            return await self.execute_async_wrapped_call(func, event_type, *args, **kwargs)
        return self.execute_sync_wrapped_call(func, event_type, *args, **kwargs)

    # --- reach (issue 11): zero-code tracking. Coordinator: port this block as is. ---
    def instrument(self, *patterns: str, exclude: str | Iterable[str] = (),
                   event_type: str = "function") -> None:
        """Track every function and method of the modules matching ``patterns``.

        Modules already imported are wrapped now, those imported later as they load
        (an import hook); each function gets the wrapper ``track(event_type)`` builds.

        Args:
            patterns: module-name globs such as ``"myapp.*"`` (which also matches
                ``myapp`` itself).
            exclude: globs of modules to leave alone.
            event_type: the event type the wrapped functions are recorded under.

        Raises:
            TypeError, ValueError: for a bad pattern or event type, at once.

        """
        from callmetrics._instrument import instrument  # noqa: PLC0415  # zero-code only

        instrument(self, patterns, exclude=exclude, event_type=event_type)

    def uninstrument(self) -> None:
        """Undo every :meth:`instrument` of this instance (functions already running finish)."""
        from callmetrics._instrument import uninstrument  # noqa: PLC0415  # zero-code only

        uninstrument(self)
    # --- end reach (issue 11) ---

    # ---------------------------------------------------------------- read-back
    def snapshot(self) -> list[FunctionSnapshot]:
        """Return a consistent copy of every function's aggregates, in name order."""
        per_call = per_call_overhead()
        with self._lock:
            self._drain_locked()
            return [
                stats.snapshot(per_call, self.time_format, compact=self.compact_time)
                for _, stats in sorted(self._stats.items())
                if stats.calls
            ]

    def raw_events(self) -> list[RawEvent]:
        """Return the retained calls as ``(start, duration, error, stats)``, oldest first."""
        with self._lock:
            self._drain_locked()
            return self._ring.raw()

    @property
    def settings(self) -> AnalyticsConfig:
        """The validated settings in force (part of the read-only ``Source`` interface)."""
        return self.config

    def retained(self) -> list[RetainedCall]:
        """Return the retained calls, oldest first (part of the ``Source`` interface)."""
        return [RetainedCall(start, duration, stats.name, stats.event_type, error)
                for start, duration, error, stats in self.raw_events()]

    def read(self) -> Reading:
        """Return aggregates and retained calls taken together, so that they agree."""
        with self._lock:
            return Reading(self.snapshot(), self.retained())

    def _event(self, raw: RawEvent) -> Event:
        start, duration, error, stats = raw
        return Event(stats.name, stats.event_type, start, duration, error, self.time_format,
                     compact=self.compact_time)

    @property
    def events(self) -> list[Event]:
        """The most recent calls (at most ``max_events``), oldest first, as mappings."""
        return [self._event(raw) for raw in self.raw_events()]

    @property
    def call_counts(self) -> dict[str, int]:
        """Calls per function, exact over every call ever made (a snapshot)."""
        with self._lock:
            self._drain_locked()
            return {name: s.calls for name, s in self._stats.items() if s.calls}

    @property
    def success_counts(self) -> dict[str, int]:
        """Successful calls per function, exact over every call ever made (a snapshot)."""
        with self._lock:
            self._drain_locked()
            return {name: s.successes for name, s in self._stats.items() if s.calls}

    @property
    def decorator_overhead(self) -> dict[str, float]:
        """Seconds the wrapper added to each function's calls in total (a snapshot)."""
        return {snap.name: snap.overhead for snap in self.snapshot()}

    def _select(self, function_filter: str | Iterable[str] | None) -> list[FunctionStats]:
        if function_filter is None:
            return [s for s in self._stats.values() if s.calls]
        if isinstance(function_filter, str):
            names = {function_filter}
        elif isinstance(function_filter, Iterable):
            names = set(function_filter)
            if not all(isinstance(n, str) for n in names):
                raise TypeError("function_filter must hold only str names")
        else:
            raise TypeError(
                f"function_filter must be a str, an iterable of str or None, "
                f"got {type(function_filter).__name__}"
            )
        return [s for n in sorted(names) if (s := self._stats.get(n)) is not None and s.calls]

    def get_stats(self, function_filter: str | Iterable[str] | None = None) -> dict[str, Any]:
        """Return statistics over every call of the selected functions.

        Everything except ``event_count`` covers every call ever made, not just the
        retained events.  Durations and percentiles are in seconds.

        Args:
            function_filter: a function name, several names, or None for all.

        """
        with self._lock:
            self._drain_locked()
            selected = self._select(function_filter)
            chosen = {id(s) for s in selected}
            event_count = sum(1 for raw in self._ring.raw() if id(raw[3]) in chosen)
            sketch = DurationSketch()
            for stats in selected:
                sketch.merge(stats.sketch)
            total_calls = sum(s.calls for s in selected)
            total_success = sum(s.successes for s in selected)
            total_time = math.fsum(s.total for s in selected)
            slowest = max(
                ((s, s.slowest) for s in selected if s.slowest), key=lambda p: p[1][1],
                default=None,
            )
            fastest = min(
                ((s, s.fastest) for s in selected if s.fastest), key=lambda p: p[1][1],
                default=None,
            )
            fmt, compact = self.time_format, self.compact_time
            return {
                "total_calls": total_calls,
                "total_success": total_success,
                "success_rate": total_success / total_calls * 100 if total_calls else 0.0,
                "total_time": total_time,
                "avg_duration": total_time / total_calls if total_calls else 0.0,
                "slowest": slowest[0].event(slowest[1], fmt, compact=compact) if slowest else None,
                "fastest": fastest[0].event(fastest[1], fmt, compact=compact) if fastest else None,
                "duration_counts": {
                    "fast": sum(s.fast for s in selected),
                    "medium": sum(s.medium for s in selected),
                    "slow": sum(s.slow for s in selected),
                },
                "function_count": len(selected),
                "event_count": event_count,
                **sketch.summary(),
            }

    def log_summary(self) -> None:
        """Log the two summary lines (calls, success, average; speed mix) to the console logger."""
        if not self.enabled:
            return
        stats = self.get_stats()
        self.console_logger.info(
            "Analytics Summary: %s calls | %.1f%% success | avg %.3fs",
            stats["total_calls"], stats["success_rate"], stats["avg_duration"],
        )
        counts = stats["duration_counts"]
        total = sum(counts.values()) or 1
        self.console_logger.info(
            "Performance: fast %.0f%% | medium %.0f%% | slow %.0f%%",
            counts["fast"] / total * 100, counts["medium"] / total * 100,
            counts["slow"] / total * 100,
        )

    # -------------------------------------------------------------- maintenance
    def clear_old_events(self, days: float = 7) -> int:
        """Remove retained events that started more than ``days`` days ago.

        Works in both time modes; the exact aggregates are untouched.

        Returns:
            The number of events removed.

        """
        if isinstance(days, bool) or not isinstance(days, int | float):
            raise TypeError(f"days must be a number, got {type(days).__name__}")
        if not days >= 0:  # also rejects NaN
            raise ValueError(f"days must be >= 0, got {days!r}")
        cutoff = time.time() - days * _SECONDS_PER_DAY
        with self._lock:
            self._drain_locked()
            removed = self._ring.filter(lambda raw: raw[0] >= cutoff)
        if self._store is not None:
            self._store.prune_events(cutoff)
        return removed

    def merge_with(self, other: Analytics) -> None:
        """Move everything ``other`` recorded into this instance and clear ``other``.

        Counts, successes, overhead and sketches add up exactly; the retained events
        become the newest ``max_events`` of both (a warning says how many were dropped).
        """
        if other is self:
            return
        if not isinstance(other, Analytics):
            raise TypeError(f"can only merge another Analytics, got {type(other).__name__}")
        first, second = sorted((self, other), key=lambda a: a.instance_id)
        with first._lock, second._lock:
            self._drain_locked()
            other._drain_locked()
            mapping: dict[int, FunctionStats] = {}
            for name, theirs in other._stats.items():
                mine = self._stats.get(name)
                if mine is None:
                    mine = self._stats[name] = FunctionStats(name, theirs.event_type,
                                                             theirs.module)
                mine.merge(theirs)
                mapping[id(theirs)] = mine
                theirs.reset()
            incoming = [(s, d, e, mapping[id(st)]) for s, d, e, st in other._ring.raw()]
            dropped = self._ring.replace(self._ring.raw() + incoming)
            other._ring.clear()
        other.flush()  # its run drops the moved rows now, before it records again
        if dropped:
            self.console_logger.warning(
                "Dropped %s events during merge due to max_events=%s limit", dropped,
                self.max_events,
            )

    def restore(self, functions: Iterable[FunctionSnapshot],
                events: Iterable[tuple[float, float, str | None, str]]) -> None:
        """Add stored aggregates and events (``(start, duration, error, name)``) to this instance.

        Used to rebuild a view from a store; the functions' totals are added to any
        already here.
        """
        with self._lock:
            self._drain_locked()
            for snap in functions:
                stats = self._stats.get(snap.name)
                if stats is None:
                    stats = self._stats[snap.name] = FunctionStats(snap.name, snap.event_type,
                                                                   snap.module)
                loaded = FunctionStats(snap.name, snap.event_type, snap.module)
                loaded.calls, loaded.successes, loaded.total = snap.calls, snap.successes, \
                    snap.total
                loaded.fast, loaded.medium, loaded.slow = snap.fast, snap.medium, snap.slow
                loaded.sketch = snap.sketch.copy()
                loaded.drain_seconds = snap.overhead
                for attr, event in (("slowest", snap.slowest), ("fastest", snap.fastest)):
                    if event is not None:
                        setattr(loaded, attr, (event.start, event.duration, event.error))
                stats.merge(loaded)
            raw: list[RawEvent] = []
            for start, duration, error, name in events:
                stats = self._stats.get(name)
                if stats is None:
                    stats = self._stats[name] = FunctionStats(name, "unknown", "<store>")
                raw.append((start, duration, error, stats))
            self._ring.replace(self._ring.raw() + raw)

    # ------------------------------------------------- report, console, store
    def render_report(self, *, force_mode: bool = False) -> str:
        """Render the HTML report to a string without writing it."""
        from callmetrics._report import render_report  # noqa: PLC0415  # load jinja2 on use

        return render_report(self, force_mode=force_mode)

    def generate_reports(self, force_mode: bool = False, *,  # seed API
                         path: str | Path | None = None) -> Path | None:
        """Write the HTML report and return its path (None when nothing was recorded).

        Args:
            force_mode: write the full report (``analytics_full.html``) rather than the
                incremental one.
            path: where to write; defaults to ``report_dir``.  An explicit path that
                cannot be written raises ``OSError``.

        """
        from callmetrics._report import generate_reports  # noqa: PLC0415  # load jinja2 on use

        return generate_reports(self, force_mode=force_mode, path=path)

    def batch_mode(
        self, message: str = "Processing...", console: Console | None = None, *,
        total: int | None = None,
    ) -> BatchMode:
        """Suppress per-call console lines and show a spinner (or a progress bar).

        Usable as ``with`` and ``async with``; see :mod:`callmetrics._console`.
        """
        from callmetrics._console import BatchMode  # noqa: PLC0415  # load rich on use

        return BatchMode(self, message, console, total=total)

    def print_summary(self, console: Console | None = None) -> None:
        """Print a table of per-function statistics, sorted by total time."""
        from callmetrics._console import print_summary  # noqa: PLC0415  # load rich on use

        print_summary(self, console)

    def to_dict(self) -> dict[str, Any]:
        """Return the documented JSON-ready form of this instance's statistics."""
        from callmetrics._export import to_dict  # noqa: PLC0415

        return to_dict(self)

    def flush(self) -> None:
        """Write everything recorded so far to the store, if one is attached."""
        if self._store is not None:
            self._store.flush()

    def close(self) -> None:
        """Flush and detach the store, if any; tracking in memory goes on."""
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    def __enter__(self) -> Analytics:
        """Return self; leaving the block closes the store."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Flush and close the store."""
        self.close()

    def __repr__(self) -> str:
        """Identify the instance and how many functions it tracks."""
        return (f"Analytics(#{self.instance_id}, enabled={self.enabled}, "
                f"functions={len(self._stats)}, max_events={self.max_events})")


class _Measure:
    """Context manager behind :meth:`Analytics.measure` (sync and async)."""

    __slots__ = ("_analytics", "_failed", "_ok", "_started", "_stats", "_t0")

    def __init__(self, stats: FunctionStats | None, analytics: Analytics) -> None:
        self._stats = stats
        self._analytics = analytics
        if stats is not None:
            self._ok, self._failed, _ = analytics._finisher_for(stats)
        self._t0 = 0.0
        self._started: list[tuple[CallObserver, object]] = []

    def __enter__(self) -> _Measure:
        if self._stats is not None:
            if self._analytics.observers:
                self._started = start_observers(self._analytics, self._stats)
            self._t0 = perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._stats is None:
            return
        duration = self._ok(self._t0) if exc is None else self._failed(self._t0, exc)
        if self._started:
            end_observers(self._started, self._stats, duration, exc)

    async def __aenter__(self) -> _Measure:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)
