"""The ``callmetrics`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from callmetrics._cli.common import CliError, Handler, Parser
from callmetrics._cli.demo import add_commands as _add_demo
from callmetrics._cli.diff import add_commands as _add_diff
from callmetrics._cli.history import add_commands as _add_history
from callmetrics._cli.metrics import add_commands as _add_metrics
from callmetrics._cli.prune import add_commands as _add_prune
from callmetrics._cli.run import add_commands as _add_run
from callmetrics._cli.runs import add_commands as _add_runs
from callmetrics._cli.store import add_commands as _add_store
from callmetrics._engine.accel import IMPLEMENTATION, REASON
from callmetrics._format import printable
from callmetrics._version import __version__

__all__ = ["CliError", "main"]

def _hot_path() -> str:
    """Say which hot path runs: the C accelerator, or pure Python and why."""
    if IMPLEMENTATION == "c":
        return "hot path: C accelerator"
    return f"hot path: pure Python; {REASON}"


# Each entry adds its sub-commands; features add theirs here.
_COMMANDS: list[Callable[[argparse._SubParsersAction[Parser]], None]] = [
    _add_demo,
    _add_metrics,
    _add_store,
    _add_runs,
    _add_prune,
    _add_diff,
    _add_history,
    _add_run,
]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every ``callmetrics`` command."""
    parser = Parser(prog="callmetrics",
                     description="Exact, low-overhead performance analytics for Python functions.")
    parser.add_argument("--version", action="version",
                        version=f"callmetrics {__version__} ({_hot_path()})")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)
    for add in _COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:  # bare `callmetrics`: the usage, on stderr (stdout stays for data)
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except CliError as exc:
        print(f"callmetrics: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`callmetrics runs STORE | head`): stop quietly, and keep
        # the interpreter from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
