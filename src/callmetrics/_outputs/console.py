"""Terminal output: the summary table, and one Rich console shared with logging.

Everything that draws on the terminal goes through one Rich ``Console``
(:func:`get_console`); attach :func:`logging_handler` to your loggers and a log
line is printed above a running spinner (``_batch``) instead of tearing it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleRenderable
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from callmetrics._engine.state import FunctionSnapshot
from callmetrics._format import count, duration, percent, printable

if TYPE_CHECKING:
    from callmetrics._engine.view import Source

__all__ = [
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


def _counted(n: int, noun: str) -> str:
    """``1 function``, ``2,000 calls``."""
    return f"{count(n)} {noun}{'' if n == 1 else 's'}"


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
    caption = (f"{_counted(len(rows), 'function')}, {_counted(calls, 'call')}, "
               f"{count(calls - successes)} failed, {percent(successes, calls)} success, "
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

