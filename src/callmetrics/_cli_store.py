"""Store commands: ``report``, ``stats``, ``runs``, ``diff`` and ``prune``."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics
    from callmetrics._cli import _Parser
    from callmetrics._load import RunInfo

__all__ = ["add_commands", "demo_store", "finish_demo_store", "parse_span"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def _fail(message: str) -> NoReturn:
    from callmetrics._cli import CliError  # noqa: PLC0415  # _cli imports this module

    raise CliError(message)


# ------------------------------------------------------------------ argument types
def parse_span(text: str) -> timedelta:
    """Parse a span like ``30d``, ``12h``, ``90m``, ``45s`` or ``2w``."""
    match = _SPAN.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a span like 30d, 12h, 90m, 45s or 2w, got {text!r}")
    try:
        return timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    except OverflowError:
        raise argparse.ArgumentTypeError(f"span {text!r} is too long") from None


def _since(text: str) -> float | timedelta:
    try:
        return parse_span(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a span like 2d or 12h, or a date like 2026-11-01, got {text!r}",
        ) from None


def _run_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a run id (a number), got {text!r}")
    return int(text)


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


# --------------------------------------------------------------------- formatting
def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e9:.3g} ns"


def _when(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix))


def _table(header: list[str], rows: Iterable[list[str]], align: str) -> None:
    """Print aligned columns; ``align`` holds ``l`` or ``r`` for each column."""
    body = [header, *rows]
    widths = [max(len(row[i]) for row in body) for i in range(len(header))]
    for row in body:
        cells = [cell.ljust(w) if side == "l" else cell.rjust(w)
                 for cell, w, side in zip(row, widths, align, strict=True)]
        print("  ".join(cells).rstrip())


# ---------------------------------------------------------------------- loading
def _store(args: argparse.Namespace) -> Path:
    path = Path(args.store).expanduser()
    if not path.exists():
        _fail(f"no such store: {path}")
    return path


def _load(path: Path, *, runs: list[int] | None = None, since: float | timedelta | None = None,
          label: str | None = None, events: bool = True) -> Analytics:
    from callmetrics._load import read_view  # noqa: PLC0415  # keep --help fast
    from callmetrics._store import StoreError  # noqa: PLC0415

    try:
        return read_view(path, runs=runs, since=since, label=label, events=events)
    except FileNotFoundError:
        _fail(f"no such store: {path}")
    except StoreError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")


def _list_runs(store: Path) -> list[RunInfo]:
    from callmetrics._load import list_runs  # noqa: PLC0415  # keep --help fast
    from callmetrics._store import StoreError  # noqa: PLC0415

    try:
        return list_runs(store)
    except FileNotFoundError:
        _fail(f"no such store: {store}")
    except StoreError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot read {store}: {exc.strerror or exc}")


def _selected(args: argparse.Namespace) -> Analytics:
    return _load(_store(args), runs=args.run, since=args.since, label=args.label)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", metavar="ID", type=_run_id, action="extend", nargs="+",
                        help="include these runs (default: all runs)")
    parser.add_argument("--since", metavar="WHEN", type=_since,
                        help="only runs written since then: a span back from now (2d, 12h) "
                             "or a date (2026-11-01)")
    parser.add_argument("--label", metavar="LABEL", help="only runs with this label")


def _subset(view: Analytics, names: list[str]) -> Analytics:
    from callmetrics._analytics import Analytics  # noqa: PLC0415  # keep --help fast

    known = set(view.call_counts)
    missing = [name for name in names if name not in known]
    if missing:
        _fail(f"no function {', '.join(map(repr, missing))} in the chosen runs "
              f"(known: {', '.join(sorted(known)) or 'none'})")
    wanted = set(names)
    part = Analytics(max_events=0)
    part.restore([s for s in view.snapshot() if s.name in wanted],
                 [(start, duration, error, stats.name)
                  for start, duration, error, stats in view.raw_events()
                  if stats.name in wanted])
    return part


# --------------------------------------------------------------------- commands
def _report(args: argparse.Namespace) -> int:
    store = _store(args)
    view = _selected(args)
    target = args.output or Path(f"{store.stem}-report.html")
    try:
        written = view.generate_reports(force_mode=True, path=target)
    except OSError as exc:
        _fail(f"cannot write {target}: {exc.strerror or exc}")
    if written is None:
        _fail(f"the chosen runs of {store} recorded no calls")
    print(f"HTML report: {written.resolve()}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    view = _selected(args)
    if args.function:
        view = _subset(view, args.function)
    if args.json:
        from callmetrics._export import to_dict  # noqa: PLC0415  # keep --help fast

        print(json.dumps(to_dict(view), indent=2))
    else:
        view.print_summary()
    return 0


def _runs(args: argparse.Namespace) -> int:
    store = _store(args)
    runs = _list_runs(store)
    if not runs:
        print(f"No runs recorded in {store} yet.")
        return 0
    _table(
        ["ID", "LABEL", "STARTED", "LAST WRITE", "STATE", "HOST", "PID", "CALLS", "FUNCS",
         "EVENTS", "PROGRAM"],
        ([str(run.id), run.label or "-", _when(run.started), _when(run.ended),
          "closed" if run.closed else "open", run.host, str(run.pid), f"{run.calls:,}",
          str(run.functions), f"{run.events:,}", run.program] for run in runs),
        "rlllllrrrrl",
    )
    return 0


def _side(store: Path, spec: str) -> tuple[str, Analytics]:
    """Load one side of a diff: a run id, or every run carrying a label."""
    runs = _list_runs(store)
    # Labels may be all digits too (a build number): never guess between the two.
    run_id = int(spec) if spec.isascii() and spec.isdigit() else None
    by_id = any(run.id == run_id for run in runs)
    by_label = any(run.label == spec for run in runs)
    if by_id and by_label:
        _fail(f"{spec!r} is both a run id and a label in {store}; give the runs labels "
              "that are not numbers")
    if by_id:
        return f"run {spec}", _load(store, runs=[int(spec)], events=False)
    if not by_label:
        _fail(f"no run with id or label {spec!r} in {store}")
    return f"label {spec!r}", _load(store, label=spec, events=False)


def _diff(args: argparse.Namespace) -> int:
    store = _store(args)
    base_name, base = _side(store, args.base)
    head_name, head = _side(store, args.head)
    qs = (0.50, 0.95, 0.99)
    before = {s.name: s for s in base.snapshot()}
    after = {s.name: s for s in head.snapshot()}
    rows: list[list[str]] = []
    regressed: list[tuple[str, float]] = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        row = [name, f"{old.calls:,}" if old else "-", f"{new.calls:,}" if new else "-"]
        for q in qs:
            p_old = old.sketch.quantile(q) if old else None
            p_new = new.sketch.quantile(q) if new else None
            ratio = _ratio_of(p_old, p_new)
            row += [_seconds(p_old), _seconds(p_new), "-" if ratio is None else f"{ratio:.2f}x"]
            if q == 0.95 and ratio is not None and ratio > args.max_ratio:
                regressed.append((name, ratio))
        row.append("REGRESSED" if regressed and regressed[-1][0] == name else "")
        rows.append(row)
    print(f"Base: {base_name}, head: {head_name}, in {store}")
    _table(["FUNCTION", "CALLS", "(HEAD)", "P50", "(HEAD)", "RATIO", "P95", "(HEAD)", "RATIO",
            "P99", "(HEAD)", "RATIO", ""], rows, "lrrrrrrrrrrrl")
    if regressed:
        worst = ", ".join(f"{name} ({ratio:.2f}x)" for name, ratio in regressed)
        print(f"p95 grew past {args.max_ratio:g}x: {worst}")
        return 1
    print(f"OK: no function's p95 grew past {args.max_ratio:g}x")
    return 0


def _ratio_of(old: float | None, new: float | None) -> float | None:
    if old is None or new is None:
        return None
    if old == 0:
        return 1.0 if new == 0 else float("inf")
    return new / old


def _prune(args: argparse.Namespace) -> int:
    from callmetrics._store import StoreError, prune  # noqa: PLC0415  # keep --help fast

    store = _store(args)
    cutoff = time.time() - args.older_than.total_seconds()
    try:
        runs, events = prune(store, cutoff, vacuum=args.vacuum)
    except FileNotFoundError:
        _fail(f"no such store: {store}")
    except StoreError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {store}: {exc.strerror or exc}")
    print(f"Pruned {runs} run(s) last written before {_when(cutoff)} and {events:,} other "
          f"event(s) from {store}")
    return 0


# --------------------------------------------------------------------- parsers
def add_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
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
                    "table or as JSON (the shape of Analytics.to_dict()).")
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

    diff = commands.add_parser(
        "diff", help="compare two runs' percentiles; exit 1 on a p95 regression",
        description="Compare calls and p50/p95/p99 per function between two runs. Exits 1 "
                    "when any function's p95 grew by more than --max-ratio (for CI).")
    diff.add_argument("store", metavar="STORE", help="the store file")
    diff.add_argument("--base", metavar="RUN", required=True,
                      help="the reference: a run id, or a label (its runs merged)")
    diff.add_argument("--head", metavar="RUN", required=True,
                      help="the run to check: a run id, or a label (its runs merged)")
    diff.add_argument("--max-ratio", metavar="R", type=_ratio, default=1.2,
                      help="largest accepted head/base p95 ratio (default 1.2)")
    diff.set_defaults(handler=_diff)

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


def finish_demo_store(analytics: Analytics, store: Path) -> None:
    """Close the demo's store and print where it is and what to try next."""
    analytics.close()
    if not store.is_file():
        _fail(f"could not write the store {store}")
    where = shlex.quote(str(store))
    print(f"Store: {store.resolve()}")
    print("Try next:")
    for command in (f"runs {where}", f"stats {where}", f"report {where} -o report.html"):
        print(f"  callmetrics {command}")
    runs = _list_runs(store)
    if len(runs) >= 2:
        print(f"  callmetrics diff {where} --base {runs[1].id} --head {runs[0].id}")
    else:
        print(f"  callmetrics demo --store {where}   (again, then `callmetrics diff` the runs)")
