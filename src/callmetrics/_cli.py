"""The ``callmetrics`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from callmetrics import __version__

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
    from callmetrics._analytics import Analytics  # noqa: PLC0415  # keep --help fast
    from callmetrics._demo import run_demo  # noqa: PLC0415

    analytics = Analytics()
    print("Running the callmetrics demo workload...")
    run_demo(analytics, scale=args.scale)
    stats = analytics.get_stats()
    print(f"{stats['total_calls']} calls, {stats['success_rate']:.1f}% success, "
          f"p50 {stats['p50'] * 1e3:.2f} ms, p95 {stats['p95'] * 1e3:.2f} ms, "
          f"p99 {stats['p99'] * 1e3:.2f} ms")
    for name, count in sorted(analytics.call_counts.items()):
        print(f"  {name:20} {count:6} calls")
    return 0


def _add_demo(commands: argparse._SubParsersAction[_Parser]) -> None:
    demo = commands.add_parser("demo", help="run a short built-in workload and show its numbers",
                               description="Run a short built-in workload and show its numbers.")
    demo.add_argument("--scale", type=float, default=1.0,
                      help="multiply the workload's sleeps (0 for an instant run)")
    demo.set_defaults(handler=_demo)


# Each entry adds its sub-commands; features add theirs here.
_COMMANDS: list[Callable[[argparse._SubParsersAction[_Parser]], None]] = [_add_demo]


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
