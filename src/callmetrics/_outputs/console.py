"""Terminal output: the summary table, and one Rich console shared with logging.

Everything that draws on the terminal goes through one Rich ``Console``
(:func:`get_console`); attach :func:`logging_handler` to your loggers and a log
line is printed above a running spinner (``_batch``) instead of tearing it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleRenderable
from rich.logging import RichHandler

from callmetrics._engine.state import FunctionSnapshot
from callmetrics._format import count, duration, percent, printable
from callmetrics._outputs.failures import failure_causes, short_location
from callmetrics._outputs.names import natural_key
from callmetrics._outputs.report_tables import when
from callmetrics._outputs.terminal import Column, print_table

if TYPE_CHECKING:
    from callmetrics._engine.view import RetainedCall, Source

__all__ = [
    "get_console",
    "logging_handler",
    "logging_to_console",
    "print_failures",
    "print_summary",
    "rank_key",
    "self_known",
    "summary_rows",
    "time_line",
]

# Log times as ISO 8601 (local time), never a locale's 12/07/26.
_ISO_TIME = "%Y-%m-%dT%H:%M:%S"

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
                            rich_tracebacks=False, log_time_format=_ISO_TIME)


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
# The summary's columns; on a narrow terminal they give way from the highest priority
# number down (the name, calls, self time, p95 and the marker stay).
_SUMMARY = (
    Column("Note"),
    Column("Function", shrink=16),
    Column("Type", priority=9, shrink=10),
    Column("Calls", right=True),
    Column("Failed", right=True, priority=4),
    Column("Success", right=True, priority=8),
    Column("Self", right=True),
    Column("Total", right=True, priority=2),
    Column("p50", right=True, priority=5),
    Column("p95", right=True),
    Column("p99", right=True, priority=6),
    Column("Max", right=True, priority=7),
)
_MARKS = {"failing": "FAIL", "slow": "slow", "": ""}
_STYLES = {"failing": "red", "slow": "yellow", "": None}


def self_known(snaps: Sequence[FunctionSnapshot]) -> bool:
    """Whether every function's self time is known (a store written before schema 3: no)."""
    return bool(snaps) and all(s.self_time is not None for s in snaps)


def rank_key(snap: FunctionSnapshot, by_self: bool) -> tuple[float, tuple[object, ...]]:
    """Sort key: the most self time first (total time when self time is unknown), then name."""
    return (-(snap.self_time or 0.0) if by_self else -snap.total, natural_key(snap.name))


def summary_rows(source: Source) -> list[tuple[FunctionSnapshot, str]]:
    """Return each function's snapshot with its flag, ranked by self time, largest first.

    Ranked by total time when self time is unknown (stores written before it was
    recorded).  The flag is ``"failing"`` (some call raised), ``"slow"`` (some call
    took longer than ``short_max``) or ``""``.
    """
    return _ranked(source.snapshot())


def _ranked(snaps: list[FunctionSnapshot]) -> list[tuple[FunctionSnapshot, str]]:
    by_self = self_known(snaps)
    rows = []
    for snap in sorted(snaps, key=lambda s: rank_key(s, by_self)):
        flag = "failing" if snap.failures else "slow" if snap.medium or snap.slow else ""
        rows.append((snap, flag))
    return rows


def _cells(snap: FunctionSnapshot, flag: str) -> list[str]:
    p50, p95, p99 = snap.sketch.quantiles((0.5, 0.95, 0.99))
    return [
        _MARKS[flag], printable(snap.name), printable(snap.event_type), count(snap.calls),
        count(snap.failures), percent(snap.successes, snap.calls), duration(snap.self_time),
        duration(snap.total), duration(p50), duration(p95), duration(p99), duration(snap.max),
    ]


def _counted(n: int, noun: str) -> str:
    """``1 function``, ``2,000 calls``."""
    return f"{count(n)} {noun}{'' if n == 1 else 's'}"


def time_line(snaps: Sequence[FunctionSnapshot], wall_time: float | None) -> str:
    """Where the time went, in words: the wall time and the share the tracked self time covers.

    Without a known wall time or self time it says what it can, and names it:
    ``8.03 s summed over calls (they may overlap)``.
    """
    total = math.fsum(s.total for s in snaps)
    summed = f"{duration(total)} summed over calls"
    if wall_time is None or wall_time <= 0:
        return f"{summed} (calls may overlap; wall time unknown)"
    if not self_known(snaps):
        return f"wall time {duration(wall_time)}, {summed} (self time unknown)"
    own = math.fsum(s.self_time or 0.0 for s in snaps)
    line = (f"wall time {duration(wall_time)}, {percent(min(own, wall_time), wall_time)} "
            f"of it in tracked functions' self time")
    if total > wall_time * 1.001:
        line += f" (durations overlap: {summed})"
    return line


def print_summary(source: Source, console: Console | None = None) -> None:
    """Print the per-function statistics ranked by self time; slow and failing rows marked.

    One table engine (``_outputs.terminal``): on a terminal it fits the width
    (columns give way by priority, long names lose their middle) and failing rows
    are red, slow ones yellow, each also marked in the ``Note`` column (so
    ``NO_COLOR`` loses nothing); to a file or pipe it is as wide as its content,
    without escape codes.  Names are shown with control characters escaped.
    """
    out = console or get_console()
    reading = source.read()
    rows = _ranked(reading.functions)
    if not rows:
        out.print("callmetrics: no calls recorded", markup=False, highlight=False)
        return
    snaps = [s for s, _ in rows]
    calls = sum(s.calls for s in snaps)
    successes = sum(s.successes for s in snaps)
    ranked = "ranked by self time" if self_known(snaps) else \
        "ranked by total time (self time unknown)"
    caption = (f"{_counted(len(rows), 'function')}, {_counted(calls, 'call')}, "
               f"{count(calls - successes)} failed, {percent(successes, calls)} success; "
               f"{time_line(snaps, reading.wall_time)}; {ranked}.")
    columns, cells = list(_SUMMARY), [_cells(snap, flag) for snap, flag in rows]
    if not self_known(snaps):  # no Self column of dashes: Total takes its place and rank
        del columns[6]
        columns[6] = Column("Total", right=True)
        for row in cells:
            del row[6]
    if any(s.cpu_time is not None for s in snaps):  # measured (cpu_time=True): after Total
        at = 1 + next(i for i, c in enumerate(columns) if c.header == "Total")
        columns.insert(at, Column("CPU (thread)", right=True, priority=3))
        for row, snap in zip(cells, snaps, strict=True):
            row.insert(at, duration(snap.cpu_time))
    print_table(out, columns, cells,
                title="callmetrics summary", caption=caption,
                styles=[_STYLES[flag] for _, flag in rows])


# ------------------------------------------------------------------- failures
_FAILURES = (
    Column("Count", right=True),
    Column("Exception", shrink=12),
    Column("Message", shrink=16),
    Column("Function", priority=2, shrink=12),
    Column("Last", priority=3),
    Column("Raised at", priority=1, shrink=16),
)


def print_failures(calls: Sequence[RetainedCall], console: Console | None = None, *,
                   limit: int = 10) -> None:
    """Print the retained failures grouped by cause, the most frequent first, ``limit`` at most."""
    out = console or get_console()
    causes = failure_causes(calls)
    if not causes:
        return
    total = sum(c.count for c in causes)
    rows = []
    for cause in causes[:limit]:
        fn = cause.function + (f" +{len(cause.functions) - 1}" if len(cause.functions) > 1
                               else "")
        message = ("(not recorded)" if cause.template is None else cause.template)
        rows.append([count(cause.count), cause.error, message, fn,
                     when(cause.last, "%Y-%m-%d %H:%M:%S", compact=False, millis=True),
                     short_location(cause.location) or "(not recorded)"])
    left = len(causes) - limit
    caption = (f"... and {count(left)} more group{'' if left == 1 else 's'} (all of them: the "
               "report, or stats --json)") if left > 0 else None
    out.print()
    print_table(out, _FAILURES, rows, caption=caption,
                title=f"Failures among the retained calls ({count(total)}) in "
                      f"{_counted(len(causes), 'group')} by cause, the most frequent first "
                      "(numbers, ids and quoted values in messages read <n>, <hex>, "
                      "'<value>'):")
