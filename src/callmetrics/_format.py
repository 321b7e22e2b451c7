"""One formatter for every output: durations, percentages, counts and safe text.

The terminal summary, the CLI, the HTML report and log lines all format through
these functions, so a value reads the same everywhere (``µs``, never ``us``; the
same significant digits; a success rate never rounded to 100 % or 0 % unless it
is exact).  ``printable`` neutralises control characters before anything that
came from user code or from disk reaches a terminal or a page.
"""

from __future__ import annotations

import math
import unicodedata

__all__ = ["count", "duration", "percent", "printable", "ratio"]

_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def duration(seconds: float | None) -> str:
    """Format seconds with three significant digits: ``812 ns``, ``12.3 µs``, ``4.56 ms``.

    Durations of a minute or more read ``2m 03s`` and ``1h 05m``; None and
    non-finite values read ``-``.
    """
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds <= 0:
        return "0 s"
    if seconds >= 3600:
        hours, rest = divmod(round(seconds), 3600)
        return f"{hours}h {rest // 60:02d}m"
    if seconds >= 60:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes}m {rest:02d}s"
    # Pick the unit from the value as it will be shown: 999.96 µs reads 1.00 ms.
    for scale, unit in _UNITS:
        if seconds >= scale * 0.9995 or unit == "ns":
            value = seconds / scale
            digits = 0 if value >= 99.95 else 1 if value >= 9.995 else 2
            return f"{value:.{digits}f} {unit}"
    return "0 s"  # pragma: no cover  # the ns unit always matches


def percent(part: float, whole: float, digits: int = 1) -> str:
    """Format ``part / whole`` as a percentage, never rounding to 100 % or 0 % unless exact.

    ``percent(1999, 2000)`` is ``99.9%`` (not ``100.0%``) and ``percent(1, 10**6)`` is
    ``0.1%`` (not ``0.0%``); ``whole == 0`` reads ``-``.
    """
    if whole <= 0:
        return "-"
    if part >= whole:
        return f"{100:.{digits}f}%"
    if part <= 0:
        return f"{0:.{digits}f}%"
    value = part / whole * 100
    step = 10.0 ** -digits
    shown = round(value, digits)
    if shown >= 100:
        shown = 100 - step
    elif shown <= 0:
        shown = step
    return f"{shown:.{digits}f}%"


def ratio(value: float | None) -> str:
    """Format a ratio of two durations: ``1.43`` and a multiplication sign; ``-`` for None/inf."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2f}\u00d7"  # the multiplication sign, written so that ruff accepts it


def count(value: int) -> str:
    """Format a count with thousands separators: ``12,345``."""
    return f"{value:,}"


# Characters that change what a terminal shows or how text is ordered: C0/C1
# controls (ESC, BEL, NUL...), and Unicode format characters such as the bidi
# overrides (U+202E) and zero-width joiners.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def printable(text: str) -> str:
    r"""Return ``text`` with every control or format character shown as an escape.

    ``"\x1b[2J"`` becomes ``"\\x1b[2J"`` and U+202E becomes ``"\\u202e"``: visible,
    never obeyed; a newline, tab or carriage return reads ``\\n``, ``\\t``, ``\\r``.
    Ordinary text, including non-ASCII letters, is unchanged.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == " " or (ch.isprintable() and unicodedata.category(ch) not in _UNSAFE_CATEGORIES):
            out.append(ch)
        elif ch in _SHORT:
            out.append(_SHORT[ch])
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)
