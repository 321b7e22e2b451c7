"""Failures counted by exception type: the names, the per-function cap, the folding.

A failed call is counted under its exception's qualified type name
(:func:`type_name`: ``ValueError`` for a built-in, ``json.decoder.JSONDecodeError``,
``app.errors.NotFound``).  Each function keeps at most ``TYPES_LIMIT`` names;
failures of further types are counted together under ``OTHER_TYPES``, so that the
counts by type always add up to the function's failures exactly.  Failures whose
type was never recorded (a store written before schema version 4) are counted under
``UNKNOWN_TYPE``: unknown, never zero.

Counting happens where calls are folded (``Recorder._fold``, under its lock), never
on a call's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["OTHER_TYPES", "TYPES_LIMIT", "UNKNOWN_TYPE", "add_counts", "type_name"]

# Distinct exception types counted per function before the rest are folded together.
TYPES_LIMIT: Final = 20
# The entry that folds the failures of types past the cap.
OTHER_TYPES: Final = "(other)"
# The entry of failures whose type was not recorded (stores before schema version 4).
UNKNOWN_TYPE: Final = "(unknown)"


def type_name(error: object) -> str:
    """Return the qualified name of an exception class (a str is returned as it is).

    ``builtins`` is left out (``ValueError``); a class whose ``__module__`` is not a
    str is named by its ``__qualname__`` alone; anything else odd falls back to
    ``__name__``, then to ``type(error).__name__``: this never raises.
    """
    if isinstance(error, str):
        return error
    try:
        qualname = getattr(error, "__qualname__", None)
        module = getattr(error, "__module__", None)
        if not isinstance(qualname, str):
            name = getattr(error, "__name__", None)
            return name if isinstance(name, str) else type(error).__name__
    except Exception:  # noqa: BLE001  # a broken class attribute must not break a drain
        return type(error).__name__
    if not isinstance(module, str) or module == "builtins":
        return qualname
    return f"{module}.{qualname}"


def add_counts(counts: dict[str, int], more: Mapping[str, int]) -> None:
    """Add ``more`` to ``counts`` in place, keeping at most ``TYPES_LIMIT`` names.

    Names already counted keep their entry; new ones take free room in the order
    given; the rest go to ``OTHER_TYPES`` (which does not take room of its own).
    Totals stay exact.
    """
    for name, count in more.items():
        if not count:
            continue
        if name in counts:
            counts[name] += count
        elif name != OTHER_TYPES and len(counts) - (OTHER_TYPES in counts) < TYPES_LIMIT:
            counts[name] = count
        else:
            counts[OTHER_TYPES] = counts.get(OTHER_TYPES, 0) + count
