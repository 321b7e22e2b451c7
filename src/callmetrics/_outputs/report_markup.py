"""HTML made in Python for the report's templates where a template loop is too slow.

The functions table has a row per function and a cell per column: some ten thousand
cells, each one a handful of template lookups and escapes.  Its body is written here
instead, the same markup the template wrote (``tests/outputs/test_report_markup.py``
renders both and compares them), every value escaped as autoescaping would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from markupsafe import Markup, escape

__all__ = ["breakable", "function_table_body"]


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
