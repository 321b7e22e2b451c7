"""``Analytics``: the seed-compatible façade over the recorder.

Decorators and ``measure()`` record into a ``Recorder`` (``_recorder.py``); the
read-back (``get_stats``, ``events``, ``snapshot``...) reads it under its lock, and
the outputs (report, console, store, exporters) read through the ``Source``
interface (``settings``, ``snapshot()``, ``retained()``, ``read()``), loaded lazily.
"""

from __future__ import annotations

import itertools
import sys
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from callmetrics._engine import sinks
from callmetrics._engine.adhoc import AdHocCalls, check_expected, check_text
from callmetrics._engine.aggregate import FunctionStats
from callmetrics._engine.columns import CallColumns
from callmetrics._engine.config import AnalyticsConfig, coerce_config
from callmetrics._engine.logs import CallLogger, default_loggers, report_internal_error
from callmetrics._engine.measure import BlockKind, Measure, NoMeasure, new_measure
from callmetrics._engine.observing import Observing
from callmetrics._engine.readback import ReadBack
from callmetrics._engine.recorder import Recorder
from callmetrics._engine.records import LoggerContainer
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._engine.transfer import merge_into, restore_into
from callmetrics._engine.view import RetainedCall
from callmetrics._engine.wrap import (
    OWNER_ATTRIBUTE,
    Ends,
    callable_kind,
    callable_module,
    recorded_name,
    wrap,
)
from callmetrics._outputs.methods import Outputs

__all__ = ["Analytics"]

_new_object = object.__new__

P = ParamSpec("P")
R = TypeVar("R")

_SECONDS_PER_DAY = 86_400.0
_GC_THRESHOLD = 5_000


class Analytics(ReadBack, AdHocCalls, Observing, Outputs):
    """Tracks function performance, success rates, and execution patterns.

    Decorate functions with :meth:`track`; read exact statistics with
    :meth:`get_stats`, recent calls with :attr:`events`, and write a report with
    :meth:`generate_reports`.  Safe to use from many threads and asyncio tasks.
    """

    _ids = itertools.count(1)
    GC_COLLECTION_THRESHOLD = _GC_THRESHOLD

    def __init__(self, config: object = None, loggers: LoggerContainer | None = None,
                 max_events: int | None = None, *, store: str | Path | None = None,
                 track_concurrency: bool | None = None, bulk: bool = False,
                 cpu_time: bool | None = None) -> None:
        """Create an instance.

        Args:
            config: None (defaults), an ``AnalyticsConfig``, a mapping of its fields,
                or an object with an ``analytics`` attribute holding one of those.  It
                stays available, as passed, as ``config``; the validated settings in
                force are ``settings``.
            loggers: the console, error and analytics loggers; None gives
                ``callmetrics.*`` standard-library loggers.
            max_events: overrides ``config.max_events`` (0 keeps every event).
            store: a SQLite file to persist this run to (overrides ``store_path``).
            track_concurrency: count each function's calls in progress (overrides
                ``config.track_concurrency``; see ``calls_in_progress``).
            bulk: drain in large chunks (cheaper per call, rarer longer pauses): for runs.
            cpu_time: measure each sync call's thread CPU time (overrides
                ``config.cpu_time``; a call observer: see the README's CPU time).

        Raises:
            TypeError: for a value of the wrong type (the message names the field).
            ValueError: for an out-of-range value (the message names the field).

        """
        cfg = coerce_config(config)
        if max_events is not None:
            cfg = cfg.replace(max_events=max_events)
        if store is not None:
            cfg = cfg.replace(store_path=store)
        if track_concurrency is not None:
            cfg = cfg.replace(track_concurrency=track_concurrency)
        if cpu_time is not None:
            cfg = cfg.replace(cpu_time=cpu_time)
        if loggers is None:
            loggers = default_loggers()
        elif not isinstance(loggers, LoggerContainer):
            raise TypeError(f"loggers must be a LoggerContainer, got {type(loggers).__name__}")

        self.instance_id = next(Analytics._ids)
        self.config: Any = cfg if config is None else config
        self.settings: AnalyticsConfig = cfg
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

        self._recorder = Recorder(max_events=cfg.max_events, max_functions=cfg.max_functions,
                                  short_max=self.short_max, medium_max=self.medium_max,
                                  warn=self._warn, bulk=bulk)
        self._lock = self._recorder.lock  # the store's fork hooks hold it across fork()
        # The wrappers' runtime (see _ends.Runtime): the buffer and the bounded drain.
        self.buffer = self._recorder.buffer
        self.drain_soon = self._recorder.drain_soon
        self._call_logger = CallLogger(loggers, self.long_max, 3 * self._recorder.chunk)
        self._start_observing(cfg.track_concurrency, cfg.cpu_time)
        self.ends = Ends(self)
        self._adhoc: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Callable[..., Any]]]
        self._adhoc = weakref.WeakKeyDictionary()
        self._blocks: dict[str, BlockKind] = {}
        # accel: names measured before are answered in C (the same Measure as the
        # Python method's, which the C one falls back to); None without it.
        self._measure_host = sinks.measure_host(self, python_measure.__get__(self),
                                                 self._blocks)
        self._store: Any = None
        if cfg.store_path is not None and self.enabled:
            from callmetrics._store import attach_store  # noqa: PLC0415  # optional feature

            self._store = attach_store(self, Path(cfg.store_path))
        try:
            self.console_logger.debug("Analytics #%s initialized", self.instance_id)
        except Exception as exc:  # noqa: BLE001  # a broken handler must not break start-up
            report_internal_error("logging", exc)

    def _warn(self, message: str) -> None:
        try:
            self.console_logger.warning("%s", message)
        except Exception as exc:  # noqa: BLE001  # a broken handler must not break tracking
            report_internal_error("logging", exc)

    # ----------------------------------------------------------------- runtime
    @property
    def call_logger(self) -> CallLogger:
        """The per-call log writer (part of the wrappers' runtime)."""
        return self._call_logger

    # -------------------------------------------------------------- decorators
    def track(
        self, event_type: str, *, name: str | None = None,
        expected: type[BaseException] | tuple[type[BaseException], ...] = (),
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Return a decorator that records every call of the function it decorates.

        Works on functions, coroutines, generators, async generators, methods,
        classmethods, staticmethods and other callables.  A tracked object binds as
        the original does (a tracked ``functools.partial`` stored on a class does not
        become a method).  Decorating this instance's own wrapper again warns and
        returns it unchanged.

        Args:
            event_type: the category shown next to the function (e.g. "API call").
            name: the key to record under; defaults to the ``__qualname__`` without
                ``<locals>`` parts.
            expected: an exception class, or a tuple of them, that this function
                raises as part of its normal work (control flow): such a call counts as
                a success noted ``expected KeyError`` (``get_stats()["expected_exceptions"]``
                counts them); the exception still propagates.

        Raises:
            TypeError, ValueError: for a bad ``event_type``, ``name`` or ``expected``,
                at once.

        """
        check_text("event_type", event_type)
        if name is not None:
            check_text("name", name)
        types = check_expected(expected)

        def decorator(func: Callable[P, R]) -> Callable[P, R]:
            return self._decorate(func, event_type, name, types)  # type: ignore[no-any-return]

        return decorator

    def _decorate(self, func: Any, event_type: str, name: str | None,
                  expected: tuple[type[BaseException], ...] = ()) -> Any:
        if isinstance(func, classmethod | staticmethod):
            if getattr(func, OWNER_ATTRIBUTE, None) is self:
                return self._already(func)
            return type(func)(self._decorate(func.__func__, event_type, name, expected))
        if not callable(func):
            raise TypeError(f"track() needs a callable, got {type(func).__name__}")
        if not self.enabled:
            return func
        if getattr(func, OWNER_ATTRIBUTE, None) is self:
            return self._already(func)
        key = name if name is not None else recorded_name(func)
        stats = self._recorder.stats_for(key, event_type, callable_module(func),
                                         explicit=name is not None)
        if expected:
            self.ends.expect(stats, expected)
        wrapper = wrap(func, callable_kind(func), stats, self)
        if "callmetrics._zerocode.hooks" in sys.modules:  # zero-code tracking in use
            from callmetrics._zerocode.hooks import decorated  # noqa: PLC0415  # loaded already

            decorated(func)  # its wrapper records it: sys.monitoring must not count it too
        return wrapper

    def function_stats(self, name: str, event_type: str, module: str,
                       kind: str) -> FunctionStats:
        """Return the aggregates the calls of ``name`` go to (zero-code tracking's).

        ``kind`` is ``sync``, ``async``, ``gen`` or ``agen``.
        """
        stats = self._recorder.stats_for(name, event_type, module, explicit=True)
        stats.kind = kind
        return stats

    def _already(self, wrapper: Any) -> Any:
        self._warn(f"callmetrics: {recorded_name(wrapper)} is already tracked by this "
                   "instance; returning the existing wrapper (each call counts once)")
        return wrapper

    def measure(self, name: str, *, event_type: str = "block",
                expected: type[BaseException] | tuple[type[BaseException], ...] = (),
                ) -> Measure | NoMeasure:
        """Time a block of code, recorded like a call of a function called ``name``.

        Usable as ``with`` and ``async with``; an exception leaving the block is a
        failure and propagates, unless it is one of ``expected`` (as for ``track``):
        then the block is a success noted ``expected KeyError``.  What ``name``
        resolves to is cached: a fresh ``measure("x")`` per block costs about as much
        as a tracked call.
        """
        kind = self._blocks.get(name)  # a name of a bad type misses, then fails below
        if expected and kind is not None and kind.event_type == event_type:
            self.ends.expect(kind.stats, check_expected(expected))
        if kind is not None and kind.event_type == event_type:
            # new_measure(kind) inline: a fresh block per `with` is the common use, and
            # one more Python call here would cost as much as the rest of measure().
            block: Measure = _new_object(Measure)
            block._kind = kind
            block._started = False
            block.message = None
            return block
        check_text("name", name)
        check_text("event_type", event_type)
        if not self.enabled:
            return NoMeasure()
        types = check_expected(expected)
        stats = self._recorder.stats_for(name, event_type, "<block>", explicit=True)
        stats.kind = "block"
        if types:
            self.ends.expect(stats, types)
        kind = BlockKind(stats, event_type, self)
        if len(self._blocks) < 4 * max(self.settings.max_functions, 1):
            self._blocks[name] = kind
        return new_measure(kind)

    # -------------------------------------------------------- zero-code tracking
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
        from callmetrics._zerocode.instrument import instrument  # noqa: PLC0415  # zero-code only

        instrument(self, patterns, exclude=exclude, event_type=event_type)

    def uninstrument(self) -> None:
        """Undo every :meth:`instrument` of this instance (functions already running finish)."""
        from callmetrics._zerocode.instrument import uninstrument  # noqa: PLC0415  # zero-code only

        uninstrument(self)

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
        with self._recorder.reading():
            removed = self._recorder.ring.filter(lambda call: call[0] >= cutoff)
        if self._store is not None:
            self._store.prune_events(cutoff)
        return removed

    def merge_with(self, other: Analytics) -> None:
        """Move everything ``other`` recorded into this instance and clear ``other``.

        Counts, successes, overhead and sketches add up exactly.  The retained events
        are, as in the seed, this instance's own, then the other's newest that fit
        under ``max_events``; a warning says how many of the other's were dropped.
        """
        if other is self:
            return
        if not isinstance(other, Analytics):
            raise TypeError(f"can only merge another Analytics, got {type(other).__name__}")
        first, second = sorted((self, other), key=lambda a: a._recorder.order)
        with first._recorder.reading(), second._recorder.reading():
            dropped = merge_into(self._recorder, other._recorder)
        other.flush()  # its run drops the moved rows now, before it records again
        if dropped:
            self.console_logger.warning(
                "Dropped %s events during merge due to max_events=%s limit", dropped,
                self.max_events,
            )

    def restore(self, functions: Iterable[FunctionSnapshot],
                events: Iterable[RetainedCall | tuple[Any, ...]] | CallColumns, *,
                wall_time: float | None = None) -> None:
        """Add stored aggregates and events to this instance.

        ``events`` are ``RetainedCall`` tuples (as a store read gives them, a failure's
        ``message`` and ``location`` kept), or plain ``(start, duration, error, name)``
        optionally followed by ``message`` and ``location``; a call with no error but a
        message is a success with a note.  Used to rebuild a view from a store; the
        functions' totals are added to any already here.  ``wall_time``: the seconds
        the stored runs spanned, reported from then on as this instance's wall time
        (instead of the time since its creation).
        """
        with self._recorder.reading():
            restore_into(self._recorder, functions, events)
            if wall_time is not None:
                self._recorder.wall = wall_time

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
                f"functions={len(self._recorder.stats)}, max_events={self.max_events})")


# measure() in Python: what Analytics.measure is without the accelerator, and what
# the C one (a method made for Analytics itself) falls back to with it.
python_measure = Analytics.measure
if (_c_measure := sinks.measure_method(Analytics)) is not None:
    setattr(Analytics, "measure", _c_measure)  # noqa: B010  # mypy keeps the Python signature
