"""``callmetrics history STORE``: each function's series over the stored runs, and its steps.

Per function: the median and p95 of every run (from the run's sketch, every call),
the mean self time when the run recorded it, and the change points found in the
medians (and in the self times) by :mod:`callmetrics._outputs.changepoints`.
``--gate`` exits 1 when the newest run starts a slowdown past ``--max-ratio``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callmetrics._cli.common import (
    fail,
    guarded,
    local_time,
    os_error,
    positive_arg,
    print_table,
    store_path,
)
from callmetrics._format import count, duration, printable, ratio
from callmetrics._outputs.changepoints import ALPHA, Step, find_steps, newest_step

if TYPE_CHECKING:
    from callmetrics._cli.common import Parser
    from callmetrics._store.samples import HistoryRun

__all__ = ["Series", "add_commands", "series_of"]

_BARS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"


@dataclass(frozen=True, slots=True)
class Series:
    """One function over the runs that called it, with its change points."""

    name: str
    runs: list[HistoryRun]
    medians: list[float]
    p95s: list[float]
    self_times: list[float | None]
    steps: list[Step]
    self_steps: list[Step]
    """Change points of the self time (over the runs that recorded it)."""
    self_runs: list[HistoryRun]
    newest: Step | None
    """The newest run as a step up from the runs before it (None: not significant)."""


def series_of(runs: Sequence[HistoryRun], alpha: float) -> list[Series]:
    """Every function's series over ``runs`` (oldest first), sorted by name."""
    names = sorted({name for run in runs for name in run.functions})
    found = []
    for name in names:
        mine = [run for run in runs if name in run.functions]
        points = [run.functions[name] for run in mine]
        medians = [max(p.median, 1e-12) for p in points]
        steps = find_steps(medians, alpha=alpha)
        with_self = [(run, p.self_time) for run, p in zip(mine, points, strict=True)
                     if p.self_time is not None]
        self_steps = find_steps([max(s, 1e-12) for _, s in with_self], alpha=alpha)
        newest = newest_step(medians, steps, alpha=alpha) if mine[-1] is runs[-1] else None
        found.append(Series(name, mine, medians, [p.p95 for p in points],
                            [p.self_time for p in points], steps, self_steps,
                            [run for run, _ in with_self], newest))
    return found


def _spark(values: Sequence[float]) -> str:
    logs = [math.log(v) for v in values]
    low, high = min(logs), max(logs)
    if high - low < 1e-9:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(7, int((v - low) / (high - low) * 8))] for v in logs)


def _run_name(run: HistoryRun) -> str:
    return f"run {run.id}" + (f" ({run.label})" if run.label is not None else "")


def _step_text(step: Step, runs: Sequence[HistoryRun]) -> str:
    return (f"{_run_name(runs[step.index])}: {ratio(step.ratio)} "
            f"[{step.low:.2f}, {step.high:.2f}], p={step.p_value:.1g}")


def _json(series: list[Series], runs: Sequence[HistoryRun], gate: list[Series] | None,
          limits: argparse.Namespace) -> dict[str, Any]:
    def step(s: Step, of: Sequence[HistoryRun], what: str) -> dict[str, Any]:
        run = of[s.index]
        return {"series": what, "run": run.id, "label": run.label, "ratio": s.ratio,
                "low": s.low, "high": s.high, "p_value": s.p_value}

    return {
        "schema": "callmetrics.history", "schema_version": 1,
        "runs": [{"id": r.id, "label": r.label, "started": r.started,
                  "probe": None if r.probe is None else list(r.probe.seconds)} for r in runs],
        "functions": [{
            "function": s.name,
            "series": [{"run": r.id, "calls": r.functions[s.name].calls, "median": m,
                        "p95": p, "self_time": t}
                       for r, m, p, t in zip(s.runs, s.medians, s.p95s, s.self_times,
                                             strict=True)],
            "change_points": [step(c, s.runs, "median") for c in s.steps]
            + [step(c, s.self_runs, "self_time") for c in s.self_steps],
            "newest": None if s.newest is None else step(s.newest, s.runs, "median"),
        } for s in series],
        "gate": None if gate is None else {
            "max_ratio": limits.max_ratio, "failed": [s.name for s in gate]},
    }


def _print_series(s: Series) -> None:
    print(f"{printable(s.name)}: {len(s.runs)} runs")
    probe = [None if r.probe is None else sorted(r.probe.seconds)[len(r.probe.seconds) // 2]
             for r in s.runs]
    print_table(["RUN", "LABEL", "STARTED", "CALLS", "P50", "P95", "SELF", "PROBE"],
                ([str(r.id), r.label or "-", local_time(r.started),
                  count(r.functions[s.name].calls), duration(m), duration(p), duration(t),
                  duration(q)]
                 for r, m, p, t, q in zip(s.runs, s.medians, s.p95s, s.self_times, probe,
                                          strict=True)), "llllrrrr")
    for step in s.steps:
        print(f"  change point (p50) at {printable(_step_text(step, s.runs))}")
    for step in s.self_steps:
        print(f"  change point (self time) at {printable(_step_text(step, s.self_runs))}")
    if not s.steps and not s.self_steps:
        print("  no change point")


def _write_html(path: Path, store: Path, series: list[Series]) -> None:
    from callmetrics._outputs.trend import TrendSeries, trend_page  # noqa: PLC0415

    page = trend_page(f"History of {store.name}", [
        TrendSeries(s.name, [_run_name(r) for r in s.runs], s.medians,
                    [(c.index, f"from {_step_text(c, s.runs)}") for c in s.steps])
        for s in series])
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        fail(os_error(f"cannot write {path}", exc))


def _history(args: argparse.Namespace) -> int:
    from callmetrics._store.samples import read_history  # noqa: PLC0415  # keep --help fast

    store = store_path(args)
    runs = guarded(store, lambda: read_history(store, label_like=args.label_like))
    if not runs:
        print(f"No run in {printable(str(store))}"
              + (f" with a label like {printable(repr(args.label_like))}"
                 if args.label_like else ""))
        return 0
    patterns = args.function
    if patterns:
        runs = [type(run)(run.id, run.label, run.started, run.probe,
                          {n: p for n, p in run.functions.items()
                           if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)})
                for run in runs]
    series = series_of(runs, args.alpha)
    gate = ([s for s in series if s.newest is not None and s.newest.low > args.max_ratio]
            if args.gate else None)
    if args.html is not None:
        _write_html(Path(args.html), store, series)
    if args.json:
        print(json.dumps(_json(series, runs, gate, args), indent=2))
        return 1 if gate else 0
    print(f"History of {len(runs)} runs in {printable(str(store))}: oldest "
          f"{printable(_run_name(runs[0]))}, newest {printable(_run_name(runs[-1]))}")
    if patterns:
        for s in series:
            _print_series(s)
    else:
        print_table(["FUNCTION", "RUNS", "FIRST P50", "LAST P50", "TREND (P50)",
                     "CHANGE POINTS"],
                    ([s.name, str(len(s.runs)), duration(s.medians[0]),
                      duration(s.medians[-1]), _spark(s.medians[-40:]),
                      "; ".join(_step_text(c, s.runs) for c in s.steps) or "-"]
                     for s in series), "lrrrll")
    if gate is None:
        return 0
    newest = _run_name(runs[-1])
    if gate:
        names = ", ".join(f"{printable(s.name)} ({ratio(s.newest.ratio)})"
                          for s in gate[:3] if s.newest is not None)
        more = f" and {len(gate) - 3} more" if len(gate) > 3 else ""
        print(f"SLOWER: {printable(newest)} starts a slowdown past --max-ratio "
              f"{args.max_ratio:g}: {names}{more}")
        return 1
    print(f"OK: {printable(newest)} starts no slowdown past --max-ratio {args.max_ratio:g} "
          f"({sum(s.runs[-1] is runs[-1] for s in series)} functions)")
    return 0


def add_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """Add ``history`` to the ``callmetrics`` parser."""
    history = commands.add_parser(
        "history", help="each function's medians over the stored runs, and where they stepped",
        description="Show each function's series over the runs of a store (median and p95 "
                    "of every call, and mean self time when recorded), with its change "
                    "points: E-divisive means with a Student t-test, as Hunter and Apache "
                    "Otava do, on the logarithms, each with its size, 95% interval and the "
                    "run it starts at. --gate exits 1 when the newest run is significantly "
                    "slower than the runs since the last change point, by more than "
                    "--max-ratio (its whole interval above it).")
    history.add_argument("store", metavar="STORE", help="the store file")
    history.add_argument("--function", metavar="PATTERN", action="append", default=[],
                         help="only these functions (name or glob pattern, repeatable), "
                              "each shown run by run")
    history.add_argument("--label-like", metavar="PATTERN",
                         help="only runs whose label matches this SQL LIKE pattern "
                              "(%% any text, _ one character)")
    history.add_argument("--gate", action="store_true",
                         help="exit 1 when the newest run starts a slowdown past --max-ratio")
    history.add_argument("--max-ratio", metavar="R", type=positive_arg, default=1.1,
                         help="slowdown --gate accepts (default 1.1)")
    history.add_argument("--alpha", metavar="P", type=positive_arg, default=ALPHA,
                         help=f"significance of a change point (default {ALPHA:g})")
    history.add_argument("--json", action="store_true", help="print JSON for scripts")
    history.add_argument("--html", metavar="FILE",
                         help="also write a page with a small trend chart per function "
                              "(median per run, change points marked)")
    history.set_defaults(handler=_history)
