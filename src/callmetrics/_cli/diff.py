"""``callmetrics diff STORE --base RUN --head RUN``: a regression verdict worth gating on.

See :mod:`callmetrics._outputs.verdicts` for the decisions and
:mod:`callmetrics._outputs.compare` for the tests.  The exit code is 1 only when a
function regressed (significantly slower, its whole corrected interval above
``--max-ratio``), 0 otherwise, and 2 for a usage error, like every other command.
Output: an aligned table, ``--format markdown`` (a pull-request comment or a GitHub
step summary) or ``--json``; the last line of the first two is the verdict.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callmetrics._cli.common import (
    collector_paused,
    fail,
    guarded,
    positive_arg,
    print_table,
    store_path,
)
from callmetrics._format import duration, printable, ratio
from callmetrics._outputs.verdicts import Comparison, Environment, Side, Thresholds, judge

if TYPE_CHECKING:
    from callmetrics._cli.common import Parser
    from callmetrics._engine.state import FunctionSnapshot

__all__ = ["add_commands", "duration_arg", "speed"]

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


def _side(store: Path, spec: str, runs: list[tuple[int, str | None]],
          ) -> tuple[str, Side, bool]:
    """Load one side of a diff (a run id, or every run carrying a label).

    ``runs`` holds the store's run ids and labels.  Returns the side's description,
    its data, and whether its runs are of a store without probes (before version 3).
    """
    from callmetrics._store.probe import read_probes  # noqa: PLC0415  # keep --help fast
    from callmetrics._store.runs import read_stored  # noqa: PLC0415
    from callmetrics._store.samples import read_calls  # noqa: PLC0415

    # Labels may be all digits too (a build number): never guess between the two.
    run_id = int(spec) if spec.isascii() and spec.isdigit() else None
    by_id = [(i, label) for i, label in runs if i == run_id]
    by_label = [i for i, label in runs if label == spec]
    if by_id and by_label:
        fail(f"{spec!r} is both a run id and a label in {store}; give the runs labels "
              "that are not numbers")
    if by_id:
        label = f" (label {by_id[0][1]!r})" if by_id[0][1] is not None else ""
        name, chosen = f"run {spec}{label}", [by_id[0][0]]
    elif not by_label:
        fail(f"no run with id or label {spec!r} in {store}")
    else:
        chosen = sorted(by_label)
        plural = "s" if len(chosen) > 1 else ""
        name = f"label {spec!r} (run{plural} {', '.join(map(str, chosen))})"
    functions = _merged(guarded(store, lambda: read_stored(store, runs=chosen,
                                                           events=False)[0]))
    calls, starts = guarded(store, lambda: read_calls(store, chosen))
    probes = guarded(store, lambda: read_probes(store, chosen))
    samples = [s for p in probes.values() if p is not None for s in p.seconds]
    probe = samples if all(p is not None for p in probes.values()) else None
    return name, Side(functions, calls, probe, starts), not _has_probe_column(store)


def _merged(snaps: list[FunctionSnapshot]) -> list[FunctionSnapshot]:
    """One snapshot per function: the runs of a label added together."""
    from callmetrics._engine.sketch import DurationSketch  # noqa: PLC0415

    by_name: dict[str, list[FunctionSnapshot]] = {}
    for snap in snaps:
        by_name.setdefault(snap.name, []).append(snap)
    merged = []
    for group in by_name.values():
        if len(group) == 1:
            merged.append(group[0])
            continue
        sketch = DurationSketch()
        for snap in group:
            sketch.merge(snap.sketch)
        slowest = [s.slowest for s in group if s.slowest is not None]
        fastest = [s.fastest for s in group if s.fastest is not None]
        merged.append(dataclasses.replace(
            group[0], calls=sum(s.calls for s in group),
            successes=sum(s.successes for s in group), total=sum(s.total for s in group),
            fast=sum(s.fast for s in group), medium=sum(s.medium for s in group),
            slow=sum(s.slow for s in group), overhead=sum(s.overhead for s in group),
            sketch=sketch, slowest=max(slowest, key=lambda e: e.duration, default=None),
            fastest=min(fastest, key=lambda e: e.duration, default=None),
            self_time=None, inclusive_time=None, active_time=None, active_self_time=None,
            callers=()))
    return merged


def _has_probe_column(store: Path) -> bool:
    from callmetrics._store import read_store  # noqa: PLC0415
    from callmetrics._store.schema import has_attribution  # noqa: PLC0415

    return guarded(store, lambda: read_store(store, lambda conn, _: has_attribution(conn)))


# ------------------------------------------------------------------------ words
def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<1e-99" if value < 1e-99 else f"{value:.2g}"


def _interval(c: Comparison) -> str:
    if c.ratio_low is None or c.ratio_high is None:
        return "-"
    high = "inf" if not math.isfinite(c.ratio_high) else f"{c.ratio_high:.2f}"
    return f"[{c.ratio_low:.2f}, {high}]"


def speed(factor: float) -> str:
    """``1.31x slower``, ``1.25x faster`` (with a multiplication sign) or ``as fast``."""
    if abs(math.log(factor)) < 0.005:
        return "as fast"
    return f"{ratio(factor)} slower" if factor > 1 else f"{ratio(1 / factor)} faster"


def _environment(env: Environment, old_store: bool) -> list[str]:
    lines = []
    if env.used == "none":
        lines.append(f"Environment: not corrected: {env.why}.")
    else:
        lines.append(f"Environment: head ran on a machine {speed(env.factor.value)}, "
                     f"{env.why}; each function is judged on its ratio divided by "
                     f"{ratio(env.factor.value)}.")
    known = []
    if env.probe is not None:
        spread = (f" [{env.probe.low:.2f}, {env.probe.high:.2f}]"
                  if math.isfinite(env.probe.high) else "")
        known.append(f"probe {ratio(env.probe.value)}{spread}")
    elif old_store:
        known.append("no probe: the store predates schema version 3")
    if env.common is not None:
        known.append(f"common shift {ratio(env.common.value)} [{env.common.low:.2f}, "
                     f"{env.common.high:.2f}], {env.common_agree} of {env.tested} tested "
                     "functions within --max-ratio of it")
    if known:
        lines.append(f"  ({'; '.join(known)})")
    left = [f"{side} {len(s.left_out)} of {s.windows} windows (up to {ratio(s.slowest)} slower)"
            for side, s in zip(("base", "head"), env.stretches or (), strict=False) if s.left_out]
    if left:
        lines.append(f"  Slower stretches left out (windows of calls over 1.1x slower than the "
                     f"run's best): {'; '.join(left)}.")
    return lines


def _p95_ratio(c: Comparison) -> float | None:
    old, new = c.p95("base"), c.p95("head")
    if old is None or new is None:
        return None
    if old == 0:
        return 1.0 if new == 0 else math.inf
    return new / old


def _verdict_cell(c: Comparison) -> str:
    return "REGRESSED" if c.regressed else c.verdict


def _row(c: Comparison) -> list[str]:
    return [
        c.name, _verdict_cell(c), f"{c.base_samples:,}/{c.head_samples:,}",
        duration(c.base_median), duration(c.head_median), ratio(c.ratio), ratio(c.adjusted),
        _interval(c), ratio(_p95_ratio(c)), _p(c.p_value), c.reason,
    ]


_HEADER = ["FUNCTION", "VERDICT", "RETAINED", "BASE P50", "HEAD P50", "RATIO", "ADJUSTED",
           "95% CI", "P95 RATIO", "P (HOLM)", "REASON"]


def verdict_line(found: list[Comparison], limits: Thresholds) -> str:
    """The last line: the verdict, naming at most three functions, and a count."""
    regressed = [c for c in found if c.regressed]
    tested = sum(c.tested for c in found)
    if not regressed:
        slower = sum(c.verdict == "slower" for c in found)
        within = f", {slower} slower within --max-ratio {limits.max_ratio:g}" if slower else ""
        return (f"OK: none of {len(found)} functions regressed ({tested} tested{within})")
    names = ", ".join(f"{printable(c.name)} ({ratio(c.adjusted)})" for c in regressed[:3])
    more = f" and {len(regressed) - 3} more" if len(regressed) > 3 else ""
    return (f"REGRESSED: {names}{more}: {len(regressed)} of {len(found)} functions slower "
            f"beyond --max-ratio {limits.max_ratio:g}")


def _md(text: str) -> str:
    return printable(text).replace("\\", "\\\\").replace("|", "\\|").replace(
        "<", "&lt;").replace("`", "\\`")


def _markdown(found: list[Comparison], limits: Thresholds, base: str, head: str,
              env_lines: list[str]) -> str:
    def table(rows: list[Comparison]) -> list[str]:
        head_row = ["Function", "Verdict", "Retained", "Base p50", "Head p50", "Ratio",
                    "Adjusted", "95% CI", "p (Holm)", "Reason"]
        out = ["| " + " | ".join(head_row) + " |",
               "| --- | --- | " + " | ".join(["---:"] * 7) + " | --- |"]
        for c in rows:
            cells = _row(c)
            verdict = f"**{cells[1]}**" if c.regressed else cells[1]
            shown = [_md(cells[0]), verdict, *map(_md, cells[2:8]), _md(cells[9]),
                     _md(cells[10])]
            out.append("| " + " | ".join(shown) + " |")
        return out

    significant = [c for c in found if c.verdict in ("slower", "faster")]
    rest = [c for c in found if c not in significant]
    regressed = sum(c.regressed for c in found)
    title = f"REGRESSED ({regressed} of {len(found)} functions)" if regressed else "OK"
    lines = [f"### callmetrics diff: {title}", "",
             f"Base: {_md(base)}; head: {_md(head)}.", "",
             *(_md(line.strip()) for line in env_lines), ""]
    if significant:
        lines += [*table(significant), ""]
    else:
        lines += ["No function changed significantly.", ""]
    if rest:
        lines += ["<details><summary>" + f"{len(rest)} other functions (no significant "
                  "change, untested, new or gone)</summary>", "", *table(rest), "",
                  "</details>", ""]
    lines.append(f"**{_md(verdict_line(found, limits))}**")
    return "\n".join(lines)


def _as_json(c: Comparison) -> dict[str, Any]:
    def finite(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None

    return {
        "function": c.name, "event_type": c.event_type, "verdict": c.verdict,
        "regressed": c.regressed, "reason": c.reason, "p_value": c.p_value,
        "raw_p_value": c.raw_p,
        "base_calls": c.base.calls if c.base else None,
        "head_calls": c.head.calls if c.head else None,
        "base_samples": c.base_samples, "head_samples": c.head_samples,
        "base_median": c.base_median, "head_median": c.head_median,
        "ratio": finite(c.ratio), "adjusted_ratio": finite(c.adjusted),
        "ratio_low": finite(c.ratio_low), "ratio_high": finite(c.ratio_high),
        "base_p95": c.p95("base"), "head_p95": c.p95("head"),
        "p95_ratio": finite(_p95_ratio(c)),
        "environment_factor": finite(c.factor), "alongside": c.alongside,
    }


def _env_json(env: Environment) -> dict[str, Any]:
    def estimate(e: Any) -> dict[str, float] | None:
        return None if e is None else {"value": e.value, "low": e.low, "high": e.high}

    return {"used": env.used, "factor": estimate(env.factor), "why": env.why,
            "probe": estimate(env.probe), "common_shift": estimate(env.common),
            "common_agree": env.common_agree, "tested": env.tested,
            "stretches_left_out": {side: {"windows": s.windows, "left_out": sorted(s.left_out),
                                          "slowest": s.slowest}
                                   for side, s in zip(("base", "head"), env.stretches or (),
                                                      strict=False)}}


def _diff(args: argparse.Namespace) -> int:
    with collector_paused():  # until what it read is freed: see collector_paused
        return _compare(args)


def _compare(args: argparse.Namespace) -> int:
    store = store_path(args)
    limits = Thresholds(alpha=args.alpha, min_calls=args.min_calls, min_delta=args.min_delta,
                        max_ratio=args.max_ratio, environment=args.environment)
    from callmetrics._store.samples import run_labels  # noqa: PLC0415  # keep --help fast

    runs = guarded(store, lambda: run_labels(store))
    patterns = args.function

    def keep(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    base_name, base, old_store = _side(store, args.base, runs)
    head_name, head, _ = _side(store, args.head, runs)
    found, env = judge(base, head, limits, keep if patterns else None)
    if patterns and not found:
        fail(f"no function matches --function {' '.join(map(repr, patterns))} in either run")
    regressed = [c for c in found if c.regressed]
    if args.json:
        print(json.dumps({
            "schema": "callmetrics.diff", "schema_version": 2, "store": str(store),
            "base": base_name, "head": head_name,
            "thresholds": {"alpha": limits.alpha, "min_calls": limits.min_calls,
                           "min_delta": limits.min_delta, "max_ratio": limits.max_ratio,
                           "correction": "holm", "environment": limits.environment},
            "environment": _env_json(env),
            "functions": [_as_json(c) for c in found],
            "regressed": [c.name for c in regressed],
            "verdict": verdict_line(found, limits),
        }, indent=2))
        return 1 if regressed else 0
    env_lines = _environment(env, old_store)
    if args.format == "markdown":
        print(_markdown(found, limits, base_name, head_name, env_lines))
        return 1 if regressed else 0
    print(f"Base: {printable(base_name)}; head: {printable(head_name)}; "
          f"in {printable(str(store))}")
    for line in env_lines:
        print(printable(line))
    print_table(_HEADER, (_row(c) for c in found), "llrrrrrrrrl")
    print(verdict_line(found, limits))
    return 1 if regressed else 0


def add_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """Add ``diff`` to the ``callmetrics`` parser."""
    diff = commands.add_parser(
        "diff", help="compare two runs per function; exit 1 on a significant slowdown",
        description="Compare two runs of a store per function: a Mann-Whitney U test on "
                    "their retained calls (kept honest when a run's calls drift together), "
                    "after dividing out how much slower the head's machine was (the "
                    "machine-speed probe each run records, or the shift most functions "
                    "share), with Holm's correction for testing many functions at once, and "
                    "the ratio of the medians with a simultaneous 95% confidence interval. "
                    "A function is 'slower' or 'faster' when its adjusted p is below --alpha "
                    "and the medians differ by at least --min-delta; 'untested' with fewer "
                    "than --min-calls retained calls on a side or too few to reach --alpha. "
                    "Exits 1 only when a slower function's whole interval lies above "
                    "--max-ratio (for CI). Every row says why.")
    diff.add_argument("store", metavar="STORE", help="the store file")
    diff.add_argument("--base", metavar="RUN", required=True,
                      help="the reference: a run id, or a label (its runs merged)")
    diff.add_argument("--head", metavar="RUN", required=True,
                      help="the run to check: a run id, or a label (its runs merged)")
    diff.add_argument("--function", metavar="PATTERN", action="append", default=[],
                      help="compare only the functions matching this name or glob pattern "
                           "(repeatable); the environment is still judged on all")
    diff.add_argument("--max-ratio", metavar="R", type=positive_arg, default=1.1,
                      help="largest accepted head/base median ratio; a slower function "
                           "regresses when its whole corrected interval is above it "
                           "(default 1.1)")
    diff.add_argument("--alpha", metavar="P", type=_alpha_arg, default=0.002,
                      help="significance level over all functions compared, Holm-adjusted "
                           "(default 0.002)")
    diff.add_argument("--min-calls", metavar="N", type=_calls_arg, default=30,
                      help="fewest retained calls a side needs for the test (default 30)")
    diff.add_argument("--min-delta", metavar="TIME", type=duration_arg, default=1e-6,
                      help="medians closer than this are the same: 1us, 0.5ms, or seconds "
                           "(default 1us)")
    diff.add_argument("--environment", choices=["auto", "probe", "common", "none"],
                      default="auto",
                      help="what corrects for a faster or slower machine: the probe, the "
                           "common shift of the functions, none, or auto (default: the "
                           "common shift when it holds and the probe is missing or "
                           "disagrees, else the probe)")
    output = diff.add_mutually_exclusive_group()
    output.add_argument("--format", choices=["table", "markdown"], default="table",
                        help="a terminal table, or Markdown for a pull-request comment or "
                             "a GitHub step summary (non-significant rows folded)")
    output.add_argument("--json", action="store_true", help="print JSON for scripts")
    diff.set_defaults(handler=_diff)
