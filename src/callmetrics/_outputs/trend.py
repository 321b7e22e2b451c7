"""A small trend chart per function over the stored runs: ``callmetrics history --html``.

One self-contained HTML page (no script, no external file): per function an inline
SVG line of its median per run on a logarithmic scale, labelled with the lowest and
highest median, a dashed line where each change point starts with its size, and the
run, label and median of each point as its tooltip.  Kept apart from the report's
templates on purpose; the report can embed :func:`trend_svg` later.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from callmetrics._format import duration, printable

__all__ = ["TrendSeries", "trend_page", "trend_svg"]

_WIDTH, _HEIGHT, _PAD = 360, 72, 6


@dataclass(frozen=True, slots=True)
class TrendSeries:
    """One function's medians over the runs, oldest first, and its change points."""

    name: str
    runs: Sequence[str]
    """Each point's run, as shown in its tooltip (``run 9 (build-8)``)."""
    medians: Sequence[float]
    steps: Sequence[tuple[int, str]]
    """(index of the first run after the change, what to say of it)."""


def _text(value: str) -> str:
    return html.escape(printable(value), quote=True)


def trend_svg(series: TrendSeries) -> str:
    """The inline SVG of one series."""
    n = len(series.medians)
    logs = [math.log(max(v, 1e-12)) for v in series.medians]
    low, high = min(logs), max(logs)
    span = high - low or 1.0

    def x(i: int) -> float:
        return _PAD + (_WIDTH - 2 * _PAD) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return _HEIGHT - _PAD - (_HEIGHT - 2 * _PAD) * ((v - low) / span if high > low else 0.5)

    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(logs))
    parts = [(f'<svg class="trend" width="{_WIDTH}" height="{_HEIGHT}" '
              f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
              f'aria-label="median per run of {_text(series.name)}">'),
             f'<polyline fill="none" stroke="#3465a4" stroke-width="1.5" points="{points}"/>']
    for index, said in series.steps:
        parts.append(f'<line class="step" x1="{x(index):.1f}" x2="{x(index):.1f}" y1="0" '
                     f'y2="{_HEIGHT}" stroke="#cc0000" stroke-dasharray="3,2">'
                     f"<title>{_text(said)}</title></line>")
    for i, (run, value) in enumerate(zip(series.runs, series.medians, strict=True)):
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(logs[i]):.1f}" r="2" fill="#3465a4">'
                     f"<title>{_text(run)}: median {_text(duration(value))}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def trend_page(title: str, all_series: Sequence[TrendSeries]) -> str:
    """The whole page: one row per function, its name, range, chart and change points."""
    rows = []
    for s in all_series:
        steps = "<br>".join(_text(said) for _, said in s.steps) or "no change point"
        rows.append(f"<tr><th>{_text(s.name)}</th>"
                    f"<td>{_text(duration(min(s.medians)))} to "
                    f"{_text(duration(max(s.medians)))}</td>"
                    f"<td>{trend_svg(s)}</td><td>{steps}</td></tr>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_text(title)}</title><style>body{{font-family:sans-serif}}"
            "th{text-align:left;font-family:monospace}td,th{padding:4px 8px;"
            "vertical-align:middle}</style></head><body>"
            f"<h1>{_text(title)}</h1><p>Median per run, logarithmic scale; a dashed "
            "line marks where a change point starts.</p><table><tr><th>Function</th>"
            "<th>Median range</th><th>Trend</th><th>Change points</th></tr>"
            + "".join(rows) + "</table></body></html>\n")
