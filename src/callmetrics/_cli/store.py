"""Store commands: ``report`` and ``stats``.

``runs`` and ``prune`` have their own modules, ``diff`` is in ``_cli.diff``.

Every string that came from disk or from the command line (labels, function names,
paths, error messages) is printed through ``_format.printable``: control characters
show as escapes and are never obeyed by the terminal.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from callmetrics._cli.common import (
    fail,
    list_store_runs,
    load_store,
    local_time,
    os_error,
    progress,
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
    from callmetrics._store.runs import RunInfo

__all__ = ["add_commands"]

def _selected(args: argparse.Namespace, *, events: bool = True) -> Analytics:
    """Load the runs the selection options chose; choosing none is an error (exit 2)."""
    return _selection(args, events=events)[0]


def _selection(args: argparse.Namespace, *,
               events: bool = True) -> tuple[Analytics, list[RunInfo]]:
    """Load the runs the selection options chose, and say which; none is an error (exit 2).

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
    view = load_store(store, runs=args.run, since=args.since, label=args.label, events=events)
    return view, chosen


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
    from callmetrics._outputs.environment import RunSummary  # noqa: PLC0415  # keep --help fast
    from callmetrics._outputs.report import generate_reports  # noqa: PLC0415

    store = store_path(args)
    target: Path = args.output or Path(f"{store.stem}-report.html")
    # Never create folders behind the user's back: a typo in -o fails here, in one line.
    if not target.parent.is_dir():
        fail(f"cannot write {target}: no folder {target.parent} (create it first)")
    with progress(f"Reading {printable(store.name)}..."):
        view, chosen = _selection(args)
    runs = [RunSummary(r.id, r.label, r.host, r.program, r.started, r.ended, r.calls,
                       r.environment) for r in sorted(chosen, key=lambda r: r.id)]
    try:
        with progress(f"Writing the report of {count(len(runs))} run(s)..."):
            written = generate_reports(view, force_mode=True, path=target, runs=runs)
    except OSError as exc:
        fail(os_error(f"cannot write the report to {target}", exc))
    if written is None:
        fail(f"the chosen runs of {store} recorded no calls")
    if args.json:
        print(json.dumps({"report": str(written.resolve()), "store": str(store.resolve()),
                          "runs": [r.id for r in runs],
                          "calls": sum(s.calls for s in view.snapshot())}, indent=2))
    else:
        print(f"HTML report: {printable(str(written.resolve()))}")
    return 0


# ``stats`` lists at most this many failure groups (the report and --json have them all).
_FAILURE_ROWS = 10


def _print_failures(view: Source) -> None:
    """Why calls failed: the retained failures grouped by cause as in the report."""
    from callmetrics._outputs.console import print_failures  # noqa: PLC0415  # loads rich

    print_failures(view.read().calls, limit=_FAILURE_ROWS)


def _stats(args: argparse.Namespace) -> int:
    with progress("Reading the store..."):
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
    report.add_argument("--json", action="store_true",
                        help="print what was written as JSON (report path, runs, calls)")
    _add_selection(report)
    report.set_defaults(handler=_report)

    stats = commands.add_parser(
        "stats", help="print a store's statistics (a table, or JSON)",
        description="Print the per-function statistics of the chosen runs of a store, as a "
                    "table ranked by self time followed by the retained failures grouped by "
                    "cause (exception, where it was raised, message with ids masked; the 10 "
                    "most frequent), or as JSON (the shape of Analytics.to_dict(), every group "
                    "under 'errors').")
    stats.add_argument("store", metavar="STORE", help="the store file")
    stats.add_argument("--function", metavar="NAME", action="append",
                       help="only this function (repeat for several)")
    stats.add_argument("--json", action="store_true", help="print JSON for scripts")
    _add_selection(stats)
    stats.set_defaults(handler=_stats)
