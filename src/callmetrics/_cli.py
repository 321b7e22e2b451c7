"""The ``callmetrics`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from callmetrics import __version__
from callmetrics._accel import IMPLEMENTATION, REASON
from callmetrics._cli_demo import add_commands as _add_demo
from callmetrics._cli_diff import add_commands as _add_diff
from callmetrics._cli_metrics import add_commands as _add_metrics
from callmetrics._cli_run import add_commands as _add_run
from callmetrics._cli_store import add_commands as _add_store
from callmetrics._format import printable

__all__ = ["CliError", "main"]

# A command is a sub-parser whose defaults carry ``handler``: a function of the
# parsed arguments returning the exit code.
Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A user error the CLI reports as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports bad arguments in one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem and exit with code 2."""
        self.exit(2, f"{printable(self.prog)}: error: {printable(message)} (see --help)\n")


def _hot_path() -> str:
    """Say which hot path runs: the C accelerator, or pure Python and why."""
    if IMPLEMENTATION == "c":
        return "hot path: C accelerator"
    return f"hot path: pure Python; {REASON}"


# Each entry adds its sub-commands; features add theirs here.
_COMMANDS: list[Callable[[argparse._SubParsersAction[_Parser]], None]] = [
    _add_demo,
    _add_metrics,
    _add_store,
    _add_diff,
    _add_run,
]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every ``callmetrics`` command."""
    parser = _Parser(prog="callmetrics",
                     description="Exact, low-overhead performance analytics for Python functions.")
    parser.add_argument("--version", action="version",
                        version=f"callmetrics {__version__} ({_hot_path()})")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for add in _COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
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
