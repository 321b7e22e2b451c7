"""Store commands: ``report``, ``stats``, ``runs`` and ``prune`` (``diff`` is in ``_cli_diff``).

Every string that came from disk or from the command line (labels, function names,
paths, error messages) is printed through ``_format.printable``: control characters
show as escapes and are never obeyed by the terminal.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from callmetrics._format import count, printable
from callmetrics._view import Reading

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics
    from callmetrics._cli import _Parser
    from callmetrics._config import AnalyticsConfig
    from callmetrics._load import RunInfo
    from callmetrics._state import FunctionSnapshot
    from callmetrics._view import RetainedCall, Source

__all__ = ["add_commands", "parse_span", "positive_arg"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def _fail(message: str) -> NoReturn:
    from callmetrics._cli import CliError  # noqa: PLC0415  # _cli imports this module

    raise CliError(message)


# ------------------------------------------------------------------ argument types
def parse_span(text: str) -> timedelta:
    """Parse a span like ``30d``, ``12h``, ``90m``, ``45s`` or ``2w``."""
    match = _SPAN.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a span like 30d, 12h, 90m, 45s or 2w, got {text!r}")
    try:
        return timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    except OverflowError:
        raise argparse.ArgumentTypeError(f"span {text!r} is too long") from None


def _since(text: str) -> float | timedelta:
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


def _run_id(text: str) -> int:
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
def _when(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix))


def _table(header: list[str], rows: Iterable[list[str]], align: str) -> None:
    """Print aligned columns; ``align`` holds ``l`` or ``r`` for each column.

    Cells are made printable here, so no caller can forget it.
    """
    body = [header, *([printable(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in body) for i in range(len(header))]
    for row in body:
        cells = [cell.ljust(w) if side == "l" else cell.rjust(w)
                 for cell, w, side in zip(row, widths, align, strict=True)]
        print("  ".join(cells).rstrip())


def _os_error(what: str, exc: OSError) -> str:
    """Word an OSError once: ``cannot write X: reason``, never the reason twice."""
    reason = str(exc.strerror or exc)
    return reason if reason.startswith(what) else f"{what}: {reason}"


# ---------------------------------------------------------------------- loading
def _store(args: argparse.Namespace) -> Path:
    path = Path(args.store).expanduser()
    if not path.exists():
        _fail(f"no such store: {path}")
    return path


def _load(path: Path, *, runs: list[int] | None = None, since: float | timedelta | None = None,
          label: str | None = None, events: bool = True) -> Analytics:
    from callmetrics._load import read_view  # noqa: PLC0415  # keep --help fast
    from callmetrics._store import StoreError  # noqa: PLC0415

    try:
        return read_view(path, runs=runs, since=since, label=label, events=events)
    except FileNotFoundError:
        _fail(f"no such store: {path}")
    except StoreError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_os_error(f"cannot read {path}", exc))


def _list_runs(store: Path) -> list[RunInfo]:
    from callmetrics._load import list_runs  # noqa: PLC0415  # keep --help fast
    from callmetrics._store import StoreError  # noqa: PLC0415

    try:
        return list_runs(store)
    except FileNotFoundError:
        _fail(f"no such store: {store}")
    except StoreError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_os_error(f"cannot read {store}", exc))


def _selected(args: argparse.Namespace, *, events: bool = True) -> Analytics:
    """Load the runs the selection options chose; choosing none is an error (exit 2).

    ``--run 99`` (no such run), ``--label nope`` and ``--since`` past every run are
    worded alike, so that scripts see the same exit code for an empty selection.
    """
    from callmetrics._load import since_to_unix  # noqa: PLC0415  # keep --help fast

    store = _store(args)
    runs = _list_runs(store)
    missing = sorted(set(args.run or ()) - {run.id for run in runs})
    if missing:
        _fail(f"{store} has no run {', '.join(map(str, missing))}")
    cutoff = since_to_unix(args.since) if args.since is not None else None
    chosen = [run for run in runs
              if (args.run is None or run.id in args.run)
              and (cutoff is None or run.ended >= cutoff)
              and (args.label is None or run.label == args.label)]
    if runs and not chosen:
        what = [f"label {args.label!r}" if args.label is not None else "",
                f"written since {_when(cutoff)}" if cutoff is not None else "",
                f"id {', '.join(map(str, args.run))}" if args.run else ""]
        _fail(f"no run of {store} has {' and '.join(w for w in what if w)}")
    return _load(store, runs=args.run, since=args.since, label=args.label, events=events)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", metavar="ID", type=_run_id, action="extend", nargs="+",
                        help="include these runs (default: all runs)")
    parser.add_argument("--since", metavar="WHEN", type=_since,
                        help="only runs written since then: a span back from now (2d, 12h) "
                             "or a date (2026-11-01)")
    parser.add_argument("--label", metavar="LABEL", help="only runs with this label")


class _Only:
    """A ``Source`` showing only some functions of another one (``stats --function``)."""

    def __init__(self, source: Source, names: set[str]) -> None:
        self._source = source
        self._names = names

    @property
    def settings(self) -> AnalyticsConfig:
        return self._source.settings

    def snapshot(self) -> list[FunctionSnapshot]:
        return [s for s in self._source.snapshot() if s.name in self._names]

    def retained(self) -> list[RetainedCall]:
        return [c for c in self._source.retained() if c.name in self._names]

    def read(self) -> Reading:
        reading = self._source.read()
        return Reading([s for s in reading.functions if s.name in self._names],
                       [c for c in reading.calls if c.name in self._names])


def _subset(view: Source, names: list[str]) -> Source:
    known = {s.name for s in view.snapshot()}
    missing = [name for name in names if name not in known]
    if missing:
        _fail(f"no function {', '.join(map(repr, missing))} in the chosen runs "
              f"(known: {', '.join(sorted(known)) or 'none'})")
    return _Only(view, set(names))


# --------------------------------------------------------------------- commands
def _report(args: argparse.Namespace) -> int:
    store = _store(args)
    target: Path = args.output or Path(f"{store.stem}-report.html")
    # Never create folders behind the user's back: a typo in -o fails here, in one line.
    if not target.parent.is_dir():
        _fail(f"cannot write {target}: no folder {target.parent} (create it first)")
    view = _selected(args)
    try:
        written = view.generate_reports(force_mode=True, path=target)
    except OSError as exc:
        _fail(_os_error(f"cannot write the report to {target}", exc))
    if written is None:
        _fail(f"the chosen runs of {store} recorded no calls")
    print(f"HTML report: {printable(str(written.resolve()))}")
    return 0


# ``stats`` lists at most this many failure groups (the report and --json have them all),
# each message cut to this many characters.
_FAILURE_ROWS = 10
_MESSAGE_WIDTH = 80


def _print_failures(view: Source) -> None:
    """Why calls failed: the retained failures grouped as in the report, newest first."""
    from callmetrics._export import error_groups  # noqa: PLC0415  # keep --help fast
    from callmetrics._report_tables import when  # noqa: PLC0415

    groups = error_groups(view.read().calls)
    if not groups:
        return
    total = sum(group["count"] for group in groups)
    print(f"\nFailures among the retained calls ({count(total)}), by function, exception and "
          "message, newest first:")

    def message(text: str | None) -> str:
        if text is None:
            return "(not recorded)"
        return text if len(text) <= _MESSAGE_WIDTH else text[:_MESSAGE_WIDTH - 1] + "\u2026"

    _table(["FUNCTION", "EXCEPTION", "COUNT", "LAST", "MESSAGE", "RAISED AT"],
           ([g["function"], g["error"], count(g["count"]),
             when(g["last"], "%Y-%m-%d %H:%M:%S", compact=False, millis=True),
             message(g["message"]), g["location"] or "(not recorded)"]
            for g in groups[:_FAILURE_ROWS]), "llrlll")
    if len(groups) > _FAILURE_ROWS:
        print(f"... and {count(len(groups) - _FAILURE_ROWS)} more (all of them: the report, "
              "or stats --json)")


def _stats(args: argparse.Namespace) -> int:
    view: Source = _selected(args)
    if args.function:
        view = _subset(view, args.function)
    if args.json:
        from callmetrics._export import to_dict  # noqa: PLC0415  # keep --help fast

        print(json.dumps(to_dict(view), indent=2))
    else:
        from callmetrics._console import print_summary  # noqa: PLC0415  # loads rich

        print_summary(view)
        _print_failures(view)
    return 0


def _runs(args: argparse.Namespace) -> int:
    store = _store(args)
    runs = _list_runs(store)
    if not runs:
        print(f"No runs recorded in {printable(str(store))} yet.")
        return 0
    _table(
        # The words of the report's header: calls, functions, retained calls.
        ["ID", "LABEL", "STARTED", "LAST WRITE", "STATE", "HOST", "PID", "CALLS", "FUNCTIONS",
         "RETAINED", "PROGRAM"],
        ([str(run.id), run.label or "-", _when(run.started), _when(run.ended),
          "closed" if run.closed else "open", run.host, str(run.pid), count(run.calls),
          count(run.functions), count(run.events), run.program] for run in runs),
        "rlllllrrrrl",
    )
    return 0


def _prune(args: argparse.Namespace) -> int:
    from callmetrics._store import StoreError, prune  # noqa: PLC0415  # keep --help fast

    store = _store(args)
    cutoff = time.time() - args.older_than.total_seconds()
    try:
        runs, events = prune(store, cutoff, vacuum=args.vacuum)
    except FileNotFoundError:
        _fail(f"no such store: {store}")
    except StoreError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_os_error(f"cannot write {store}", exc))
    print(f"Pruned {count(runs)} run(s) last written before {_when(cutoff)} and "
          f"{count(events)} other event(s) from {printable(str(store))}")
    return 0


# --------------------------------------------------------------------- parsers
def add_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Add the store commands to the ``callmetrics`` parser."""
    report = commands.add_parser(
        "report", help="write the HTML report of a store's runs",
        description="Write the HTML report of the chosen runs of a store (all by default).")
    report.add_argument("store", metavar="STORE", help="the store file")
    report.add_argument("-o", "--output", metavar="FILE", type=Path,
                        help="the HTML file to write (default: STORE's name + -report.html, "
                             "in the current directory)")
    _add_selection(report)
    report.set_defaults(handler=_report)

    stats = commands.add_parser(
        "stats", help="print a store's statistics (a table, or JSON)",
        description="Print the per-function statistics of the chosen runs of a store, as a "
                    "table followed by the retained failures grouped by function, exception "
                    "and message (newest first, at most 10 groups), or as JSON (the shape of "
                    "Analytics.to_dict(), every group under 'errors').")
    stats.add_argument("store", metavar="STORE", help="the store file")
    stats.add_argument("--function", metavar="NAME", action="append",
                       help="only this function (repeat for several)")
    stats.add_argument("--json", action="store_true", help="print JSON for scripts")
    _add_selection(stats)
    stats.set_defaults(handler=_stats)

    runs = commands.add_parser("runs", help="list a store's runs, newest first",
                               description="List the runs of a store, newest first.")
    runs.add_argument("store", metavar="STORE", help="the store file")
    runs.set_defaults(handler=_runs)

    prune = commands.add_parser(
        "prune", help="delete old runs and events from a store",
        description="Delete runs last written before the span (with their aggregates and "
                    "events) and every event that started before it.")
    prune.add_argument("store", metavar="STORE", help="the store file")
    prune.add_argument("--older-than", metavar="SPAN", type=parse_span, required=True,
                       help="a span back from now: 30d, 12h, 90m, 45s, 2w")
    prune.add_argument("--vacuum", action="store_true",
                       help="also give the freed space back to the file system")
    prune.set_defaults(handler=_prune)
