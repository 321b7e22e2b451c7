"""``callmetrics runs STORE``: the runs of a store, newest first (a table, or JSON)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from callmetrics._cli.common import list_store_runs, local_time, print_rows, store_path
from callmetrics._format import count, printable

if TYPE_CHECKING:
    from callmetrics._cli.common import Parser
    from callmetrics._store.runs import RunInfo

__all__ = ["add_commands", "run_dict"]


def run_dict(run: RunInfo) -> dict[str, object]:
    """The JSON form of one run (times as Unix seconds)."""
    return {"id": run.id, "label": run.label, "started": run.started, "ended": run.ended,
            "closed": run.closed, "host": run.host, "pid": run.pid, "calls": run.calls,
            "functions": run.functions, "retained": run.events, "program": run.program,
            "environment": run.environment}


def _recorded(run: RunInfo, key: str) -> str:
    """One value of the run's recorded environment (``unknown``: written before stores kept it)."""
    if run.environment is None:
        return "unknown"
    return run.environment.get(key) or "-"


def _runs(args: argparse.Namespace) -> int:
    from callmetrics._outputs.terminal import Column  # noqa: PLC0415  # keep --help fast

    store = store_path(args)
    runs = list_store_runs(store)
    if args.json:
        print(json.dumps([run_dict(run) for run in runs], indent=2))
        return 0
    if not runs:
        print(f"No runs recorded in {printable(str(store))} yet.")
        return 0
    # The words of the report's header: calls, functions, retained calls.
    columns = [Column("ID", right=True), Column("Label", shrink=8, priority=3),
               Column("Started"), Column("Last write", priority=6), Column("State", priority=5),
               Column("Host", shrink=8, priority=4), Column("PID", right=True, priority=7),
               Column("Calls", right=True), Column("Functions", right=True, priority=2),
               Column("Retained", right=True, priority=8),
               Column("Python", shrink=8, priority=9), Column("Hot path", shrink=8, priority=10),
               Column("Program", shrink=12, priority=1)]
    print_rows(columns, ([str(run.id), run.label or "-", local_time(run.started),
                          local_time(run.ended), "closed" if run.closed else "open", run.host,
                          str(run.pid), count(run.calls), count(run.functions),
                          count(run.events), _recorded(run, "python"),
                          _recorded(run, "hot_path"), run.program] for run in runs))
    return 0


def add_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """Add ``runs`` to the ``callmetrics`` parser."""
    runs = commands.add_parser("runs", help="list a store's runs, newest first",
                               description="List the runs of a store, newest first.")
    runs.add_argument("store", metavar="STORE", help="the store file")
    runs.add_argument("--json", action="store_true", help="print JSON for scripts")
    runs.set_defaults(handler=_runs)
