"""The one terminal table engine: every table callmetrics prints goes through :func:`print_table`.

A table fits the console's width: long names and paths lose their middle
(``checkout.…ce.charge``), then columns give way in the order of their
``priority`` (the name, calls, self/total and p95 stay longest), and never does a
cell wrap inside an identifier.  Colour only ever repeats what a text column says
(a ``Note`` column reads ``FAIL`` or ``slow``), so ``NO_COLOR`` loses nothing.
Written to a file or a pipe, a table is as wide as its content: nothing is cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.table import Table
from rich.text import Text

from callmetrics._format import printable

__all__ = ["Column", "fit_columns", "middle_ellipsis", "print_table"]

# Columns are separated by three cells (padding, the box's blank divider, padding).
_GAP = 3
# A name cut to this many cells still reads; below it, columns give way first.
_COMFORTABLE = 24


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a terminal table."""

    header: str
    right: bool = False
    """Right-aligned (numbers)."""
    priority: int = 0
    """0: never dropped; otherwise the highest number is dropped first on a narrow console."""
    shrink: int = 0
    """When above 0, the column may be cut (middle ellipsis) down to this many cells."""


def middle_ellipsis(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells by removing its middle: ``api.serv…ch_user``."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return set_cell_size(text, width)
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    left = set_cell_size(text, head)
    right = text[::-1]
    right = set_cell_size(right, tail)[::-1] if tail else ""
    return f"{left}\u2026{right}"


def fit_columns(columns: Sequence[Column], rows: Sequence[Sequence[str]],
                width: int | None) -> tuple[list[int], list[int]]:
    """Which columns to show (indices) and each shown column's width, to fit ``width`` cells.

    First the shrinkable columns give up their surplus down to their ``shrink``
    width, then columns are dropped by ``priority``; ``width`` None fits everything.
    """
    natural = [max([cell_len(c.header)] + [cell_len(row[i]) for row in rows])
               for i, c in enumerate(columns)]
    shown = list(range(len(columns)))
    widths = dict(enumerate(natural))
    if width is None:
        return shown, natural

    def total() -> int:
        return sum(widths[i] for i in shown) + _GAP * (len(shown) - 1)

    def shrink(comfortable: bool) -> None:
        for i in sorted(shown, key=lambda i: -widths[i]):
            c = columns[i]
            over = total() - width
            if over <= 0:
                return
            if c.shrink:
                floor = max(c.shrink, cell_len(c.header))
                if comfortable:
                    floor = max(floor, _COMFORTABLE)
                widths[i] = max(widths[i] - over, min(floor, natural[i]))

    # Long names give up their surplus first, then columns go by priority, and only then
    # are names cut further, down to their floor.
    shrink(comfortable=True)
    droppable = sorted((i for i in shown if columns[i].priority),
                       key=lambda i: -columns[i].priority)
    for i in droppable:
        if total() <= width:
            break
        shown.remove(i)
        for j in shown:  # room given back: the cut columns widen again
            widths[j] = natural[j]
        shrink(comfortable=True)
    shrink(comfortable=False)
    return shown, [widths[i] for i in shown]


def _laid_out(columns: Sequence[Column], rows: Sequence[Sequence[str]], shown: Sequence[int],
              widths: Sequence[int]) -> list[list[str]]:
    """The header and each row as cells padded to their column's width (cut in the middle)."""
    laid = []
    for row in ([c.header for c in columns], *rows):
        cells = []
        for i, w in zip(shown, widths, strict=True):
            text = middle_ellipsis(row[i], w)
            if columns[i].right:  # as Rich justifies: trailing blanks go first
                text = text.rstrip()
            pad = " " * (w - cell_len(text))
            cells.append(pad + text if columns[i].right else text + pad)
        laid.append(cells)
    return laid


def print_table(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]], *,
                title: str | None = None, caption: str | None = None,
                styles: Sequence[str | None] | None = None) -> None:
    """Print ``rows`` (texts, already formatted) as a table that fits ``console``.

    ``title`` is printed above it, ``caption`` below (wrapped by words on a terminal).
    ``styles`` gives each row a Rich style (colour), shown on a terminal only.
    Every cell is made ``printable`` first.

    The lines are laid out here (Rich's table, with its measuring and wrapping, took
    half a second for a run's 600 functions) as Rich's simple-head table draws them:
    columns three cells apart, a rule under the header, every line as wide as the
    table.  A terminal too narrow for even the columns kept is left to Rich's table.
    """
    cells = [[printable(cell) for cell in row] for row in rows]
    terminal = console.is_terminal
    shown, widths = fit_columns(columns, cells, console.width if terminal else None)
    natural = sum(widths) + _GAP * (len(widths) - 1)
    if title:
        console.print(Text(printable(title), style="bold" if terminal else ""),
                      soft_wrap=not terminal, highlight=False)
    if terminal and natural > console.width:
        console.print(_rich_table(columns, cells, shown, widths, styles), highlight=False)
    elif terminal:
        header, *laid = _laid_out(columns, cells, shown, widths)
        text = Text(no_wrap=True, overflow="ignore")
        for line, style in ((header, "bold"), *zip(laid, styles or [None] * len(laid),
                                                    strict=True)):
            for k, cell in enumerate(line):
                if k:
                    text.append(" " * _GAP)
                text.append(cell, style)
            text.append("\n")
            if style == "bold":
                text.append("\u2500" * natural + "\n")
        text.right_crop(1)
        console.print(text, highlight=False, crop=False)
    else:  # a file or a pipe: as wide as the content, never folded at 80 columns
        gap = " " * _GAP
        header, *laid = _laid_out(columns, cells, shown, widths)
        lines = [gap.join(header), "\u2500" * natural, *(gap.join(line) for line in laid)]
        console.file.write("\n".join(lines) + "\n")
    if caption:  # words wrap on a terminal; a pipe gets one line
        console.print(Text(printable(caption)), soft_wrap=not terminal, highlight=False)


def _rich_table(columns: Sequence[Column], cells: Sequence[Sequence[str]], shown: Sequence[int],
                widths: Sequence[int], styles: Sequence[str | None] | None) -> Table:
    """The same table as Rich draws it, squeezed further to the console's width."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False,
                  header_style="bold")
    for i, w in zip(shown, widths, strict=True):
        c = columns[i]
        table.add_column(c.header, justify="right" if c.right else "left", no_wrap=True,
                         min_width=w, max_width=w, overflow="ellipsis")
    for r, row in enumerate(cells):
        table.add_row(*(Text(middle_ellipsis(row[i], w)) for i, w in zip(shown, widths,
                                                                          strict=True)),
                      style=styles[r] if styles else None)
    return table
