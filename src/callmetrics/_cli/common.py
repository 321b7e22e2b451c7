"""What every command shares: the parser class, the one-line error, store helpers.

Commands import this module; it imports no command, so the command modules and the
entry point (``_cli.main``) only ever import downward.
"""

from __future__ import annotations

import argparse
import gc
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from callmetrics._format import printable

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics
    from callmetrics._outputs.terminal import Column
    from callmetrics._store.runs import RunInfo

__all__ = [
    "CliError",
    "Handler",
    "Parser",
    "fail",
    "guarded",
    "iso_log_handler",
    "list_store_runs",
    "load_store",
    "local_time",
    "os_error",
    "parse_span",
    "positive_arg",
    "print_rows",
    "print_table",
    "progress",
    "run_id_arg",
    "since_arg",
    "store_path",
]

_T = TypeVar("_T")
_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|min|h|d|w)")
# ``m`` reads as minutes to some and months to others: refused, with what to write.
_AMBIGUOUS = re.compile(r"\d+(?:\.\d+)?\s*(m|mo|mon|month|months)")


# A command is a sub-parser whose defaults carry ``handler``: a function of the
# parsed arguments returning the exit code.
Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A user error the CLI reports as one line with exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports bad arguments in one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem and exit with code 2."""
        self.exit(2, f"{printable(self.prog)}: error: {printable(message)} (see --help)\n")


def fail(message: str) -> NoReturn:
    raise CliError(message)


# ------------------------------------------------------------------ argument types
def parse_span(text: str) -> timedelta:
    """Parse a span like ``30d``, ``12h``, ``90min``, ``45s`` or ``2w``; refuse a bare ``m``."""
    cleaned = text.strip().lower()
    if _AMBIGUOUS.fullmatch(cleaned):
        raise argparse.ArgumentTypeError(
            f"{text!r} is ambiguous: write minutes as 'min' (90min); for months use days (30d)")
    match = _SPAN.fullmatch(cleaned)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a span like 30d, 12h, 90min, 45s or 2w, got {text!r}")
    try:
        return timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    except OverflowError:
        raise argparse.ArgumentTypeError(f"span {text!r} is too long") from None


def since_arg(text: str) -> float | timedelta:
    try:
        return parse_span(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a span like 2d or 12h, or a date like 2026-11-01, got {text!r}",
        ) from None


def run_id_arg(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a run id (a number), got {text!r}")
    return int(text)


def positive_arg(text: str) -> float:
    """Parse a finite number > 0 (argparse reports anything else in one line)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


# --------------------------------------------------------------------- formatting
def local_time(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix))


def print_table(header: list[str], rows: Iterable[list[str]], align: str) -> None:
    """Print aligned columns; ``align`` holds ``l`` or ``r`` for each column.

    Cells are made printable here, so no caller can forget it.
    """
    body = [header, *([printable(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in body) for i in range(len(header))]
    for row in body:
        cells = [cell.ljust(w) if side == "l" else cell.rjust(w)
                 for cell, w, side in zip(row, widths, align, strict=True)]
        print("  ".join(cells).rstrip())


def print_rows(columns: Sequence[Column], rows: Iterable[Sequence[str]], *,
               caption: str | None = None) -> None:
    """Print a table on stdout through the one table engine (``_outputs.terminal``).

    On a terminal it fits the width (columns give way by priority, long names lose
    their middle); piped, it is as wide as its content.
    """
    from rich.console import Console  # noqa: PLC0415  # keep --help fast

    from callmetrics._outputs.terminal import print_table as draw  # noqa: PLC0415

    draw(Console(file=sys.stdout, highlight=False), columns, list(rows), caption=caption)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (a bulk read and its sums).

    Reading 200,000 stored calls makes as many tuples; the collector, which runs
    every 700 new objects, would go through them some 300 times: a fifth of ``diff``'s
    time, for nothing (no reference cycle is made; reference counting frees it all).
    The collector is enabled again after, if it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def progress(what: str, *, after: float = 1.0) -> Iterator[None]:
    """Show a spinner on stderr (a terminal only) if the block runs longer than ``after`` s."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console  # noqa: PLC0415  # keep --help fast

    status = Console(file=sys.stderr).status(what)
    lock = threading.Lock()
    state = {"started": False, "done": False}

    def start() -> None:
        with lock:
            if not state["done"]:
                status.start()
                state["started"] = True

    timer = threading.Timer(after, start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            state["done"] = True
            if state["started"]:
                status.stop()


def iso_log_handler() -> logging.Handler:
    """A handler writing ``2026-12-07T10:14:07+00:00 WARNING message`` lines to stderr.

    Plain lines (never wrapped, whatever the width), ISO 8601 local time with its offset,
    control characters shown as escapes.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_IsoFormatter("%(asctime)s %(levelname)s %(message)s"))
    return handler


class _IsoFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord,  # noqa: N802  # logging's name
                   datefmt: str | None = None) -> str:
        """ISO 8601 with the UTC offset, to the second (``datefmt`` is not used)."""
        del datefmt
        return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds")

    def format(self, record: logging.LogRecord) -> str:
        """The line, control characters escaped (multi-line tracebacks keep their breaks)."""
        return "\n".join(printable(line) for line in super().format(record).split("\n"))


def os_error(what: str, exc: OSError) -> str:
    """Word an OSError once: ``cannot write X: reason``, never the reason twice."""
    reason = str(exc.strerror or exc)
    return reason if reason.startswith(what) else f"{what}: {reason}"


# ---------------------------------------------------------------------- loading
def store_path(args: argparse.Namespace) -> Path:
    path = Path(args.store).expanduser()
    if not path.exists():
        fail(f"no such store: {path}")
    return path


def load_store(path: Path, *, runs: list[int] | None = None,
               since: float | timedelta | None = None, label: str | None = None,
               events: bool = True) -> Analytics:
    from callmetrics._load import read_view  # noqa: PLC0415  # keep --help fast

    return guarded(path, lambda: read_view(path, runs=runs, since=since, label=label,
                                           events=events))


def list_store_runs(store: Path) -> list[RunInfo]:
    from callmetrics._store.runs import list_runs  # noqa: PLC0415  # keep --help fast

    return guarded(store, lambda: list_runs(store))


def guarded(store: Path, read: Callable[[], _T]) -> _T:
    """Run a read of ``store``, turning its errors into the CLI's one-line failures."""
    from callmetrics._store import StoreError  # noqa: PLC0415  # keep --help fast

    try:
        return read()
    except FileNotFoundError:
        fail(f"no such store: {store}")
    except StoreError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(os_error(f"cannot read {store}", exc))
