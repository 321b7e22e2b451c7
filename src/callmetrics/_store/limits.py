"""Sane ranges for stored values: anything outside is damage, not data."""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_COUNT", "MAX_DURATION", "MAX_PID", "MAX_RUN_ID", "MAX_TEXT", "MAX_TIME"]

MAX_COUNT: Final = 2 ** 53  # calls of one function: exact as a float, far past any run
MAX_TIME: Final = 1e11  # Unix time (the year 5138): every datetime formats it
MAX_DURATION: Final = 1e9  # seconds of one call (31 years)
MAX_RUN_ID: Final = 2 ** 63 - 1  # SQLite's INTEGER
MAX_PID: Final = 2 ** 32
MAX_TEXT: Final = 100_000  # characters of a name, label, message...
