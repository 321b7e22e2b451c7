"""The ``callmetrics`` command line."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from callmetrics import __version__
from callmetrics._cli_metrics import add_commands as _add_metrics
from callmetrics._cli_run import add_commands as _add_run  # reach (issue 11): `callmetrics run`
from callmetrics._cli_store import add_commands as _add_store
from callmetrics._cli_store import demo_store, finish_demo_store

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
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415  # imports stay local like the others here

    from callmetrics._analytics import Analytics  # noqa: PLC0415  # keep --help fast
    from callmetrics._console import logging_to_console  # noqa: PLC0415  # loads rich
    from callmetrics._demo import run_demo  # noqa: PLC0415

    analytics = Analytics(store=args.store)
    report = Path(analytics.config.report_dir) / "analytics_full.html"
    with logging_to_console(analytics.console_logger):
        with analytics.batch_mode("Running the callmetrics demo workload..."):
            run_demo(analytics, scale=args.scale)
        analytics.print_summary()
        try:
            written = analytics.generate_reports(force_mode=True, path=report)
        except OSError as exc:
            raise CliError(str(exc)) from exc
    if written is not None:
        print(f"HTML report: {written.resolve()}")
    if args.store is not None:
        finish_demo_store(analytics, Path(args.store))
    return 0


def _scale(text: str) -> float:
    """Parse --scale: a finite number >= 0 (argparse reports anything else in one line)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _add_demo(commands: argparse._SubParsersAction[_Parser]) -> None:
    demo = commands.add_parser("demo", help="run a short built-in workload and show its numbers",
                               description="Run a short built-in workload and show its numbers.")
    demo.add_argument("--scale", type=_scale, default=1.0,
                      help="multiply the workload's sleeps (0 for an instant run)")
    demo.add_argument("--store", metavar="PATH", type=demo_store,
                      help="also record the run into this SQLite store")
    demo.set_defaults(handler=_demo)


# Each entry adds its sub-commands; features add theirs here.
_COMMANDS: list[Callable[[argparse._SubParsersAction[_Parser]], None]] = [
    _add_demo,
    _add_metrics,
    _add_store,
    _add_run,  # reach (issue 11)
]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every ``callmetrics`` command."""
    parser = _Parser(prog="callmetrics",
                     description="Exact, low-overhead performance analytics for Python functions.")
    parser.add_argument("--version", action="version", version=f"callmetrics {__version__}")
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
        print(f"callmetrics: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`callmetrics runs STORE | head`): stop quietly, and keep
        # the interpreter from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
