"""``callmetrics diff STORE --base RUN --head RUN``: a regression verdict worth gating on.

See :mod:`callmetrics._outputs.compare` for the statistics.  The exit code is 1 only when a
function is significantly slower by more than ``--max-ratio``, 0 otherwise, and 2
for a usage error, like every other command.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callmetrics._cli.common import (
    fail,
    list_store_runs,
    load_store,
    positive_arg,
    print_table,
    store_path,
)
from callmetrics._format import count, duration, printable, ratio
from callmetrics._outputs.compare import Comparison, Thresholds, compare

if TYPE_CHECKING:
    from callmetrics._cli.common import Parser
    from callmetrics._engine.view import Reading

__all__ = ["add_commands", "duration_arg"]

_DURATION = re.compile(r"(\d+(?:\.\d*)?(?:e-?\d+)?)\s*(ns|us|µs|ms|s)?")
_SCALE = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, None: 1.0}


def duration_arg(text: str) -> float:
    """Parse a duration: seconds, or a number with ns, us (µs), ms or s."""
    match = _DURATION.fullmatch(text.strip().lower())
    value = float(match[1]) * _SCALE[match[2]] if match else math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"expected a duration like 1us, 0.5ms or 0.001 (seconds), got {text!r}")
    return value


def _calls_arg(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 2:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 2, got {text!r}")
    return int(text)


def _alpha_arg(text: str) -> float:
    value = positive_arg(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}")
    return value


def _side(store: Path, spec: str) -> tuple[str, Reading]:
    """Load one side of a diff: a run id, or every run carrying a label."""
    runs = list_store_runs(store)
    # Labels may be all digits too (a build number): never guess between the two.
    run_id = int(spec) if spec.isascii() and spec.isdigit() else None
    by_id = [run for run in runs if run.id == run_id]
    by_label = [run for run in runs if run.label == spec]
    if by_id and by_label:
        fail(f"{spec!r} is both a run id and a label in {store}; give the runs labels "
              "that are not numbers")
    if by_id:
        label = f" (label {by_id[0].label!r})" if by_id[0].label is not None else ""
        return f"run {spec}{label}", load_store(store, runs=[by_id[0].id]).read()
    if not by_label:
        fail(f"no run with id or label {spec!r} in {store}")
    ids = ", ".join(str(run.id) for run in sorted(by_label, key=lambda r: r.id))
    plural = "s" if len(by_label) > 1 else ""
    return f"label {spec!r} (run{plural} {ids})", load_store(store, label=spec).read()


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<1e-99" if value < 1e-99 else f"{value:.2g}"


def _interval(c: Comparison) -> str:
    if c.ratio_low is None or c.ratio_high is None:
        return "-"
    return f"[{c.ratio_low:.2f}, {c.ratio_high:.2f}]"


def _note(c: Comparison, limits: Thresholds) -> str:
    if c.regressed:
        return "REGRESSED"
    if c.verdict in ("new", "gone"):
        return ""
    if not c.tested:
        return f"too few calls to test (< {limits.min_calls} retained)"
    if c.verdict == "slower":
        return f"within --max-ratio {limits.max_ratio:g}"
    return ""


def _p95_ratio(c: Comparison) -> float | None:
    old, new = c.p95("base"), c.p95("head")
    if old is None or new is None:
        return None
    if old == 0:
        return 1.0 if new == 0 else math.inf
    return new / old


def _row(c: Comparison, limits: Thresholds) -> list[str]:
    return [
        c.name, c.verdict,
        count(c.base.calls) if c.base else "-", count(c.head.calls) if c.head else "-",
        duration(c.base_median), duration(c.head_median), ratio(c.ratio), _interval(c),
        duration(c.p95("base")), duration(c.p95("head")), ratio(_p95_ratio(c)),
        _p(c.p_value), _note(c, limits),
    ]


def _as_json(c: Comparison) -> dict[str, Any]:
    def finite(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None

    return {
        "function": c.name, "event_type": c.event_type, "verdict": c.verdict,
        "regressed": c.regressed, "p_value": c.p_value,
        "base_calls": c.base.calls if c.base else None,
        "head_calls": c.head.calls if c.head else None,
        "base_samples": c.base_samples, "head_samples": c.head_samples,
        "base_median": c.base_median, "head_median": c.head_median,
        "ratio": finite(c.ratio), "ratio_low": finite(c.ratio_low),
        "ratio_high": finite(c.ratio_high),
        "base_p95": c.p95("base"), "head_p95": c.p95("head"),
        "p95_ratio": finite(_p95_ratio(c)),
    }


def _diff(args: argparse.Namespace) -> int:
    store = store_path(args)
    limits = Thresholds(alpha=args.alpha, min_calls=args.min_calls, min_delta=args.min_delta,
                        max_ratio=args.max_ratio)
    base_name, base = _side(store, args.base)
    head_name, head = _side(store, args.head)
    found = compare(base, head, limits)
    regressed = [c for c in found if c.regressed]
    if args.json:
        print(json.dumps({
            "schema": "callmetrics.diff", "schema_version": 1, "store": str(store),
            "base": base_name, "head": head_name,
            "thresholds": {"alpha": limits.alpha, "min_calls": limits.min_calls,
                           "min_delta": limits.min_delta, "max_ratio": limits.max_ratio},
            "functions": [_as_json(c) for c in found],
            "regressed": [c.name for c in regressed],
        }, indent=2))
        return 1 if regressed else 0
    print(f"Base: {printable(base_name)}; head: {printable(head_name)}; "
          f"in {printable(str(store))}")
    print_table(["FUNCTION", "VERDICT", "BASE CALLS", "HEAD CALLS", "BASE P50", "HEAD P50",
            "P50 RATIO", "95% CI", "BASE P95", "HEAD P95", "P95 RATIO", "P-VALUE", ""],
           (_row(c, limits) for c in found), "llrrrrrrrrrrl")
    rule = (f"significantly slower (p < {limits.alpha:g}, medians at least "
            f"{duration(limits.min_delta)} apart) by more than {ratio(limits.max_ratio)}")
    if regressed:
        names = ", ".join(f"{printable(c.name)} ({ratio(c.ratio)}, p={_p(c.p_value)})"
                          for c in regressed)
        print(f"REGRESSED, {rule}: {names}")
        return 1
    print(f"OK: no function is {rule}")
    return 0


def add_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """Add ``diff`` to the ``callmetrics`` parser."""
    diff = commands.add_parser(
        "diff", help="compare two runs per function; exit 1 on a significant slowdown",
        description="Compare two runs of a store per function: a Mann-Whitney U test on "
                    "their retained calls (kept honest when a run's calls drift together, "
                    "e.g. with machine load), the ratio of the medians with a 95% confidence "
                    "interval, and each run's p95. A function is 'slower' or 'faster' when "
                    "the test is significant (p < --alpha) and the medians differ by at "
                    "least --min-delta; 'same' otherwise, or with fewer than --min-calls "
                    "retained calls on a side. Exits 1 only when a function is slower by "
                    "more than --max-ratio (for CI).")
    diff.add_argument("store", metavar="STORE", help="the store file")
    diff.add_argument("--base", metavar="RUN", required=True,
                      help="the reference: a run id, or a label (its runs merged)")
    diff.add_argument("--head", metavar="RUN", required=True,
                      help="the run to check: a run id, or a label (its runs merged)")
    diff.add_argument("--max-ratio", metavar="R", type=positive_arg, default=1.1,
                      help="largest accepted head/base median ratio of a significantly "
                           "slower function (default 1.1)")
    diff.add_argument("--alpha", metavar="P", type=_alpha_arg, default=0.002,
                      help="significance level of the test (default 0.002)")
    diff.add_argument("--min-calls", metavar="N", type=_calls_arg, default=30,
                      help="fewest retained calls a side needs for the test (default 30)")
    diff.add_argument("--min-delta", metavar="TIME", type=duration_arg, default=1e-6,
                      help="medians closer than this are the same: 1us, 0.5ms, or seconds "
                           "(default 1us)")
    diff.add_argument("--json", action="store_true", help="print JSON for scripts")
    diff.set_defaults(handler=_diff)
