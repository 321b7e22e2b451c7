"""HTML made in Python for the report's templates where a template loop is too slow.

The functions table has a row per function and a cell per column: some ten thousand
cells, each one a handful of template lookups and escapes.  Its body is written here
instead, the same markup the template wrote (``tests/outputs/test_report_markup.py``
renders both and compares them), every value escaped as autoescaping would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

__all__ = ["breakable", "function_table_body", "histogram_svg"]


def breakable(text: str) -> Markup:
    """Escape ``text`` and let a long dotted name or path wrap after ``.`` and ``/``."""
    escaped = str(escape(text)).replace(".", ".<wbr>").replace("/", "/<wbr>")
    return Markup(escaped)  # noqa: S704  # escaped first: only our <wbr> tags are markup


def _text(value: Any) -> str:
    """``value`` as ``{{ value }}`` writes it in an autoescaping template."""
    kind = type(value)
    if kind is int or kind is float:  # digits, '.', '-', 'e', 'inf', 'nan': nothing to escape
        return str(value)
    return str(escape(value))


def function_table_body(functions: Iterable[Sequence[Any]], order: Iterable[int],
                        sortable: bool) -> Markup:
    """The ``<tr>`` rows of the functions table (``_functions.html.j2``), one per line.

    ``functions``: rows of cells (``text``, ``sort``); ``order``: the columns shown,
    as indices into each row; ``sortable``: the report's table (names open details).
    """
    order = list(order)
    lines = []
    for row in functions:
        parts = [f'    <tr data-fn="{_text(row[0].text)}">']
        for i in order:
            cell = row[i]
            sort = _text(cell.sort)
            if i >= 2:
                failed = " failed" if i == 4 and cell.sort else ""
                parts.append(f'<td class="num{failed}" data-v="{sort}">{_text(cell.text)}</td>')
            elif i == 0:
                name = breakable(cell.text)
                if sortable:
                    parts.append(f'<td data-v="{sort}"><button type="button" class="fn-open" '
                                 f'data-open="{_text(cell.text)}">{name}</button></td>')
                else:
                    parts.append(f'<td data-v="{sort}">{name}</td>')
            else:
                parts.append(f'<td data-v="{sort}">{_text(cell.text)}</td>')
        parts.append("</tr>\n")
        lines.append("".join(parts))
    return Markup("".join(lines))  # noqa: S704  # every value escaped above


def _f1(value: float) -> str:
    """``'%.1f'|format(value)``: one decimal."""
    return "%.1f" % value  # noqa: UP031  # exactly the template filter's formatting


def histogram_svg(h: Any, hist: Mapping[str, int]) -> Markup:
    """One latency histogram's ``<svg>`` (``Histogram`` ``h`` on the ``HIST`` frame ``hist``).

    What the report template's histogram macro wrote, line for line.
    """
    left, top, width, height = hist["left"], hist["top"], hist["width"], hist["height"]
    right = width - hist["right"]
    base = height - hist["bottom"]
    out = [(f'      <svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Latency distribution of {_text(h.name)}">\n')]
    out.extend(f'        <line class="grid" x1="{left}" x2="{right}" y1="{_f1(t.at)}" '
               f'y2="{_f1(t.at)}"></line>\n'
               f'        <text class="ticklabel" x="{left - 4}" y="{_f1(t.at + 3.5)}" '
               f'text-anchor="end">{_text(t.label)}</text>\n' for t in h.y_ticks)
    out.append(f'        <text class="axislabel" transform="translate(11 {(top + base) / 2}) '
               f'rotate(-90)" text-anchor="middle">calls</text>\n')
    out.extend(f'        <rect class="bin" x="{_f1(bar.x)}" y="{_f1(bar.y)}" '
               f'width="{_f1(bar.width)}" height="{_f1(bar.height)}" '
               f'data-tip="{_text(bar.tip)}"></rect>\n' for bar in h.bins)
    if h.overflow:
        bar, label = h.overflow, h.overflow_label
        out.append(f'        <rect class="bin overflow" x="{_f1(bar.x)}" y="{_f1(bar.y)}" '
                   f'width="{_f1(bar.width)}" height="{_f1(bar.height)}" '
                   f'data-tip="{_text(bar.tip)}"></rect>\n'
                   f'        <text class="ticklabel" x="{_f1(label.at)}" y="{base + 15}" '
                   f'text-anchor="middle">{_text(label.label)}</text>\n')
    out.append(f'        <line class="axis" x1="{left}" x2="{right}" y1="{base}" '
               f'y2="{base}"></line>\n')
    out.extend(f'        <line class="axis" x1="{_f1(t.at)}" x2="{_f1(t.at)}" y1="{base}" '
               f'y2="{base + 4}"></line>\n'
               f'        <text class="ticklabel" x="{_f1(t.at)}" y="{base + 15}" '
               f'text-anchor="{_text(t.anchor)}">{_text(t.label)}</text>\n' for t in h.x_ticks)
    out.extend(f'        <line class="marker {_text(m.label)}" x1="{_f1(m.x)}" x2="{_f1(m.x)}" '
               f'y1="{top - 9}" y2="{base}" data-tip="{_text(m.tip)}"></line>\n'
               for m in h.markers)
    out.extend(f'        <text class="marker {_text(lab.kind)}" x="{_f1(lab.x)}" '
               f'y="{top - 11 - lab.row * 14}" text-anchor="{_text(lab.anchor)}">'
               f'{_text(lab.text)}</text>\n' for lab in h.labels)
    out.append("      </svg>\n")
    return Markup("".join(out))  # noqa: S704  # every value escaped above
