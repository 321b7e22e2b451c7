"""Jupyter display: the summary table as an HTML fragment, and the full report inline.

``summary_html`` is what ``Analytics._repr_html_`` shows: the report's functions
table with its styles scoped under ``.cm`` (nothing leaks into the notebook), no
script needed.  ``report_html`` puts the whole report in an ``<iframe srcdoc>``:
the report keeps its own Content-Security-Policy, styles and script inside the
frame, and the notebook's page is untouched.  Both read only through ``Source``.
"""

from __future__ import annotations

import re
from html import escape, unescape
from pathlib import Path

from markupsafe import Markup

from callmetrics._engine.view import Source
from callmetrics._outputs.report import build_report, environment, render_report, static_asset
from callmetrics._outputs.report_tables import CPU_COLUMN

__all__ = ["InlineReport", "report_html", "summary_html"]

# The terminal summary's columns, so that the table fits a notebook cell.
SUMMARY_COLUMNS = ("Function", "Event type", "Calls", "Failures", "Success %", "Self",
                   "Total time", CPU_COLUMN, "p50", "p95", "p99", "Max")
# The frame is as tall as a typical report's first sections; it scrolls inside.
_FRAME_HEIGHT = 900


def summary_html(source: Source) -> str:
    """Return the summary (headline figures and functions table) as self-contained HTML."""
    context = build_report(source)
    return environment().get_template("summary.html.j2").render(
        context,
        summary_order=[context["columns"].index(name) for name in SUMMARY_COLUMNS
                       if name in context["columns"]],
        sorted_by=context["sorted_by"],
        style=Markup(static_asset("table.css")),  # noqa: S704  # our own file, free of '</'
    )


def report_html(source: Source, *, height: int = _FRAME_HEIGHT) -> str:
    """Return the full report in an ``<iframe srcdoc>``, ready to display inline.

    The frame is sandboxed: its script may run (charts, sorting) but it has no
    access to the notebook's page, and its policy forbids every request.
    """
    return _frame(render_report(source, force_mode=True), height)


# What ``_frame`` writes, to read the document back from it.
_SRCDOC = re.compile(r'<iframe class="callmetrics-report" [^>]*srcdoc="([^"]*)"></iframe>')


def _frame(document: str, height: int) -> str:
    if isinstance(height, bool) or not isinstance(height, int) or height <= 0:
        raise ValueError(f"height must be a positive int (pixels), got {height!r}")
    return (f'<iframe class="callmetrics-report" title="callmetrics report" '
            f'sandbox="allow-scripts" style="width: 100%; height: {height}px; border: 0" '
            f'srcdoc="{escape(document, quote=True)}"></iframe>')


class InlineReport:
    """The full report of a source, shown inline by Jupyter (``_repr_html_``).

    ``html`` holds the standalone document (what ``generate_reports`` writes);
    :meth:`save` writes it to a file.  Given a string instead of a source, it shows
    that string: the frame ``report_html`` returned, or a standalone document.
    """

    def __init__(self, source: Source | str, *, height: int = _FRAME_HEIGHT) -> None:
        """Render the report of ``source`` now (later calls do not change it)."""
        if isinstance(source, str):
            found = _SRCDOC.fullmatch(source)
            self.html = unescape(found.group(1)) if found else source
            self._frame = source if found else _frame(source, height)
        else:
            self.html = render_report(source, force_mode=True)
            self._frame = _frame(self.html, height)

    def _repr_html_(self) -> str:
        return self._frame

    def save(self, path: str | Path) -> Path:
        """Write the standalone report to ``path`` (UTF-8) and return the path."""
        target = Path(path)
        target.write_text(self.html, encoding="utf-8", errors="backslashreplace", newline="\n")
        return target

    def __repr__(self) -> str:
        return f"<InlineReport: {len(self.html):,} characters of HTML>"
