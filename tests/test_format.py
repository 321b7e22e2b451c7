"""The one formatter: durations, percentages, ratios, counts and printable text."""

from __future__ import annotations

import math
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callmetrics._format import count, duration, percent, printable, ratio


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (math.nan, "-"), (math.inf, "-"), (0.0, "0 s"), (-1.0, "0 s"),
    (4.2e-7, "420 ns"), (1e-9, "1.00 ns"), (1.234e-5, "12.3 µs"), (0.004567, "4.57 ms"),
    (1.5, "1.50 s"), (123, "2m 03s"), (7380, "2h 03m"),
    (999.96e-6, "1.00 ms"), (0.99996, "1.00 s"), (99.96e-6, "100 µs"),
])
def test_duration_examples(seconds: float | None, text: str) -> None:
    """Durations read with three significant digits in the unit they round into."""
    assert duration(seconds) == text


@given(st.floats(min_value=1e-9, max_value=59.0))
def test_duration_has_three_significant_digits_and_a_real_unit(seconds: float) -> None:
    """Below a minute every duration is three significant digits, µs never spelled us."""
    text = duration(seconds)
    match = re.fullmatch(r"(\d+(?:\.\d+)?) (ns|µs|ms|s)", text)
    assert match, text
    digits = match[1].replace(".", "").lstrip("0")
    assert len(digits) == 3 or match[1].startswith("0") or seconds < 1e-8, text
    value = float(match[1]) * {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}[match[2]]
    assert value == pytest.approx(seconds, rel=0.006)


@pytest.mark.parametrize(("part", "whole", "text"), [
    (1999, 2000, "99.9%"), (1, 10**6, "0.1%"), (2000, 2000, "100.0%"), (0, 5, "0.0%"),
    (3, 4, "75.0%"), (1, 0, "-"), (19_999, 20_000, "99.9%"),
])
def test_percent_examples(part: int, whole: int, text: str) -> None:
    """Success rates never round to 100 % or 0 % unless exact."""
    assert percent(part, whole) == text


@given(st.integers(min_value=1, max_value=10**9), st.data())
def test_percent_is_100_or_0_only_when_exact(whole: int, data: st.DataObject) -> None:
    """For any counts, 100.0% means all and 0.0% means none."""
    part = data.draw(st.integers(min_value=0, max_value=whole))
    text = percent(part, whole)
    assert (text == "100.0%") == (part == whole)
    assert (text == "0.0%") == (part == 0)


def test_ratio_and_count() -> None:
    """Ratios read 1.43 and the multiplication sign; counts carry thousands separators."""
    assert ratio(1.4321) == "1.43\u00d7"
    assert ratio(None) == "-"
    assert ratio(math.inf) == "-"
    assert count(1234567) == "1,234,567"


@pytest.mark.parametrize(("text", "shown"), [
    ("\x1b[2J", "\\x1b[2J"), ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
    ("a\u202eb", "a\\u202eb"), ("nul\x00", "nul\\x00"),
    ("line\nnext\ttab\r", "line\\nnext\\ttab\\r"),
    ("\x9b31m", "\\x9b31m"), ("zero\u200bwidth", "zero\\u200bwidth"),
    ("café 東京 ünïcode", "café 東京 ünïcode"), ("emoji \U0001f600", "emoji \U0001f600"),
    ("\ud800", "\\ud800"),
])
def test_printable_examples(text: str, shown: str) -> None:
    """Controls, bidi and format characters become visible escapes; letters stay."""
    assert printable(text) == shown


@given(st.text())
def test_printable_leaves_nothing_a_terminal_would_obey(text: str) -> None:
    """No control, format, surrogate or line-separator character survives."""
    shown = printable(text)
    for ch in shown:
        assert ch == " " or unicodedata.category(ch) not in {
            "Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"}
    if text.isprintable():
        assert shown == text
