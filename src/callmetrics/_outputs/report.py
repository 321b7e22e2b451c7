"""The HTML report: one self-contained, offline file rendered with autoescaping Jinja2.

The report reads its source only through the ``Source`` interface (``_view``):
every figure comes from the exact per-function aggregates and sketches, the
failures, outliers and the timeline from the retained calls.  Charts and tables
are computed in ``_report_charts`` and ``_report_tables``: time bars are HTML,
histograms SVG, and the timeline a small canvas script (``static/timeline.js``) that
reads compact arrays from an inert JSON block.  A Content-Security-Policy allows
no request at all and only that script (by its hash) to run.  ``_notebook`` shows
the same report, and its functions table, in Jupyter.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from jinja2 import BytecodeCache, Environment, PackageLoader
from markupsafe import Markup

from callmetrics._engine.columns import ColumnReading, ColumnSource, columns_of
from callmetrics._engine.logs import report_internal_error
from callmetrics._engine.view import Source
from callmetrics._format import count, duration, percent, printable
from callmetrics._outputs.environment import RunSummary, process_environment, runs_environment
from callmetrics._outputs.report_charts import (
    HIST,
    HIST_MIN_CALLS,
    above_p99,
    calls_label,
    detail_histograms,
    histograms,
    outlier_bounds,
)
from callmetrics._outputs.report_detail import function_details
from callmetrics._outputs.report_markup import breakable, function_table_body, histogram_svg
from callmetrics._outputs.report_tables import (
    OVERHEAD_FLAG,
    describe_thresholds,
    details,
    failure_groups,
    function_columns,
    function_rows,
    outlier_rows,
    overhead_rows,
    percentiles,
    valid_calls,
    when,
)
from callmetrics._outputs.report_time import call_tree, time_chart
from callmetrics._outputs.report_timeline import sample, timeline
from callmetrics._outputs.template_cache import TemplateCache, user_cache_dir
from callmetrics._version import __version__

__all__ = ["breakable", "build_report", "environment", "generate_reports", "make_environment",
           "page_script", "read_columns", "render_report", "static_asset"]

# After a report over this many retained calls, a full garbage collection runs (the seed's
# behaviour, with ``enable_gc_collect``).
GC_COLLECTION_THRESHOLD = 5_000

# The failures section shows this many groups (the most frequent); a button shows the rest.
FAILURE_GROUPS_SHOWN = 8
# The slow-calls table shows this many rows; a button shows the rest.
DETAIL_ROWS_SHOWN = 25

_fallback_logger = logging.getLogger("callmetrics")


@runtime_checkable
class _Summarising(Protocol):
    """A source that logs its two summary lines before a report (``Analytics`` does)."""

    console_logger: logging.Logger

    def log_summary(self) -> None:
        """Log the summary lines."""


@cache
def environment() -> Environment:
    """The Jinja2 environment of the report's templates (autoescaping, shared filters).

    Their compiled code is kept between processes in the user's cache directory
    (``template_cache``): compiling them is most of the cost of a first report.
    """
    return make_environment(TemplateCache(user_cache_dir()))


def make_environment(cache: BytecodeCache | None = None) -> Environment:
    """A new environment of the report's templates, caching their code in ``cache``."""
    env = Environment(
        loader=PackageLoader("callmetrics", "templates"),
        bytecode_cache=cache,
        autoescape=True,  # every template is HTML: names, types and errors are escaped
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Compact JSON (the timeline arrays are large); |tojson still escapes <, >, & and '.
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "allow_nan": False}
    env.filters["duration"] = duration
    env.filters["num"] = count
    env.filters["breakable"] = breakable
    env.globals["function_table_body"] = function_table_body
    env.globals["histogram_svg"] = histogram_svg
    return env


@cache
def static_asset(name: str) -> str:
    """The text of ``static/<name>``, checked safe to inline in a ``<script>``/``<style>``."""
    text = resources.files("callmetrics").joinpath("static", name).read_text("utf-8")
    # The asset is inserted unescaped into a <script>/<style> element.
    if "</" in text.replace("<\\/", ""):
        raise ValueError(f"static/{name} must not contain '</'")
    return text


@cache
def page_script() -> str:
    """The report's one script: ``static/report.js`` and ``static/timeline.js`` in one scope.

    Two files to read, one strict function to run (and one hash for the CSP).
    """
    return ('(function () {\n  "use strict";\n' + static_asset("report.js")
            + static_asset("timeline.js") + "}());\n")


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


_KIND_HELP = ("Both kinds hold every call recorded so far: generate_reports(force_mode=True) "
              "writes a full report (analytics_full.html), generate_reports() an incremental "
              "one (analytics_incremental.html), so that a periodic report and a final one "
              "can sit side by side.")


def read_columns(source: Source) -> ColumnReading:
    """Read ``source``'s aggregates and retained calls as columns.

    A source that can (``Analytics``) answers without a per-call object; any other is
    read the usual way and its ``RetainedCall`` tuples turned into columns.
    """
    if isinstance(source, ColumnSource):
        return source.read_columns()
    reading = source.read()
    return ColumnReading(reading.functions, columns_of(reading.calls), reading.wall_time)


def build_report(source: Source, *, force_mode: bool = False,
                 runs: Sequence[RunSummary] | None = None,
                 reading: ColumnReading | None = None) -> dict[str, Any]:
    """Compute everything the report template shows (a plain mapping, for tests and reuse).

    ``runs``: the stored runs the source covers (``callmetrics report``), listed in the
    header in place of this process's environment.  ``reading``: what ``read_columns``
    already read of ``source`` (else it is read now).
    """
    settings = source.settings
    if reading is None:
        reading = read_columns(source)
    snaps = reading.functions
    calls, invalid = valid_calls(reading.calls)
    thresholds = settings.duration_thresholds
    short, medium = thresholds.short_max, thresholds.medium_max
    fmt, compact = settings.time_format, settings.compact_time
    total_calls = sum(s.calls for s in snaps)
    successes = sum(s.successes for s in snaps)
    total_time = math.fsum(s.total for s in snaps)
    known = percentiles(snaps)  # p50, p95, p99: read once for the tables
    bounds = outlier_bounds(snaps, known)
    cap = settings.report_max_detail_rows
    above = above_p99(calls, bounds)
    detail_rows, left_out = details(calls, above, bounds, short, medium, cap, fmt, compact)
    failed = calls.failed()
    failed_calls = calls.calls(failed)
    failures = failure_groups(failed_calls, fmt, compact)
    chart = time_chart(snaps, reading.wall_time)
    ranked = [bar.name for bar in chart.bars if bar.name]
    drawn = sample(calls, above, failed)
    timeline_data, legend = timeline(calls, drawn, above, short, medium, ranked)
    per_function = detail_histograms(snaps)
    hists = histograms(snaps, per_function)
    fn_details = function_details(snaps, calls, failed_calls, fmt, compact, known)
    names = [d["name"] for d in fn_details]
    wall = reading.wall_time
    return {
        "title": "callmetrics report",
        "version": __version__,
        "generated": when(time.time(), fmt, compact=False),
        "run_type": "full" if force_mode else "incremental",
        "run_type_help": _KIND_HELP,
        "function_count": count(len(snaps)),
        "calls": count(total_calls),
        "failures": count(total_calls - successes),
        "has_failures": total_calls > successes,
        "retained": count(len(calls)),
        "retained_count": len(calls),
        "invalid": calls_label(invalid) if invalid else "",
        "retained_failures": count(len(failed)),
        "success_rate": percent(successes, total_calls),
        "total_time": duration(total_time),
        "wall_time": duration(wall) if wall is not None and wall > 0 else "",
        "overlap": chart.overlap,
        "overlap_factor": f"{total_time / wall:.1f}" if chart.overlap and wall else "",
        "thresholds": describe_thresholds(short, medium),
        "columns": function_columns(snaps),
        "sorted_by": "Self" if chart.by_self else "Total time",
        "functions": function_rows(snaps, known),
        "failure_groups": failures[:cap],
        "failure_group_count": len(failures),
        "failure_groups_shown": FAILURE_GROUPS_SHOWN,
        "failure_groups_left_out": max(len(failures) - cap, 0),
        "outliers": outlier_rows(snaps, calls, above, fmt, compact),
        "overhead": overhead_rows(snaps),
        "overhead_flag": f"{OVERHEAD_FLAG:.0%}",
        "details": detail_rows,
        "details_shown": DETAIL_ROWS_SHOWN,
        "left_out": count(left_out) if left_out else "",
        "detail_cap": count(cap),
        "chart": chart,
        "bars": chart.bars,
        "tree": call_tree(snaps, wall),
        "histograms": hists,
        "hist_min_calls": HIST_MIN_CALLS,
        "detail_histograms": [(names.index(printable(n)), h) for n, h in per_function.items()
                              if printable(n) in names],
        "fn_details": fn_details,
        "hist": HIST,
        "legend": legend,
        "timeline": timeline_data,
        "timeline_sampled": count(len(drawn)) if len(drawn) < len(calls) else "",
        "runs": [_run_row(run, fmt) for run in runs] if runs is not None else None,
        "environment": runs_environment(runs) if runs is not None
        else list(process_environment().items()),
    }


def _run_row(run: RunSummary, fmt: str) -> dict[str, str]:
    return {"id": str(run.id), "label": printable(run.label or "-"),
            "host": printable(run.host), "program": printable(run.program),
            "start": when(run.started, fmt, compact=False),
            "wall": duration(max(run.ended - run.started, 0.0)), "calls": count(run.calls),
            "python": _recorded(run, "python"), "hot_path": _recorded(run, "hot_path")}


def _recorded(run: RunSummary, key: str) -> str:
    """One value of a run's recorded environment: ``unknown`` for a run that has none."""
    if run.environment is None:
        return "unknown"
    return printable(run.environment.get(key) or "-")


def _render(source: Source, *, force_mode: bool, runs: Sequence[RunSummary] | None = None,
            reading: ColumnReading | None = None) -> tuple[str, int]:
    script = page_script()
    style = static_asset("table.css") + static_asset("report.css")
    context = build_report(source, force_mode=force_mode, runs=runs, reading=reading)
    html = environment().get_template("report.html.j2").render(
        context,
        script=Markup(script),  # noqa: S704  # our own static file, checked free of '</'
        style=Markup(style),  # noqa: S704  # our own static file, checked free of '</'
        script_hash=_csp_hash(script),
    )
    return html, context["retained_count"]


def render_report(source: Source, *, force_mode: bool = False,
                  runs: Sequence[RunSummary] | None = None) -> str:
    """Render the report of ``source`` to a self-contained HTML string.

    ``runs``: the stored runs it covers, as for ``build_report``.
    """
    return _render(source, force_mode=force_mode, runs=runs)[0]


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


def generate_reports(source: Source, *, force_mode: bool = False,
                     path: str | Path | None = None,
                     runs: Sequence[RunSummary] | None = None) -> Path | None:
    """Write the report of ``source``; return its path, or None when nothing was written.

    Logs the summary first (when the source can).  Disabled settings write nothing;
    no recorded call gives a warning.  A failed write leaves any previous report
    intact and is logged; it raises only when ``path`` was given explicitly.

    Raises:
        OSError: when the explicitly given ``path`` cannot be written.

    """
    settings = source.settings
    if not settings.enabled:
        return None
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str, a Path or None, got {type(path).__name__}")
    summarising = source if isinstance(source, _Summarising) else None
    logger = summarising.console_logger if summarising else _fallback_logger
    try:  # read once: what is checked for calls is what the report shows
        reading = read_columns(source)
    except Exception as exc:  # noqa: BLE001  # a report bug must not break the caller
        report_internal_error("reading the calls for the HTML report", exc)
        return None
    if not reading.functions and not len(reading.calls):
        logger.warning("No analytics data; skipping report")
        return None
    if summarising:
        summarising.log_summary()
    if path is not None:
        target = Path(path)
    else:
        name = "analytics_full.html" if force_mode else "analytics_incremental.html"
        target = Path(settings.report_dir) / name
    written: Path | None = None
    html: str | None = None
    retained = 0
    try:
        html, retained = _render(source, force_mode=force_mode, runs=runs, reading=reading)
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
    if settings.enable_gc_collect and retained > GC_COLLECTION_THRESHOLD:
        gc.collect()
    return written
