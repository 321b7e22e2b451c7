"""The bounded ring of retained calls: exactly the newest ``limit`` calls drained.

Calls arrive as the chunks a drain took from the buffer, as three parallel
sequences: ``keys`` (the function's ``FunctionStats``, a ``FailedCall`` for a call
that raised, a ``NotedCall`` for a successful one with a note), ``starts``
(``perf_counter`` readings) and ``durations`` (seconds), lists or ``array('d')``;
each chunk carries the offset that turns those readings into Unix times.  The ring
keeps the chunks as they are (no per-call object is built until a read asks for
one) and trims the oldest chunk exactly, so it never holds more than ``limit``
calls between two drains.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, MutableSequence
from operator import itemgetter
from typing import Any

__all__ = ["EventRing", "Retained"]

# One retained call: (unix start, duration, key), key a FunctionStats, FailedCall or NotedCall.
Retained = tuple[float, float, Any]

_by_start = itemgetter(0)

# offset, keys, starts, durations
_Chunk = tuple[float, list[Any], MutableSequence[float], MutableSequence[float]]


class EventRing:
    """The most recent calls, at most ``limit`` of them (0: no cap)."""

    __slots__ = ("_chunks", "_size", "limit")

    def __init__(self, limit: int) -> None:
        """Create an empty ring holding at most ``limit`` calls (0: no cap)."""
        self.limit = limit
        self._chunks: deque[_Chunk] = deque()
        self._size = 0

    def __len__(self) -> int:
        """Return how many calls are retained."""
        return self._size

    def append(self, keys: list[Any], starts: MutableSequence[float],
               durations: MutableSequence[float], offset: float) -> None:
        """Retain a drained chunk (the ring owns the sequences from now on), then trim."""
        if not keys:
            return
        self._chunks.append((offset, keys, starts, durations))
        self._size += len(keys)
        limit = self.limit
        if not limit:
            return
        chunks = self._chunks
        while self._size > limit:
            excess = self._size - limit
            _, old_keys, old_starts, old_durations = chunks[0]
            held = len(old_keys)
            if held <= excess:
                chunks.popleft()
                self._size -= held
            else:
                del old_keys[:excess]
                del old_starts[:excess]
                del old_durations[:excess]
                self._size -= excess

    def calls(self) -> list[Retained]:
        """Return every retained call, oldest start first."""
        out: list[Retained] = []
        for offset, keys, starts, durations in list(self._chunks):
            out.extend(
                (start + offset, duration, key)
                for key, start, duration in zip(keys, starts, durations, strict=True)
            )
        out.sort(key=_by_start)
        return out

    def counts(self) -> Counter[Any]:
        """Return how many retained calls each key has (each FailedCall, NotedCall: one)."""
        counter: Counter[Any] = Counter()
        for _, keys, _, _ in list(self._chunks):
            counter.update(keys)
        return counter

    def replace(self, calls: Iterable[Retained]) -> int:
        """Keep exactly ``calls`` (the newest ``limit`` by start); return how many were cut."""
        kept = sorted(calls, key=_by_start)
        dropped = 0
        if self.limit and len(kept) > self.limit:
            dropped = len(kept) - self.limit
            del kept[:dropped]
        self.clear()
        self.append([key for _, _, key in kept], [start for start, _, _ in kept],
                    [duration for _, duration, _ in kept], 0.0)
        return dropped

    def filter(self, keep: Callable[[Retained], bool]) -> int:
        """Drop retained calls for which ``keep`` is false; return how many were dropped."""
        before = self.calls()
        self.replace(call for call in before if keep(call))
        return len(before) - self._size

    def clear(self) -> None:
        """Drop every retained call."""
        self._chunks.clear()
        self._size = 0
