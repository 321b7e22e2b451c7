"""The retained calls as columns: what a report over a million calls reads.

A ``RetainedCall`` per call costs a tuple (and, before it, the ring's own tuple) for
every retained call, most of a large report's time.  ``CallColumns`` holds the same
calls as one ``array('d')`` of starts, one of durations and one ``array('l')`` of
function indices, plus the few calls that carry more (a failure's type, message and
location, a success's note) in a mapping by position.  Outputs work on it with
C-speed passes (``map``, ``compress``, ``sorted`` with an array's ``__getitem__``)
and build a ``RetainedCall`` only for the calls they show.

``columns_of`` builds the same columns from ``RetainedCall`` tuples (a ``Source``
that has no columnar read); ``CallColumns.call`` turns one position back into a
``RetainedCall``.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress, islice
from operator import le
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from callmetrics._engine.view import RetainedCall, Source

if TYPE_CHECKING:
    from callmetrics._engine.state import FunctionSnapshot

__all__ = ["CallColumns", "ColumnReading", "ColumnSource", "Detail", "columns_of", "is_sorted"]

# What a call carries beyond its function, start and duration: (error, message, location).
Detail = tuple[str | None, str | None, str | None]


@dataclass(slots=True)
class CallColumns:
    """Retained calls as parallel columns; ``len()`` calls.

    Call ``i`` is function ``names[functions[i]]`` (event type ``types[functions[i]]``),
    started at ``starts[i]`` (Unix time) and took ``durations[i]`` seconds; ``details``
    holds ``(error, message, location)`` of each call that failed or carries a note.
    One index per recorded name.
    """

    names: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    functions: array[int] = field(default_factory=lambda: array("l"))
    starts: array[float] = field(default_factory=lambda: array("d"))
    durations: array[float] = field(default_factory=lambda: array("d"))
    details: dict[int, Detail] = field(default_factory=dict)

    def __len__(self) -> int:
        """Return how many calls the columns hold."""
        return len(self.starts)

    def call(self, i: int) -> RetainedCall:
        """Return call ``i`` as a ``RetainedCall``."""
        f = self.functions[i]
        error, message, location = self.details.get(i, (None, None, None))
        return RetainedCall(self.starts[i], self.durations[i], self.names[f], self.types[f],
                            error, message, location)

    def calls(self, positions: Sequence[int] | None = None) -> list[RetainedCall]:
        """Return the calls at ``positions`` (None: all, the slow way) as ``RetainedCall``."""
        chosen = range(len(self)) if positions is None else positions
        return [self.call(i) for i in chosen]

    def failed(self) -> list[int]:
        """Positions of the calls that failed, in order."""
        return sorted(i for i, detail in self.details.items() if detail[0] is not None)

    def take(self, order: Sequence[int]) -> CallColumns:
        """The calls at positions ``order`` (in that order), as new columns."""
        details = self.details
        moved = {new: details[old] for new, old in compress(enumerate(order),
                                                            map(details.__contains__, order))}
        return CallColumns(
            self.names, self.types, array("l", map(self.functions.__getitem__, order)),
            array("d", map(self.starts.__getitem__, order)),
            array("d", map(self.durations.__getitem__, order)), moved)


def is_sorted(values: Sequence[float]) -> bool:
    """Whether ``values`` never decrease (one C-speed pass)."""
    return all(map(le, values, islice(values, 1, None)))


@dataclass(frozen=True, slots=True)
class ColumnReading:
    """Aggregates and retained calls (as columns) read together, so that they agree."""

    functions: list[FunctionSnapshot]
    """Every function with at least one call, in name order."""
    calls: CallColumns
    """The retained calls, in the order ``Reading.calls`` gives them."""
    wall_time: float | None = None
    """As ``Reading.wall_time``."""


@runtime_checkable
class ColumnSource(Source, Protocol):
    """A ``Source`` that can also read its retained calls as columns (``Analytics`` can).

    A large report reads them so, without a ``RetainedCall`` per call.
    """

    def read_columns(self) -> ColumnReading:
        """Return what ``read()`` returns, with the retained calls as ``CallColumns``."""


def columns_of(calls: Sequence[RetainedCall]) -> CallColumns:
    """The columns of ``calls`` (in their order): the slow way, one call at a time."""
    index: dict[str, int] = {}
    out = CallColumns()
    functions = []
    for call in calls:
        f = index.get(call.name)
        if f is None:
            f = index[call.name] = len(out.names)
            out.names.append(call.name)
            out.types.append(call.event_type)
        functions.append(f)
    out.functions = array("l", functions)
    out.starts = array("d", [c.start for c in calls])
    out.durations = array("d", [c.duration for c in calls])
    marked = compress(range(len(calls)), [c.error is not None or c.message is not None
                                          or c.location is not None for c in calls])
    out.details = {i: (calls[i].error, calls[i].message, calls[i].location) for i in marked}
    return out
