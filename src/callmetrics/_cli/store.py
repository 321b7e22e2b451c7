"""Store commands: ``report``, ``stats``, ``runs`` and ``prune`` (``diff`` is in ``_cli_diff``).

Every string that came from disk or from the command line (labels, function names,
paths, error messages) is printed through ``_format.printable``: control characters
show as escapes and are never obeyed by the terminal.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from callmetrics._cli.common import (
    fail,
    list_store_runs,
    load_store,
    local_time,
    os_error,
    parse_span,
    print_table,
    run_id_arg,
    since_arg,
    store_path,
)
from callmetrics._engine.view import Reading
from callmetrics._format import count, printable

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics
    from callmetrics._cli.common import Parser
    from callmetrics._engine.config import AnalyticsConfig
    from callmetrics._engine.state import FunctionSnapshot
    from callmetrics._engine.view import RetainedCall, Source

__all__ = ["add_commands"]

def _selected(args: argparse.Namespace, *, events: bool = True) -> Analytics:
    """Load the runs the selection options chose; choosing none is an error (exit 2).

    ``--run 99`` (no such run), ``--label nope`` and ``--since`` past every run are
    worded alike, so that scripts see the same exit code for an empty selection.
    """
    from callmetrics._store.runs import since_to_unix  # noqa: PLC0415  # keep --help fast

    store = store_path(args)
    runs = list_store_runs(store)
    missing = sorted(set(args.run or ()) - {run.id for run in runs})
    if missing:
        fail(f"{store} has no run {', '.join(map(str, missing))}")
    cutoff = since_to_unix(args.since) if args.since is not None else None
    chosen = [run for run in runs
              if (args.run is None or run.id in args.run)
              and (cutoff is None or run.ended >= cutoff)
              and (args.label is None or run.label == args.label)]
    if runs and not chosen:
        what = [f"label {args.label!r}" if args.label is not None else "",
                f"written since {local_time(cutoff)}" if cutoff is not None else "",
                f"id {', '.join(map(str, args.run))}" if args.run else ""]
        fail(f"no run of {store} has {' and '.join(w for w in what if w)}")
    return load_store(store, runs=args.run, since=args.since, label=args.label, events=events)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", metavar="ID", type=run_id_arg, action="extend", nargs="+",
                        help="include these runs (default: all runs)")
    parser.add_argument("--since", metavar="WHEN", type=since_arg,
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
                       [c for c in reading.calls if c.name in self._names], reading.wall_time)


def _subset(view: Source, names: list[str]) -> Source:
    known = {s.name for s in view.snapshot()}
    missing = [name for name in names if name not in known]
    if missing:
        fail(f"no function {', '.join(map(repr, missing))} in the chosen runs "
              f"(known: {', '.join(sorted(known)) or 'none'})")
    return _Only(view, set(names))


# --------------------------------------------------------------------- commands
def _report(args: argparse.Namespace) -> int:
    store = store_path(args)
    target: Path = args.output or Path(f"{store.stem}-report.html")
    # Never create folders behind the user's back: a typo in -o fails here, in one line.
    if not target.parent.is_dir():
        fail(f"cannot write {target}: no folder {target.parent} (create it first)")
    view = _selected(args)
    try:
        written = view.generate_reports(force_mode=True, path=target)
    except OSError as exc:
        fail(os_error(f"cannot write the report to {target}", exc))
    if written is None:
        fail(f"the chosen runs of {store} recorded no calls")
    print(f"HTML report: {printable(str(written.resolve()))}")
    return 0


# ``stats`` lists at most this many failure groups (the report and --json have them all),
# each message cut to this many characters.
_FAILURE_ROWS = 10
_MESSAGE_WIDTH = 80


def _print_failures(view: Source) -> None:
    """Why calls failed: the retained failures grouped as in the report, newest first."""
    from callmetrics._outputs.export import error_groups  # noqa: PLC0415  # keep --help fast
    from callmetrics._outputs.report_tables import when  # noqa: PLC0415

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

    print_table(["FUNCTION", "EXCEPTION", "COUNT", "LAST", "MESSAGE", "RAISED AT"],
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
        from callmetrics._outputs.export import to_dict  # noqa: PLC0415  # keep --help fast

        print(json.dumps(to_dict(view), indent=2))
    else:
        from callmetrics._outputs.console import print_summary  # noqa: PLC0415  # loads rich

        print_summary(view)
        _print_failures(view)
    return 0


def _runs(args: argparse.Namespace) -> int:
    store = store_path(args)
    runs = list_store_runs(store)
    if not runs:
        print(f"No runs recorded in {printable(str(store))} yet.")
        return 0
    print_table(
        # The words of the report's header: calls, functions, retained calls.
        ["ID", "LABEL", "STARTED", "LAST WRITE", "STATE", "HOST", "PID", "CALLS", "FUNCTIONS",
         "RETAINED", "PROGRAM"],
        ([str(run.id), run.label or "-", local_time(run.started), local_time(run.ended),
          "closed" if run.closed else "open", run.host, str(run.pid), count(run.calls),
          count(run.functions), count(run.events), run.program] for run in runs),
        "rlllllrrrrl",
    )
    return 0


def _prune(args: argparse.Namespace) -> int:
    from callmetrics._store import StoreError, prune  # noqa: PLC0415  # keep --help fast

    store = store_path(args)
    cutoff = time.time() - args.older_than.total_seconds()
    try:
        runs, events = prune(store, cutoff, vacuum=args.vacuum)
    except FileNotFoundError:
        fail(f"no such store: {store}")
    except StoreError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(os_error(f"cannot write {store}", exc))
    print(f"Pruned {count(runs)} run(s) last written before {local_time(cutoff)} and "
          f"{count(events)} other event(s) from {printable(str(store))}")
    return 0


# --------------------------------------------------------------------- parsers
def add_commands(commands: argparse._SubParsersAction[Parser]) -> None:
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
