"""``callmetrics demo``: run the built-in workload, keep its report and store, lead on.

The demo always leaves a store beside its report (in ``--dir``, or a new temporary
folder), and prints the next commands in a form that runs as printed, even when the
virtual environment callmetrics was installed into is not activated.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from callmetrics._cli.common import fail, iso_log_handler, list_store_runs
from callmetrics._format import printable

if TYPE_CHECKING:
    from callmetrics._cli.common import Parser

__all__ = ["REPORT_NAME", "add_commands", "command_prefix", "demo_store"]

REPORT_NAME = "analytics_full.html"
"""The file the demo writes its report to, in its folder (a full, not incremental, report)."""


def _shown(path: Path, *, program: bool = False) -> str:
    """``path`` relative to the working folder when inside it, else absolute; shell-quoted.

    A ``program`` gets a ``./`` when it would otherwise be looked up on PATH.
    """
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        relative = str(path)
    text = str(path) if relative.startswith("..") else relative
    if program and os.sep not in text:
        text = f".{os.sep}{text}"
    return shlex.quote(text)


def command_prefix() -> str:
    """Return how to run ``callmetrics`` from this shell: the form that works as printed.

    ``callmetrics`` when the one on PATH is this installation's; else the script next
    to this interpreter (``.venv/bin/callmetrics`` after the README's install, with
    the venv not activated); else ``<this python> -m callmetrics``.
    """
    interpreter = Path(sys.executable)
    script = interpreter.parent / ("callmetrics.exe" if os.name == "nt" else "callmetrics")
    found = shutil.which("callmetrics")
    if script.is_file():
        if found is not None and Path(found).resolve() == script.resolve():
            return "callmetrics"
        return _shown(script, program=True)
    return f"{_shown(interpreter, program=True)} -m callmetrics"


def demo_store(text: str) -> str:
    """Check ``demo --store PATH`` before the demo runs: absent, or a usable store."""
    from callmetrics._store import StoreError, connect_readonly  # noqa: PLC0415  # keep --help fast

    path = Path(text).expanduser()
    try:
        if path.exists():
            connect_readonly(path).close()
    except StoreError as exc:
        if not path.is_file() or path.stat().st_size:
            raise argparse.ArgumentTypeError(str(exc)) from None
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror or exc}") from None
    return text


def _scale(text: str) -> float:
    """Parse --scale: a finite number >= 0 (argparse reports anything else in one line)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _folder(args: argparse.Namespace) -> Path:
    if args.dir is None:
        return Path(tempfile.mkdtemp(prefix="callmetrics-demo-"))
    folder = Path(args.dir).expanduser()
    try:
        folder.mkdir(exist_ok=True)  # the folder asked for, never its parents
    except OSError as exc:
        fail(f"cannot create the folder {folder}: {exc.strerror or exc}")
    if not folder.is_dir():
        fail(f"cannot use {folder}: not a folder")
    return folder


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console  # noqa: PLC0415  # keep --help fast

    from callmetrics._analytics import Analytics  # noqa: PLC0415
    from callmetrics._cli.workload import run_demo  # noqa: PLC0415
    from callmetrics._outputs.console import logging_to_console  # noqa: PLC0415  # loads rich

    folder = _folder(args)
    store = Path(args.store).expanduser() if args.store is not None else folder / "demo.db"
    analytics = Analytics(store=store)
    report = folder / REPORT_NAME
    # Logs and the spinner go to stderr (stdout is the summary, or the JSON): on a
    # terminal through one Rich console, piped as plain lines with ISO 8601 times.
    err = Console(stderr=True)
    logs = (logging_to_console(analytics.console_logger, err) if err.is_terminal
            else _plain_logs(analytics.console_logger))
    with logs:
        with analytics.batch_mode("Running the callmetrics demo workload...", err):
            run_demo(analytics, scale=args.scale)
        if not args.json:
            analytics.print_summary()
        try:
            written = analytics.generate_reports(force_mode=True, path=report)
        except OSError as exc:
            analytics.close()
            fail(str(exc.strerror or exc))
    analytics.close()
    if not store.is_file():
        fail(f"could not write the store {store}")
    if args.json:
        stats = analytics.to_dict()
        print(json.dumps({"report": None if written is None else str(written.resolve()),
                          "store": str(store.resolve()), "totals": stats["totals"],
                          "errors": stats["errors"]}, indent=2))
        return 0
    if written is not None:
        print(f"HTML report: {printable(str(written.resolve()))}")
    print(f"Store: {printable(str(store.resolve()))}")
    again = [*(["--dir", _shown(folder)] if args.dir is not None or args.store is None else []),
             *(["--store", _shown(store)] if args.store is not None else [])]
    _lead_on(folder, store, " ".join(again))
    return 0


@contextmanager
def _plain_logs(logger: logging.Logger) -> Iterator[None]:
    """Show ``logger``'s INFO lines on stderr as plain ISO 8601 lines while the block runs."""
    handler = iso_log_handler()
    handler.setLevel(logging.INFO)
    previous = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _lead_on(folder: Path, store: Path, again: str) -> None:
    """Print the commands to try next, runnable as printed."""
    cli = command_prefix()
    where = _shown(store)
    print("Try next:")
    for command in (f"runs {where}", f"stats {where}",
                    f"report {where} -o {_shown(folder / 'report.html')}"):
        print(f"  {printable(cli)} {printable(command)}")
    runs = list_store_runs(store)
    if len(runs) >= 2:
        print(f"  {printable(cli)} diff {printable(where)} --base {runs[1].id} "
              f"--head {runs[0].id}")
    else:
        print(f"  {printable(cli)} demo {printable(again)}   "
              "# a second run into the same store, then `diff` the two")


def add_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """Add ``demo`` to the ``callmetrics`` parser."""
    demo = commands.add_parser(
        "demo", help="run a short built-in workload and show its numbers",
        description=f"Run a short built-in workload, print its summary, and write its "
                    f"HTML report ({REPORT_NAME}) and its store (demo.db) into a folder: "
                    f"--dir, or a new temporary one.")
    demo.add_argument("--scale", type=_scale, default=1.0,
                      help="multiply the workload's sleeps (0 for an instant run)")
    demo.add_argument("--dir", metavar="DIR",
                      help="the folder for the report and the store (created if missing; "
                           "default: a new temporary folder)")
    demo.add_argument("--store", metavar="PATH", type=demo_store,
                      help="record the run into this SQLite store instead of DIR/demo.db")
    demo.add_argument("--json", action="store_true",
                      help="print what was written and the run's totals and failures as JSON")
    demo.set_defaults(handler=_demo)
