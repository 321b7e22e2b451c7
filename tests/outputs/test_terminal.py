"""The table engine lays out its lines itself: exactly as Rich's table draws them."""

from __future__ import annotations

import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from callmetrics._outputs.terminal import Column, _rich_table, fit_columns, print_table

COLUMNS = [Column("Note"), Column("Function", shrink=12), Column("Calls", right=True, priority=2),
           Column("Self", right=True, priority=1), Column("Raised at", priority=3, shrink=16)]
WORD = st.text(st.sampled_from("ab_.é漢 "), min_size=0, max_size=30)
ROW = st.tuples(WORD, WORD, WORD, WORD, WORD).map(list)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def rich_lines(rows: list[list[str]], width: int | None, *, terminal: bool) -> str:
    """What Rich's own table prints for the same columns and widths (the oracle)."""
    shown, widths = fit_columns(COLUMNS, rows, width)
    natural = sum(widths) + 3 * (len(widths) - 1)
    out = io.StringIO()
    Console(file=out, width=width or max(natural, 1), force_terminal=terminal,
            color_system="standard" if terminal else None).print(
        _rich_table(COLUMNS, rows, shown, widths, ["red"] * len(rows)), highlight=False)
    return ANSI.sub("", out.getvalue())


def ours(rows: list[list[str]], width: int | None, *, terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width or 80, force_terminal=terminal,
                      color_system="standard" if terminal else None)
    print_table(console, COLUMNS, rows, styles=["red"] * len(rows))
    return ANSI.sub("", out.getvalue())


@settings(max_examples=150, deadline=None)
@given(st.lists(ROW, max_size=8), st.sampled_from([None, 200, 90, 60]))
def test_lines_are_rich_tables_letter_for_letter(rows: list[list[str]], width: int | None) -> None:
    """To a file or a terminal wide enough, the same characters as Rich's table."""
    _, widths = fit_columns(COLUMNS, rows, width)
    if width is not None and sum(widths) + 3 * (len(widths) - 1) > width:
        return  # too narrow even for the kept columns: Rich's own table draws it
    terminal = width is not None
    assert ours(rows, width, terminal=terminal) == rich_lines(rows, width, terminal=terminal)


def test_a_terminal_shows_each_row_in_its_colour() -> None:
    """Rows keep their style on a terminal (the Note column says the same in words)."""
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system="standard")
    print_table(console, COLUMNS, [["FAIL", "f", "1", "2", "x"], ["", "g", "3", "4", "y"]],
                styles=["red", None])
    lines = out.getvalue().splitlines()
    assert "\x1b[31mFAIL" in lines[2]
    assert "\x1b[31m" not in lines[3]
    assert lines[0].startswith("\x1b[1mNote")  # the header in bold


def test_six_hundred_rows_to_a_file_are_whole_lines() -> None:
    """A run's summary of hundreds of functions: one line each, nothing cut or folded."""
    rows = [["", f"pkg.module.Class.method_{i}" * 3, f"{i:,}", "1 ms", ""] for i in range(600)]
    out = io.StringIO()
    print_table(Console(file=out, width=80), COLUMNS, rows)
    lines = out.getvalue().splitlines()
    assert len(lines) == 602
    assert len({len(line) for line in lines}) == 1  # as wide as the table, each one
    assert all(row[1] in line for row, line in zip(rows, lines[2:], strict=True))
