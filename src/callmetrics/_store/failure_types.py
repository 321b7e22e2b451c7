"""Reading ``functions.failure_types`` (schema version 4): failures by exception type.

The column holds JSON ``{"type name": count, ...}`` whose counts add up to the row's
failures exactly; NULL in rows written before version 4, whose types are unknown (the
snapshot then leaves them unrecorded, shown as ``"(unknown)"``, never as zero).
"""

from __future__ import annotations

import json
from typing import Final

__all__ = ["MAX_TYPES", "parse_failure_types"]

# Entries one row may hold: the writer keeps at most 20 names per function, plus
# "(other)" and "(unknown)"; far more means the value is not one callmetrics wrote.
MAX_TYPES: Final = 1_000
_MAX_NAME: Final = 100_000


def parse_failure_types(value: object, failures: int) -> dict[str, int] | None:
    """Return the stored failures by type (None: NULL, unknown).

    Raises:
        TypeError, ValueError: naming the rule ``value`` breaks (not JSON text, not an
            object of non-empty names to counts, or counts not adding up to ``failures``).

    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("must be JSON text or NULL")
    try:
        data = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or len(data) > MAX_TYPES:
        raise ValueError(f"must be a JSON object of at most {MAX_TYPES} entries")
    counts: dict[str, int] = {}
    for name, count in data.items():
        if not name or len(name) > _MAX_NAME:
            raise ValueError(f"names must be non-empty text of at most {_MAX_NAME} characters")
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= failures:
            raise ValueError(f"counts must be integers from 0 to failures = {failures}")
        counts[name] = count
    if sum(counts.values()) != failures:
        raise ValueError(f"counts must add up to failures = {failures}")
    return counts
