"""Natural order of function names: ``fn_2`` before ``fn_10``, case ignored."""

from __future__ import annotations

import re

__all__ = ["natural_key"]

_PARTS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that orders the digit runs of ``name`` by value: ``fn_2`` < ``fn_10``."""
    return tuple((1, int(part)) if part.isdecimal() else (0, part.lower())
                 for part in _PARTS.split(name) if part)
