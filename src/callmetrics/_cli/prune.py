"""``callmetrics prune STORE --older-than SPAN``: delete old runs, or say what would go.

``--dry-run`` lists the runs that would be deleted and deletes nothing.  When every
run of the store would go, ``prune`` asks first on a terminal and otherwise refuses
without ``--yes``: a span typed in the wrong unit must not empty a store.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from callmetrics._cli.common import (
    fail,
    list_store_runs,
    local_time,
    os_error,
    parse_span,
    print_rows,
    store_path,
)
from callmetrics._cli.runs import run_dict
from callmetrics._format import count, printable

if TYPE_CHECKING:
    from callmetrics._cli.common import Parser

__all__ = ["add_commands"]


def _prune(args: argparse.Namespace) -> int:
    from callmetrics._outputs.terminal import Column  # noqa: PLC0415  # keep --help fast
    from callmetrics._store import StoreError, prune  # noqa: PLC0415

    store = store_path(args)
    cutoff = time.time() - args.older_than.total_seconds()
    runs = list_store_runs(store)
    going = [run for run in runs if run.ended < cutoff]
    if args.dry_run:
        if args.json:
            print(json.dumps({"dry_run": True, "cutoff": cutoff,
                              "runs": [run_dict(run) for run in going]}, indent=2))
            return 0
        print(f"Would delete {count(len(going))} of {count(len(runs))} run(s) last written "
              f"before {local_time(cutoff)} from {printable(str(store))}, and the events "
              "that started before then in the runs kept (dry run: nothing deleted).")
        if going:
            print_rows([Column("ID", right=True), Column("Label", shrink=8),
                        Column("Last write"), Column("Calls", right=True)],
                       ([str(r.id), r.label or "-", local_time(r.ended), count(r.calls)]
                        for r in going))
        return 0
    if runs and len(going) == len(runs) and not args.yes:
        question = (f"Every run of {printable(str(store))} ({count(len(runs))}) was last "
                    f"written before {local_time(cutoff)}. Delete them all? [y/N] ")
        if not sys.stdin.isatty():
            fail(f"every run of {store} would be deleted; add --yes if that is what you want "
                 "(or --dry-run to see them)")
        print(question, end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("Nothing deleted.", file=sys.stderr)
            return 1
    try:
        deleted, events = prune(store, cutoff, vacuum=args.vacuum)
    except FileNotFoundError:
        fail(f"no such store: {store}")
    except StoreError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(os_error(f"cannot write {store}", exc))
    if args.json:
        print(json.dumps({"dry_run": False, "cutoff": cutoff, "runs_deleted": deleted,
                          "events_deleted": events}, indent=2))
        return 0
    print(f"Pruned {count(deleted)} run(s) last written before {local_time(cutoff)} and "
          f"{count(events)} other event(s) from {printable(str(store))}")
    return 0


def add_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """Add ``prune`` to the ``callmetrics`` parser."""
    prune = commands.add_parser(
        "prune", help="delete old runs and events from a store",
        description="Delete runs last written before the span (with their aggregates and "
                    "events) and every event that started before it.  Asks (or needs --yes) "
                    "when every run would go.")
    prune.add_argument("store", metavar="STORE", help="the store file")
    prune.add_argument("--older-than", metavar="SPAN", type=parse_span, required=True,
                       help="a span back from now: 30d, 12h, 90min, 45s, 2w (a bare 'm' is "
                            "refused: minutes or months?)")
    prune.add_argument("--dry-run", action="store_true",
                       help="list what would be deleted, delete nothing")
    prune.add_argument("--yes", action="store_true",
                       help="do not ask, even when every run would be deleted")
    prune.add_argument("--vacuum", action="store_true",
                       help="also give the freed space back to the file system")
    prune.add_argument("--json", action="store_true", help="print JSON for scripts")
    prune.set_defaults(handler=_prune)
