"""Batch mode: quiet per-call lines, a spinner or progress bar, and one closing line.

``Analytics.batch_mode()`` returns a :class:`BatchMode`; it draws on the shared
console of :mod:`callmetrics._outputs.console`.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar, Token
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape, render
from rich.progress import (
    TaskID,
)

from callmetrics._engine.logs import CONSOLE_SUPPRESSED, report_internal_error
from callmetrics._engine.sketch import DurationSketch
from callmetrics._engine.sketch_keys import MAX_F32
from callmetrics._format import count, duration, printable
from callmetrics._outputs.console import get_console
from callmetrics._outputs.progress import Display, acquire_display, release_display

if TYPE_CHECKING:
    import logging

    from callmetrics._engine.ends import CallObserver

__all__ = ["BatchMode", "Observed"]


class Observed(Protocol):
    """What a batch needs of an ``Analytics``: its id, its observers, its console logger."""

    @property
    def instance_id(self) -> int:
        """The instance's id, unique in the process."""

    @property
    def console_logger(self) -> logging.Logger:
        """The logger of per-call console lines."""

    def add_observer(self, observer: CallObserver) -> None:
        """Have ``observer`` see every tracked call's start and end."""

    def remove_observer(self, observer: CallObserver) -> None:
        """Stop ``observer`` seeing calls."""

# Durations a batch holds before folding them into its sketch: memory stays bounded.
_FOLD_AT = 4096


# ----------------------------------------------------------------- batch mode
# The batches open in the current context, innermost last.  A ContextVar, so two
# asyncio tasks (or threads) each see their own batches.
_ACTIVE: ContextVar[tuple[BatchMode, ...]] = ContextVar("callmetrics_batches", default=())


class _BatchObserver:
    """Credits each tracked call of one ``Analytics`` to the batches open around it."""

    def __init__(self, analytics: Observed) -> None:
        self.analytics = analytics
        self.users = 0
        # How many tracked calls of this instance enclose the current point: a call
        # made at the depth its batch started at is one of the batch's own items.
        self.depth: ContextVar[int] = ContextVar(
            f"callmetrics_depth_{analytics.instance_id}", default=0)

    def on_start(self, stats: object) -> object:  # noqa: ARG002  # observer protocol
        mine = tuple(b for b in _ACTIVE.get() if b.analytics is self.analytics)
        if not mine:
            return None
        depth = self.depth.get()
        self.depth.set(depth + 1)
        return mine, depth

    def on_end(self, token: object, stats: object,  # noqa: ARG002  # observer protocol
               took: float, error: BaseException | None) -> None:
        if not isinstance(token, tuple):
            return
        batches: tuple[BatchMode, ...] = token[0]
        depth: int = token[1]
        # set(), not reset(): a generator may finish in another context than it started.
        self.depth.set(depth)
        for batch in batches:
            batch._record(took, failed=error is not None, own_item=depth == batch._depth)


_observers_lock = threading.Lock()
_observers: dict[int, _BatchObserver] = {}


def _acquire_observer(analytics: Observed) -> _BatchObserver:
    with _observers_lock:
        observer = _observers.get(id(analytics))
        if observer is None:
            observer = _observers[id(analytics)] = _BatchObserver(analytics)
            analytics.add_observer(observer)
        observer.users += 1
        return observer


def _release_observer(observer: _BatchObserver) -> None:
    with _observers_lock:
        observer.users -= 1
        if observer.users == 0:
            _observers.pop(id(observer.analytics), None)
            observer.analytics.remove_observer(observer)


def _check_total(total: object) -> int | None:
    if total is None:
        return None
    if isinstance(total, bool) or not isinstance(total, int):
        raise TypeError(f"total must be an int or None, got {type(total).__name__}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total!r}")
    return total


def _displayable(message: str) -> str:
    """Return ``message`` as Rich markup: itself when valid, else escaped to show as written.

    Control characters are shown as escapes first: markup may style, never command.
    """
    message = printable(message)
    try:
        render(message)
    except MarkupError:
        return escape(message)
    return message


class BatchMode:
    """Context manager behind ``Analytics.batch_mode`` (``with`` and ``async with``).

    While open it suppresses the per-call console lines in its context, shows a
    spinner (a progress bar with ``total=``) when the console is a terminal, and
    counts the tracked calls made inside it.  On exit it logs
    ``Batch completed: N calls in <wall time> (p50 <median> per call, F failed)`` on the
    console logger: the wall time of the whole batch, and the median duration of its
    calls (an average of overlapping calls' durations would not add up to the wall time).

    With ``total=``, each tracked call made directly inside the batch (not the
    tracked calls those make) advances the bar, until the first explicit
    :meth:`advance`, after which only :meth:`advance` moves it.  Calls count when
    made in the batch's context: its thread, and asyncio tasks started inside it.
    """

    def __init__(self, analytics: Observed, message: str, console: Console | None, *,
                 total: int | None = None) -> None:
        """Prepare a batch; nothing is shown until it is entered.

        Raises:
            TypeError, ValueError: for a bad ``message``, ``console`` or ``total``.

        """
        if not isinstance(message, str):
            raise TypeError(f"message must be a str, got {type(message).__name__}")
        if console is not None and not isinstance(console, Console):
            raise TypeError(f"console must be a rich Console or None, got "
                            f"{type(console).__name__}")
        self.analytics = analytics
        self.message = message
        self.total = _check_total(total)
        self._console = console
        self._lock = threading.Lock()
        self._calls = 0
        self._failed = 0
        self._durations = DurationSketch()
        self._pending: list[float] = []
        self._completed = 0
        self._manual = False
        self._open = False
        self._began = 0.0
        self._depth = 0
        self._observer: _BatchObserver | None = None
        self._display: Display | None = None
        self._task: TaskID | None = None
        self._active_token: Token[tuple[BatchMode, ...]] | None = None
        self._suppress_token: Token[int] | None = None

    @property
    def calls(self) -> int:
        """Tracked calls finished inside this batch so far (nested calls included)."""
        return self._calls

    @property
    def completed(self) -> int:
        """How far the batch has advanced (its own items, or the sum of ``advance()``)."""
        return self._completed

    def update(self, status: str | None = None, *, total: int | None = None) -> None:
        """Change the text next to the spinner (Rich markup allowed) and/or the total."""
        if status is not None:
            if not isinstance(status, str):
                raise TypeError(f"status must be a str, got {type(status).__name__}")
            self.message = status
        if total is not None:
            self.total = _check_total(total)
        self._refresh(description=True)

    def advance(self, amount: int = 1) -> None:
        """Move the progress forward by ``amount`` items; from now on only this moves it."""
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"amount must be an int, got {type(amount).__name__}")
        with self._lock:
            if not self._manual:
                self._manual = True
                self._completed = 0
            self._completed += amount
        self._refresh()

    def _record(self, took: float, *, failed: bool, own_item: bool) -> None:
        with self._lock:
            self._calls += 1
            self._failed += failed
            # Folded into the sketch in bulk: a tenth of the cost of adding one by one.
            self._pending.append(took)
            if len(self._pending) >= _FOLD_AT:
                self._fold()
            if own_item and not self._manual:
                self._completed += 1
        self._refresh()

    def _fold(self) -> None:
        """Add the pending durations to the sketch (called with ``_lock`` held).

        Only the values the sketch accepts are folded: finite, non-negative and at most
        the largest float32 (``add_sorted`` trusts its input; NaN fails both bounds).
        """
        pending = sorted(d for d in self._pending if 0.0 <= d <= MAX_F32)
        self._pending.clear()
        self._durations.add_sorted(pending)

    def _refresh(self, *, description: bool = False) -> None:
        display, task = self._display, self._task
        if display is None or task is None:
            return
        try:
            # A new text is drawn at once; counts wait for the next frame (10 per second).
            display.progress.update(task, completed=self._completed, calls=self._calls,
                                    description=_displayable(self.message) if description
                                    else None, total=self.total, refresh=description)
        except Exception as exc:  # noqa: BLE001  # a drawing problem must not break the call
            report_internal_error("batch progress display", exc)

    # ------------------------------------------------------------------ enter/exit
    def __enter__(self) -> BatchMode:
        """Start the batch: suppress per-call console lines, show the spinner."""
        if self._open:
            raise RuntimeError("this batch_mode block is already open")
        self._open = True
        self._calls, self._failed, self._completed, self._manual = 0, 0, 0, False
        self._durations = DurationSketch()
        self._pending = []
        self._suppress_token = CONSOLE_SUPPRESSED.set(CONSOLE_SUPPRESSED.get() + 1)
        self._observer = _acquire_observer(self.analytics)
        self._depth = self._observer.depth.get()
        self._active_token = _ACTIVE.set((*_ACTIVE.get(), self))
        console = self._console or get_console()
        if console.is_terminal:
            try:
                display = acquire_display(console)
            except Exception as exc:  # noqa: BLE001  # e.g. another live display: go without
                report_internal_error("batch progress display", exc)
            else:
                self._display = display
                self._task = display.progress.add_task(_displayable(self.message),
                                                       total=self.total, calls=0)
        self._began = perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """End the batch: restore console lines for this context, log the batch line."""
        elapsed = perf_counter() - self._began
        self._leave()
        if self._calls:
            with self._lock:
                self._fold()
            failed = f", {count(self._failed)} failed" if self._failed else ""
            self.analytics.console_logger.info(
                "Batch completed: %s %s in %s (p50 %s per call%s)",
                count(self._calls), "call" if self._calls == 1 else "calls", duration(elapsed),
                duration(self._durations.quantile(0.5)), failed,
            )

    async def __aenter__(self) -> BatchMode:
        """Start the batch (see ``__enter__``)."""
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """End the batch (see ``__exit__``)."""
        self.__exit__(exc_type, exc, tb)

    def _leave(self) -> None:
        self._open = False
        if self._active_token is not None:
            try:
                _ACTIVE.reset(self._active_token)
            except ValueError:  # left in another context than entered: drop just this one
                _ACTIVE.set(tuple(b for b in _ACTIVE.get() if b is not self))
            self._active_token = None
        if self._suppress_token is not None:
            try:
                CONSOLE_SUPPRESSED.reset(self._suppress_token)
            except ValueError:  # left in another context than entered
                CONSOLE_SUPPRESSED.set(max(CONSOLE_SUPPRESSED.get() - 1, 0))
            self._suppress_token = None
        if self._observer is not None:
            _release_observer(self._observer)
            self._observer = None
        display, task = self._display, self._task
        self._display = self._task = None
        if display is not None:
            try:
                if task is not None:
                    display.progress.remove_task(task)
            finally:
                release_display(display)

    def __repr__(self) -> str:
        """Show the message and the counts."""
        return (f"BatchMode({self.message!r}, calls={self._calls}, "
                f"completed={self._completed}, total={self.total})")
