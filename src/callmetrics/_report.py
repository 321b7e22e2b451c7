"""The HTML report: one self-contained, offline file rendered with autoescaping Jinja2.

Every figure is computed from the exact per-function aggregates and sketches
(``Analytics.snapshot()``); the grouped and detailed tables and the timeline use
the retained calls (``Analytics.raw_events()``).  Bars and histograms are SVG
drawn here; the timeline is a small canvas script (``static/report.js``) that
reads compact arrays from an inert JSON block.  A Content-Security-Policy allows
no request at all and only that script (by its hash) to run.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from callmetrics import __version__
from callmetrics._console import format_seconds
from callmetrics._logging import report_internal_error
from callmetrics._records import format_time
from callmetrics._state import FunctionSnapshot, RawEvent

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics

__all__ = ["build_report", "generate_reports", "render_report"]

# Charts stay readable with this many entries; the rest are summed or left out.
_MAX_BARS = 20
_MAX_HISTOGRAMS = 12
_BINS_PER_DECADE = 10


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("callmetrics", "templates"),
        autoescape=True,  # every template is HTML: names, types and errors are escaped
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Compact JSON (the timeline arrays are large); |tojson still escapes <, >, & and '.
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "allow_nan": False}
    env.filters["duration"] = format_seconds
    return env


@cache
def _asset(name: str) -> str:
    text = resources.files("callmetrics").joinpath("static", name).read_text("utf-8")
    # The asset is inserted unescaped into a <script>/<style> element.
    if "</" in text.replace("<\\/", ""):
        raise ValueError(f"static/{name} must not contain '</'")
    return text


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _three_digits(value: float) -> float:
    """Round to three significant digits, as an int from 100 up (shorter JSON)."""
    rounded = float(f"{value:.3g}")
    return int(rounded) if rounded >= 100 else rounded


def _percent(part: float, whole: float) -> float:
    return part / whole * 100 if whole else 0.0


# --------------------------------------------------------------------- charts
@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of the time-per-function chart (coordinates in SVG units)."""

    label: str
    full_name: str
    y: float
    width: float
    value: str
    tip: str
    other: bool = False


@dataclass(frozen=True, slots=True)
class HistBar:
    """One bin of a latency histogram."""

    x: float
    y: float
    width: float
    height: float
    tip: str


@dataclass(frozen=True, slots=True)
class Marker:
    """A percentile line on a histogram."""

    x: float
    label: str
    tip: str


@dataclass(slots=True)
class Histogram:
    """A busy function's latency distribution on a logarithmic duration axis."""

    name: str
    event_type: str
    calls: int
    bars: list[HistBar] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    peak: int = 0


@dataclass(frozen=True, slots=True)
class Tick:
    """An axis tick: position and label."""

    x: float
    label: str


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


BAR_CHART = {"width": 720, "label": 230, "row": 22, "value": 90}


def _time_bars(snaps: Sequence[FunctionSnapshot], total_time: float) -> list[Bar]:
    ranked = sorted(snaps, key=lambda s: (-s.total, s.name))
    shown, rest = ranked[:_MAX_BARS], ranked[_MAX_BARS:]
    entries = [(s.name, s.total, s.calls, False) for s in shown]
    if rest:
        entries.append((f"{len(rest)} other functions", math.fsum(s.total for s in rest),
                        sum(s.calls for s in rest), True))
    top = max((e[1] for e in entries), default=0.0) or 1.0
    span = BAR_CHART["width"] - BAR_CHART["label"] - BAR_CHART["value"]
    bars = []
    for i, (name, total, calls, other) in enumerate(entries):
        share = _percent(total, total_time)
        bars.append(Bar(
            label=_shorten(name, 34), full_name=name, y=i * BAR_CHART["row"],
            width=max(total / top * span, 1.0), value=format_seconds(total),
            tip=f"{name}: {format_seconds(total)} ({share:.1f}% of all time), {calls:,} calls",
            other=other,
        ))
    return bars


HIST = {"width": 340, "height": 120, "left": 36, "bottom": 22, "top": 8}


def _decade_label(exponent: int) -> str:
    for unit, base in (("s", 0), ("ms", -3), ("µs", -6), ("ns", -9)):
        if exponent >= base or unit == "ns":
            return f"{10 ** (exponent - base):g} {unit}"
    raise AssertionError  # unreachable: "ns" takes every smaller exponent


def _histograms(snaps: Sequence[FunctionSnapshot]) -> tuple[list[Histogram], list[Tick]]:
    busy = sorted(snaps, key=lambda s: (-s.calls, s.name))[:_MAX_HISTOGRAMS]
    positive = [s.min for s in busy if s.min > 0] + [s.max for s in busy if s.max > 0]
    if not positive:
        return [], []
    low = math.floor(math.log10(min(positive)))
    high = max(math.ceil(math.log10(max(positive))), low + 1)
    bins = (high - low) * _BINS_PER_DECADE
    plot_w = HIST["width"] - HIST["left"] - 4
    plot_h = HIST["height"] - HIST["bottom"] - HIST["top"]
    bin_w = plot_w / bins

    def x_of(seconds: float) -> float:
        if seconds <= 0:
            return HIST["left"]
        return HIST["left"] + (math.log10(seconds) - low) / (high - low) * plot_w

    every = 1 if high - low <= 6 else 2  # label every other decade when they crowd
    ticks = [Tick(x_of(10.0**e), _decade_label(e) if (e - low) % every == 0 else "")
             for e in range(low, high + 1)]
    charts = []
    for snap in busy:
        counts = [0] * bins
        for lo, hi, n in snap.sketch.buckets():
            mid = (lo + hi) / 2
            index = 0 if mid <= 0 else int((math.log10(mid) - low) * _BINS_PER_DECADE)
            counts[min(max(index, 0), bins - 1)] += n
        chart = Histogram(snap.name, snap.event_type, snap.calls, peak=max(counts))
        for i, n in enumerate(counts):
            if not n:
                continue
            height = max(n / chart.peak * plot_h, 1.0)
            lo_s = 10 ** (low + i / _BINS_PER_DECADE)
            hi_s = 10 ** (low + (i + 1) / _BINS_PER_DECADE)
            chart.bars.append(HistBar(
                x=HIST["left"] + i * bin_w, y=HIST["top"] + plot_h - height,
                width=max(bin_w - 0.6, 0.6), height=height,
                tip=f"{format_seconds(lo_s)} to {format_seconds(hi_s)}: {n:,} calls "
                    f"({_percent(n, snap.calls):.1f}%)",
            ))
        for q, label in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            value = snap.sketch.quantile(q)
            if value is not None:
                chart.markers.append(Marker(x_of(value), label,
                                            f"{label}: {format_seconds(value)}"))
        charts.append(chart)
    return charts, ticks


def _timeline(raw: Sequence[RawEvent], analytics: Analytics) -> dict[str, Any]:
    """Encode the retained calls as compact parallel arrays for the canvas script.

    ``s``: start deltas in microseconds; ``d``: durations in microseconds (three
    significant digits); ``f``: function index; ``x``: ``[index, error index]`` of
    each failure.
    """
    names: dict[str, int] = {}
    errors: dict[str, int] = {}
    starts: list[int] = []
    durations: list[float] = []
    functions: list[int] = []
    failures: list[list[int]] = []
    t0 = raw[0][0] if raw else time.time()
    previous = 0
    types: list[str] = []
    for i, (start, duration, error, stats) in enumerate(raw):
        micros = round((start - t0) * 1e6)
        starts.append(micros - previous)
        previous = micros
        durations.append(_three_digits(duration * 1e6))
        index = names.get(stats.name)
        if index is None:
            index = names[stats.name] = len(names)
            types.append(stats.event_type)
        functions.append(index)
        if error is not None:
            failures.append([i, errors.setdefault(error, len(errors))])
    return {
        "t0": round(t0 * 1e3, 3), "names": list(names), "types": types,
        "errors": list(errors), "s": starts, "d": durations, "f": functions, "x": failures,
        "short": analytics.short_max * 1e6, "medium": analytics.medium_max * 1e6,
    }


# ---------------------------------------------------------------------- tables
@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell: what it shows and the value it sorts by."""

    text: str
    sort: str | float


def _function_rows(snaps: Iterable[FunctionSnapshot]) -> list[list[Cell]]:
    rows = []
    for s in sorted(snaps, key=lambda s: (-s.total, s.name)):
        p50, p95, p99 = s.sketch.quantiles((0.5, 0.95, 0.99))
        success = _percent(s.successes, s.calls)
        rows.append([
            Cell(s.name, s.name.lower()), Cell(s.event_type, s.event_type.lower()),
            Cell(f"{s.calls:,}", s.calls), Cell(f"{s.successes:,}", s.successes),
            Cell(f"{s.failures:,}", s.failures), Cell(f"{success:.1f}%", round(success, 3)),
            *(Cell(format_seconds(v), _three_digits(v or 0.0))
              for v in (s.total, s.average, p50, p95, p99, s.max, s.overhead)),
        ])
    return rows


FUNCTION_COLUMNS = ("Function", "Event type", "Calls", "Successes", "Failures", "Success %",
                    "Total time", "Average", "p50", "p95", "p99", "Max", "Overhead")


@dataclass(frozen=True, slots=True)
class Group:
    """Short successful calls of one function, grouped (the seed's summary table)."""

    name: str
    event_type: str
    count: int
    average: str
    total: str


@dataclass(frozen=True, slots=True)
class Detail:
    """A failed, medium or slow call."""

    name: str
    event_type: str
    start: str
    end: str
    duration: str
    category: str
    error: str | None


def _tables(raw: Sequence[RawEvent], analytics: Analytics) -> tuple[list[Group], list[Detail],
                                                                    int]:
    short, medium = analytics.short_max, analytics.medium_max
    fmt, compact = analytics.time_format, analytics.compact_time
    grouped: dict[str, tuple[str, int, float]] = {}
    for _, duration, error, stats in raw:
        if error is None and duration <= short:
            _, count, total = grouped.get(stats.name, ("", 0, 0.0))
            grouped[stats.name] = (stats.event_type, count + 1, total + duration)
    groups = [Group(name, kind, count, format_seconds(total / count), format_seconds(total))
              for name, (kind, count, total) in
              sorted(grouped.items(), key=lambda item: (-item[1][2], item[0]))]
    cap = analytics.config.report_max_detail_rows
    details: list[Detail] = []
    matching = 0
    for start, duration, error, stats in reversed(raw):
        if error is None and duration <= short:
            continue
        matching += 1
        if len(details) >= cap:
            continue
        category = "failure" if error else "slow" if duration > medium else "medium"
        details.append(Detail(
            stats.name, stats.event_type, format_time(start, fmt, compact=compact),
            format_time(start + duration, fmt, compact=compact), format_seconds(duration),
            category, error,
        ))
    return groups, details, matching - len(details)


# ---------------------------------------------------------------------- render
def build_report(analytics: Analytics, *, force_mode: bool = False) -> dict[str, Any]:
    """Compute everything the report template shows (a plain mapping, for tests and reuse)."""
    snaps = analytics.snapshot()
    raw = analytics.raw_events()
    calls = sum(s.calls for s in snaps)
    successes = sum(s.successes for s in snaps)
    total_time = math.fsum(s.total for s in snaps)
    groups, details, left_out = _tables(raw, analytics)
    histograms, ticks = _histograms(snaps)
    return {
        "title": "callmetrics report",
        "version": __version__,
        "generated": format_time(time.time(), analytics.time_format, compact=False),
        "run_type": "full" if force_mode else "incremental",
        "function_count": len(snaps),
        "calls": calls,
        "failures": calls - successes,
        "retained": len(raw),
        "success_rate": _percent(successes, calls),
        "total_time": total_time,
        "short_max": analytics.short_max,
        "medium_max": analytics.medium_max,
        "columns": FUNCTION_COLUMNS,
        "functions": _function_rows(snaps),
        "groups": groups,
        "details": details,
        "left_out": left_out,
        "detail_cap": analytics.config.report_max_detail_rows,
        "bars": _time_bars(snaps, total_time),
        "bar_chart": BAR_CHART,
        "histograms": histograms,
        "hist": HIST,
        "hist_ticks": ticks,
        "timeline": _timeline(raw, analytics),
    }


def _render(analytics: Analytics, *, force_mode: bool) -> tuple[str, int]:
    script, style = _asset("report.js"), _asset("report.css")
    context = build_report(analytics, force_mode=force_mode)
    html = _environment().get_template("report.html.j2").render(
        context,
        script=Markup(script),  # noqa: S704  # our own static file, checked free of '</'
        style=Markup(style),  # noqa: S704  # our own static file, checked free of '</'
        script_hash=_csp_hash(script),
    )
    return html, context["retained"]


def render_report(analytics: Analytics, *, force_mode: bool = False) -> str:
    """Render the report of ``analytics`` to a self-contained HTML string."""
    return _render(analytics, force_mode=force_mode)[0]


def _write_atomically(target: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``target``, then rename it over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # A name may hold a lone surrogate (valid str, not UTF-8): write it as \udXXX text.
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace",
                       newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).chmod(0o644)  # mkstemp makes it private; a report is meant to be shared
        Path(temp).replace(target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def generate_reports(analytics: Analytics, *, force_mode: bool = False,
                     path: str | Path | None = None) -> Path | None:
    """Write the report of ``analytics``; return its path, or None when nothing was written.

    Logs the summary first.  Disabled analytics writes nothing; no recorded call
    gives a warning.  A failed write leaves any previous report intact and is
    logged; it raises only when ``path`` was given explicitly.

    Raises:
        OSError: when the explicitly given ``path`` cannot be written.

    """
    if not analytics.enabled:
        return None
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str, a Path or None, got {type(path).__name__}")
    if not analytics.call_counts and not analytics.raw_events():
        analytics.console_logger.warning("No analytics data; skipping report")
        return None
    analytics.log_summary()
    if path is not None:
        target = Path(path)
    else:
        name = "analytics_full.html" if force_mode else "analytics_incremental.html"
        target = Path(analytics.config.report_dir) / name
    written: Path | None = None
    html: str | None = None
    retained = 0
    try:
        html, retained = _render(analytics, force_mode=force_mode)
    except Exception as exc:  # noqa: BLE001  # a report bug must not break the caller
        report_internal_error("rendering the HTML report", exc)
    if html is not None:
        try:
            _write_atomically(target, html)
            written = target
        except OSError as exc:
            if path is not None:
                message = f"cannot write the report to {target}: {exc.strerror or exc}"
                raise (OSError(exc.errno, message) if exc.errno else OSError(message)) from exc
            report_internal_error(f"writing the HTML report to {target}", exc)
    if analytics.enable_gc_collect and retained > analytics.GC_COLLECTION_THRESHOLD:
        gc.collect()
    return written
