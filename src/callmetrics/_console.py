"""Terminal output: batch progress, the summary table, and one Rich console shared with logging.

Everything that draws on the terminal goes through one Rich ``Console``
(:func:`get_console`); attach :func:`logging_handler` to your loggers and a log
line is printed above a running spinner instead of tearing it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleRenderable
from rich.errors import MarkupError
from rich.logging import RichHandler
from rich.markup import escape, render
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from callmetrics._format import count, duration, percent, printable
from callmetrics._logging import CONSOLE_SUPPRESSED, report_internal_error
from callmetrics._sketch import DurationSketch
from callmetrics._state import FunctionSnapshot

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics
    from callmetrics._view import Source

__all__ = [
    "BatchMode",
    "format_seconds",
    "get_console",
    "logging_handler",
    "logging_to_console",
    "print_summary",
    "summary_rows",
]

_console_lock = threading.Lock()
_shared_console: Console | None = None


def get_console() -> Console:
    """Return the Rich console that callmetrics draws on (created on first use, stdout)."""
    global _shared_console  # noqa: PLW0603  # one console per process is the point
    with _console_lock:
        if _shared_console is None:
            _shared_console = Console()
        return _shared_console


def logging_handler(console: Console | None = None, *,
                    level: int = logging.NOTSET) -> logging.Handler:
    """Return a logging handler that prints through the shared console (or ``console``).

    Add it to the loggers you want on screen (for example ``analytics.console_logger``):
    lines logged while a batch spinner runs then appear above it, intact.

    Args:
        console: the console to print on; defaults to :func:`get_console`.
        level: the handler's level.

    """
    return _SafeRichHandler(level, console or get_console(), show_path=False, markup=False,
                            rich_tracebacks=False)


class _SafeRichHandler(RichHandler):
    """A RichHandler that shows control characters in messages as escapes, never obeyed."""

    def render_message(self, record: logging.LogRecord, message: str) -> ConsoleRenderable:
        """Return the message with every control or bidi character made visible."""
        # Keep the line breaks of multi-line messages (tracebacks); escape the rest.
        safe = "\n".join(printable(line) for line in message.split("\n"))
        return super().render_message(record, safe)


@contextmanager
def logging_to_console(logger: logging.Logger, console: Console | None = None, *,
                       level: int = logging.INFO) -> Iterator[logging.Handler]:
    """Show ``logger``'s records from ``level`` up on the console while the block runs.

    Adds a :func:`logging_handler` and lowers the logger's level if needed; both are
    undone on exit.
    """
    handler = logging_handler(console, level=level)
    previous = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


# Kept for modules that imported it from here: the one formatter is ``_format.duration``.
format_seconds = duration


# ----------------------------------------------------------------- batch mode
# The batches open in the current context, innermost last.  A ContextVar, so two
# asyncio tasks (or threads) each see their own batches.
_ACTIVE: ContextVar[tuple[BatchMode, ...]] = ContextVar("callmetrics_batches", default=())


class _BatchObserver:
    """Credits each tracked call of one ``Analytics`` to the batches open around it."""

    def __init__(self, analytics: Analytics) -> None:
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


def _acquire_observer(analytics: Analytics) -> _BatchObserver:
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


class _CountColumn(ProgressColumn):
    """``3/10`` with a total, ``3 calls`` without."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text(f"{task.fields.get('calls', 0)} calls", style="progress.download")
        return Text(f"{task.completed:.0f}/{task.total:.0f}", style="progress.download")


class _RateColumn(ProgressColumn):
    """Items per second, once there is a rate to show."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "", style="progress.data.speed")


class _TimeColumn(ProgressColumn):
    """The ETA with a total, the elapsed time without."""

    def __init__(self) -> None:
        super().__init__()
        self._eta = TimeRemainingColumn()
        self._elapsed = TimeElapsedColumn()

    def render(self, task: Task) -> Text:
        if task.total is None:
            return self._elapsed.render(task)
        eta = self._eta.render(task)
        return Text.assemble("ETA ", eta)


class _BarColumn(BarColumn):
    """A progress bar, only for batches with a total (a spinner says enough otherwise)."""

    def render(self, task: Task) -> Any:
        return Text("") if task.total is None else super().render(task)


class _Display:
    """One live progress block per console; each open batch is a row in it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.users = 0
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), _BarColumn(bar_width=30),
            _CountColumn(), _RateColumn(), _TimeColumn(),
            console=console, transient=True,
        )


_displays_lock = threading.Lock()
_displays: dict[int, _Display] = {}


def _acquire_display(console: Console) -> _Display:
    with _displays_lock:
        display = _displays.get(id(console))
        if display is None:
            display = _Display(console)
            display.progress.start()
            _displays[id(console)] = display
        display.users += 1
        return display


def _release_display(display: _Display) -> None:
    with _displays_lock:
        display.users -= 1
        if display.users:
            return
        _displays.pop(id(display.console), None)
    display.progress.stop()


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

    def __init__(self, analytics: Analytics, message: str, console: Console | None, *,
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
        self._completed = 0
        self._manual = False
        self._open = False
        self._began = 0.0
        self._depth = 0
        self._observer: _BatchObserver | None = None
        self._display: _Display | None = None
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
            self._durations.add(took)
            if own_item and not self._manual:
                self._completed += 1
        self._refresh()

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
        self._suppress_token = CONSOLE_SUPPRESSED.set(CONSOLE_SUPPRESSED.get() + 1)
        self._observer = _acquire_observer(self.analytics)
        self._depth = self._observer.depth.get()
        self._active_token = _ACTIVE.set((*_ACTIVE.get(), self))
        console = self._console or get_console()
        if console.is_terminal:
            try:
                display = _acquire_display(console)
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
            failed = f", {count(self._failed)} failed" if self._failed else ""
            self.analytics.console_logger.info(
                "Batch completed: %s calls in %s (p50 %s per call%s)",
                count(self._calls), duration(elapsed),
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
                _release_display(display)

    def __repr__(self) -> str:
        """Show the message and the counts."""
        return (f"BatchMode({self.message!r}, calls={self._calls}, "
                f"completed={self._completed}, total={self.total})")


# -------------------------------------------------------------------- summary
_HEADERS = ("Function", "Type", "Calls", "Failed", "Success", "p50", "p95", "p99", "Max",
            "Total")
# Columns given up, in this order, on a narrow terminal: p95, Max, p99.
_DROPPABLE = (6, 8, 7)


def summary_rows(source: Source) -> list[tuple[FunctionSnapshot, str]]:
    """Return each function's snapshot with its flag, sorted by total time, largest first.

    The flag is ``"failing"`` (some call raised), ``"slow"`` (some call took longer
    than ``short_max``) or ``""``.
    """
    rows = []
    for snap in sorted(source.snapshot(), key=lambda s: (-s.total, s.name)):
        flag = "failing" if snap.failures else "slow" if snap.medium or snap.slow else ""
        rows.append((snap, flag))
    return rows


def _cells(snap: FunctionSnapshot) -> list[str]:
    p50, p95, p99 = snap.sketch.quantiles((0.5, 0.95, 0.99))
    return [
        printable(snap.name), printable(snap.event_type), count(snap.calls),
        count(snap.failures), percent(snap.successes, snap.calls), duration(p50),
        duration(p95), duration(p99), duration(snap.max), duration(snap.total),
    ]


def print_summary(source: Source, console: Console | None = None) -> None:
    """Print the per-function statistics, sorted by total time; slow and failing rows marked.

    On a terminal this is a Rich table (failing rows red, slow rows yellow);
    otherwise plain text with a ``Note`` column, without escape codes.  Names and
    event types are shown with control characters escaped (see ``_format.printable``).
    """
    out = console or get_console()
    rows = summary_rows(source)
    if not rows:
        out.print("callmetrics: no calls recorded", markup=False, highlight=False)
        return
    calls = sum(s.calls for s, _ in rows)
    successes = sum(s.successes for s, _ in rows)
    caption = (f"{len(rows)} functions, {count(calls)} calls, {count(calls - successes)} "
               f"failed, {percent(successes, calls)} success, "
               f"{duration(math.fsum(s.total for s, _ in rows))} in total")
    if out.is_terminal:
        table = Table(title="callmetrics summary", caption=caption, title_justify="left",
                      caption_justify="left", box=box.SIMPLE_HEAD,
                      padding=(0, 1), pad_edge=False, collapse_padding=True)
        # On a narrow terminal the event type gives its room to the names.
        shown = [i for i in range(len(_HEADERS)) if i != 1 or out.width >= 106]
        cells = [list(_HEADERS), *(_cells(snap) for snap, _ in rows)]
        # Narrower still, p95, Max and p99 give way until the whole numbers and 12
        # columns of names fit (each column takes two more for padding and rule).
        for dropped in _DROPPABLE:
            need = sum(min(max(cell_len(c[i]) for c in cells), 12) if i == 0
                       else max(cell_len(c[i]) for c in cells) for i in shown)
            if need + 2 * len(shown) <= out.width:
                break
            shown.remove(dropped)
        for i in shown:
            # The numbers never wrap; names fold when they must.
            table.add_column(_HEADERS[i], justify="left" if i < 2 else "right",
                             overflow="fold", no_wrap=i >= 2)
        for (_, flag), row in zip(rows, cells[1:], strict=True):
            style = {"failing": "red", "slow": "yellow"}.get(flag)
            table.add_row(*(Text(row[i]) for i in shown), style=style)
        out.print(table)
        return
    lines = [[*_HEADERS, "Note"]]
    lines += [[*_cells(snap), flag] for snap, flag in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]

    def fmt(line: list[str]) -> str:
        parts = [cell.ljust(w) if i < 2 or i == len(line) - 1 else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(line, widths, strict=True))]
        return "  ".join(parts).rstrip()

    text = "\n".join([fmt(lines[0]), "  ".join("-" * w for w in widths),
                      *(fmt(line) for line in lines[1:]), caption])
    out.print(Text(text), soft_wrap=True, highlight=False)
