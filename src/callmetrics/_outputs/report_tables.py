"""The report's tables: functions, failures grouped by cause, outliers, slow calls.

Every text that came from user code or from disk goes through ``printable`` here
(Jinja2 escapes it afterwards), and every figure through ``_format``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import gt

from callmetrics._engine.columns import CallColumns, is_sorted
from callmetrics._engine.records import format_time
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._engine.view import RetainedCall
from callmetrics._format import count, duration, percent, printable
from callmetrics._outputs.failures import failure_causes, short_location
from callmetrics._outputs.names import natural_key
from callmetrics._outputs.report_charts import (
    OUTLIER_FLOOR,
    OUTLIER_MIN_CALLS,
    OUTLIER_SPREAD,
    Bounds,
    Percentiles,
    calls_label,
)

__all__ = ["CPU_COLUMN", "FUNCTION_COLUMNS", "OVERHEAD_FLAG", "Cell", "Detail", "FailureGroup",
           "OutlierRow", "OverheadRow", "describe_thresholds", "details", "failure_groups",
           "function_columns", "function_rows", "outlier_rows", "overhead_rows", "percentiles",
           "times", "valid_calls", "when"]


@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell: what it shows and the value it sorts by."""

    text: str
    sort: str | float


def when(timestamp: float, time_format: str, *, compact: bool, millis: bool = False) -> str:
    """A local time as configured, or ``-`` for a time no calendar holds.

    With ``millis``, a format that ends with the seconds (``%S``, as the default and
    ``compact_time`` do) gets the milliseconds too (``14:14:16.352``): calls of one
    run are often less than a second apart, and equal times would tell them nothing.
    """
    shown = millis and ("%H:%M:%S" if compact else time_format).endswith("%S")
    try:
        # Rounded to the millisecond first, so that 12:00:00.9996 reads 12:00:01.000.
        second, ms = divmod(round(timestamp * 1000), 1000) if shown else (timestamp, 0)
        text = format_time(second, time_format, compact=compact)
    except (OverflowError, ValueError, OSError):
        return "-"
    return printable(f"{text}.{ms:03d}" if shown else text)


def _finite(values: Sequence[float]) -> bool:
    """Whether every value is a finite number (NaN and infinities carry into a sum: C speed)."""
    return math.isfinite(sum(values)) or all(map(math.isfinite, values))


def valid_calls(calls: CallColumns) -> tuple[CallColumns, int]:
    """The calls whose start and duration are finite numbers (duration not negative), by start.

    Also how many were left out.  Retained calls come in the order they *ended*; a call
    that encloses others (a ``measure`` block, a request around its queries) ends after
    them but started first.  The timeline counts time from the first start and the
    tables say "newest first", so the report works on the calls in the order they
    started (a stable sort: calls that started together keep their order).
    """
    starts, durations = calls.starts, calls.durations
    n = len(calls)
    if n and _finite(starts) and _finite(durations) and min(durations) >= 0:
        if is_sorted(starts):
            return calls, 0
        chosen: Sequence[int] = range(n)
    else:
        chosen = [i for i in range(n) if math.isfinite(starts[i])
                  and math.isfinite(durations[i]) and durations[i] >= 0]
    return calls.take(sorted(chosen, key=starts.__getitem__)), n - len(chosen)


def _sort_key(value: float | None) -> float:
    """A compact numeric sort key (three significant digits)."""
    return float(f"{value or 0.0:.3g}")


FUNCTION_COLUMNS = ("Function", "Event type", "Calls", "Successes", "Failures", "Success %",
                    "Self", "Total time", "Active", "Average", "p50", "p95", "p99", "Max",
                    "Overhead")


# Shown after "Active" when a function's thread CPU time was measured (cpu_time=True).
CPU_COLUMN = "CPU (thread)"


def function_columns(snaps: Iterable[FunctionSnapshot]) -> tuple[str, ...]:
    """``FUNCTION_COLUMNS``, with ``CPU_COLUMN`` after Active when any CPU time is known."""
    if not any(s.cpu_time is not None for s in snaps):
        return FUNCTION_COLUMNS
    at = FUNCTION_COLUMNS.index("Active") + 1
    return (*FUNCTION_COLUMNS[:at], CPU_COLUMN, *FUNCTION_COLUMNS[at:])


def _maybe(value: float | None) -> Cell:
    """A duration that may be unknown: ``-``, sorted below every known one."""
    return Cell(duration(value), -1.0 if value is None else _sort_key(value))


def percentiles(snaps: Sequence[FunctionSnapshot]) -> dict[str, list[float | None]]:
    """Each function's p50, p95 and p99, by name: read once for the report's tables."""
    return {snap.name: snap.sketch.quantiles((0.5, 0.95, 0.99)) for snap in snaps}


def function_rows(snaps: Iterable[FunctionSnapshot],
                  known: Percentiles | None = None) -> list[list[Cell]]:
    """One row per function, by self time (total time when unknown); ``FUNCTION_COLUMNS``.

    Self is the calls' time less the tracked calls they made; Active the time
    coroutines and generators actually ran (their total time for plain functions).
    With a measured CPU time, each row has ``function_columns``' CPU cell too.
    ``known``: the functions' p50, p95 and p99 (``percentiles``), when already read.
    """
    snaps = list(snaps)
    cpu = any(s.cpu_time is not None for s in snaps)
    by_self = bool(snaps) and all(s.self_time is not None for s in snaps)
    rows = []
    for s in sorted(snaps, key=lambda s: (-(s.self_time or 0.0) if by_self else -s.total,
                                          natural_key(s.name))):
        p50, p95, p99 = (known[s.name] if known is not None
                         else s.sketch.quantiles((0.5, 0.95, 0.99)))
        name, kind = printable(s.name), printable(s.event_type)
        rows.append([
            Cell(name, name.lower()), Cell(kind, kind.lower()),
            Cell(count(s.calls), s.calls), Cell(count(s.successes), s.successes),
            Cell(count(s.failures), s.failures),
            Cell(percent(s.successes, s.calls), round(s.successes / s.calls, 6) if s.calls else 0),
            _maybe(s.self_time), Cell(duration(s.total), _sort_key(s.total)),
            _maybe(s.active_time), *((_maybe(s.cpu_time),) if cpu else ()),
            *(Cell(duration(v), _sort_key(v))
              for v in (s.average, p50, p95, p99, s.max, s.overhead)),
        ])
    return rows


# --------------------------------------------------------------------- failures
@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Retained failures with one cause: exception type, raise location, message template."""

    name: str
    """The function with the most of these failures."""
    others: str
    """The other functions that failed this way (``""``: none), with their counts."""
    event_type: str
    error: str
    template: str | None
    message: str | None
    """The newest message (None: not recorded)."""
    examples: list[str]
    """Up to three distinct messages, newest first."""
    count: int
    first: str
    last: str
    example_duration: str
    took: float
    """The newest call's duration (sort key)."""
    location: str | None
    newest: float


def failure_groups(calls: Sequence[RetainedCall], time_format: str,
                   compact: bool) -> list[FailureGroup]:
    """Group the retained failures by cause (``failure_causes``); the most frequent first.

    A message or location may be missing (stores written before they were
    recorded): the group then says so.
    """
    found = []
    for cause in failure_causes(calls):
        name = cause.function
        others = [f"{printable(fn)} ({count(n)})" for fn, n in cause.functions.most_common()
                  if fn != name]
        found.append(FailureGroup(
            name=printable(name), others=", ".join(others),
            event_type=printable(cause.event_type), error=printable(cause.error),
            template=None if cause.template is None else printable(cause.template),
            message=None if cause.message is None else printable(cause.message),
            examples=[printable(m) for m in cause.examples], count=cause.count,
            first=when(cause.first, time_format, compact=compact, millis=True),
            last=when(cause.last, time_format, compact=compact, millis=True),
            example_duration=duration(cause.last_duration), took=_sort_key(cause.last_duration),
            location=None if cause.location is None
            else printable(short_location(cause.location) or ""),
            newest=cause.last,
        ))
    return found


# --------------------------------------------------------------------- outliers
@dataclass(frozen=True, slots=True)
class OutlierRow:
    """A function whose tail is far from its body, and its retained calls above its p99."""

    name: str
    event_type: str
    p50: str
    p99: str
    spread: str
    """p99 as a multiple of p50."""
    above_p99: int
    slowest: str
    slowest_at: str
    slowest_ratio: str
    excess: str
    """Time the retained calls above the p99 took beyond the p50 each."""
    excess_sort: float


def times(value: float | None) -> str:
    """A multiple rounded to what matters: ``4.2``, ``38``, ``12,400`` and a times sign.

    ``-`` when unknown.
    """
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.1f}\u00d7" if value < 10 else f"{value:,.0f}\u00d7"


def outlier_rows(snaps: Sequence[FunctionSnapshot], calls: CallColumns,
                 above: Sequence[int], time_format: str,
                 compact: bool) -> list[OutlierRow]:
    """Functions with a long tail (see ``outlier_bounds``) and calls above their p99.

    ``above``: the positions of the calls above their function's p99 (``above_p99``).
    Sorted by excess: the time their retained calls above the p99 took beyond the p50.
    """
    members_of: dict[int, list[int]] = {}
    for i in above:
        members_of.setdefault(calls.functions[i], []).append(i)
    by_name = {s.name: s for s in snaps}
    durations = calls.durations
    rows = []
    for function, members in members_of.items():
        name = calls.names[function]
        snap = by_name.get(name)
        if snap is None:
            continue
        p50, p99 = snap.sketch.quantiles((0.5, 0.99))
        if not p50 or p99 is None:
            continue
        worst = max(members, key=durations.__getitem__)
        excess = math.fsum(durations[i] - p50 for i in members)
        rows.append(OutlierRow(
            name=printable(name), event_type=printable(snap.event_type), p50=duration(p50),
            p99=duration(p99), spread=times(p99 / p50), above_p99=len(members),
            slowest=duration(durations[worst]),
            slowest_at=when(calls.starts[worst], time_format, compact=compact, millis=True),
            slowest_ratio=times(durations[worst] / p50), excess=duration(excess),
            excess_sort=excess,
        ))
    rows.sort(key=lambda r: (-r.excess_sort, natural_key(r.name)))
    return rows


# ------------------------------------------------------------------- overhead
# Tracking is worth flagging when it costs this share of a function's own time.
OVERHEAD_FLAG = 0.2


@dataclass(frozen=True, slots=True)
class OverheadRow:
    """A function whose tracking costs a fifth or more of its own time."""

    name: str
    calls: str
    own: str
    overhead: str
    share: str
    share_sort: float
    advice: str


def overhead_rows(snaps: Sequence[FunctionSnapshot]) -> list[OverheadRow]:
    """Functions where the overhead is at least ``OVERHEAD_FLAG`` of their own time, worst first.

    Own time is self time when known (total time otherwise: then a caller's own
    time includes its callees', and the flag is conservative).
    """
    rows = []
    for s in snaps:
        own = s.self_time if s.self_time is not None else s.total
        if not s.calls or s.overhead <= 0:
            continue
        share = s.overhead / own if own > 0 else math.inf
        if share < OVERHEAD_FLAG:
            continue
        per_call = own / s.calls
        advice = ("untrack it, or time the loop that calls it with measure()"
                  if per_call < 20e-6 else "untrack it if its figures are not needed")
        rows.append(OverheadRow(
            name=printable(s.name), calls=count(s.calls), own=duration(own),
            overhead=duration(s.overhead),
            share=f"{share * 100:,.0f}%" if math.isfinite(share) else "-",
            share_sort=share if math.isfinite(share) else 1e18, advice=advice))
    rows.sort(key=lambda r: (-r.share_sort, natural_key(r.name)))
    return rows


# ----------------------------------------------------------------- slow calls
@dataclass(frozen=True, slots=True)
class Detail:
    """A retained call worth a look: slow by the thresholds, or above its own p99."""

    name: str
    event_type: str
    start: str
    duration: str
    category: str
    why: str
    error: str | None
    at: float
    """Start (Unix time) and duration in seconds: the sort keys."""
    took: float


def details(calls: CallColumns, above: Sequence[int],
            bounds: Mapping[str, Bounds], short_max: float, medium_max: float, cap: int,
            time_format: str, compact: bool) -> tuple[list[Detail], int]:
    """Medium, slow and p99-outlier calls, newest first, at most ``cap``; and how many more.

    ``above``: the positions of the calls above their function's p99 (``above_p99``).
    """
    longer = compress(range(len(calls)), map(gt, calls.durations, repeat(short_max)))
    matching = sorted({*longer, *above}, reverse=True)
    rows: list[Detail] = []
    for i in matching[:cap]:
        call = calls.call(i)
        if call.duration > medium_max:
            category, why = "slow", f"slow (over {duration(medium_max)})"
        elif call.duration > short_max:
            category, why = "medium", f"medium (over {duration(short_max)})"
        else:
            category, why = "outlier", f"above its p99 ({duration(bounds[call.name].p99)})"
        rows.append(Detail(
            printable(call.name), printable(call.event_type),
            when(call.start, time_format, compact=compact, millis=True),
            duration(call.duration),
            category, why, None if call.error is None else printable(call.error),
            call.start, call.duration))
    return rows, len(matching) - len(rows)


def describe_thresholds(short_max: float, medium_max: float) -> str:
    """The one line that says what fast, medium, slow and outlier mean here."""
    return (f"Fast: up to {duration(short_max)}; medium: up to {duration(medium_max)}; slow: "
            f"above (duration_thresholds). Outliers: calls above their own function's p99, "
            f"for functions with at least {calls_label(OUTLIER_MIN_CALLS)} whose p99 is at "
            f"least {OUTLIER_SPREAD:g}\u00d7 their p50 and at least {duration(OUTLIER_FLOOR)}.")
