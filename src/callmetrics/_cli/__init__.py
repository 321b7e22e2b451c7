"""The ``callmetrics`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from callmetrics._cli.common import CliError, Handler, Parser
from callmetrics._engine.accel import IMPLEMENTATION, REASON
from callmetrics._format import printable
from callmetrics._version import __version__

__all__ = ["CliError", "main"]

def _hot_path() -> str:
    """Say which hot path runs: the C accelerator, or pure Python and why."""
    if IMPLEMENTATION == "c":
        return "hot path: C accelerator"
    return f"hot path: pure Python; {REASON}"


# Each module's ``add_commands`` adds the sub-commands named beside it, in this order;
# features add theirs here (tests/cli/test_cli.py checks the names).
COMMANDS: dict[str, tuple[str, ...]] = {
    "callmetrics._cli.demo": ("demo",),
    "callmetrics._cli.metrics": ("serve-metrics", "metrics-asset"),
    "callmetrics._cli.store": ("report", "stats"),
    "callmetrics._cli.runs": ("runs",),
    "callmetrics._cli.prune": ("prune",),
    "callmetrics._cli.diff": ("diff",),
    "callmetrics._cli.history": ("history",),
    "callmetrics._cli.run": ("run",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the parser of every ``callmetrics`` command, or of ``command`` only.

    A parser of one command parses that command's arguments as the whole parser
    does, and imports only that command's module (``callmetrics diff`` in a CI job
    need not load the report's or the tracer's).
    """
    parser = Parser(prog="callmetrics",
                     description="Exact, low-overhead performance analytics for Python functions.")
    parser.add_argument("--version", action="version",
                        version=f"callmetrics {__version__} ({_hot_path()})")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)
    for module, names in COMMANDS.items():
        if command is None or command in names:
            import_module(module).add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    words = sys.argv[1:] if argv is None else list(argv)
    named = words[0] if words and any(words[0] in names for names in COMMANDS.values()) else None
    parser = build_parser(named)
    args = parser.parse_args(words)
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
