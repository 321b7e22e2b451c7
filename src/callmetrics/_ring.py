"""The bounded ring of retained calls: exactly the newest ``limit`` calls drained.

Calls arrive as the chunks a drain took from the buffer, flat as the hot path
wrote them: ``[key, start, duration, key, start, duration, ...]`` where ``key`` is
the function's ``FunctionStats`` (a ``FailedCall`` for a call that raised, a
``NotedCall`` for a successful one with a note) and
``start`` is a ``perf_counter`` reading; each chunk carries the offset that turns
those readings into Unix times.  The ring keeps the chunks as they are (no
per-call object is built until a read asks for one) and trims the oldest chunk
exactly, so it never holds more than ``limit`` calls between two drains.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

__all__ = ["EventRing", "Retained"]

# One retained call: (unix start, duration, key), key a FunctionStats, FailedCall or NotedCall.
Retained = tuple[float, float, Any]

_by_start = itemgetter(0)


class EventRing:
    """The most recent calls, at most ``limit`` of them (0: no cap)."""

    __slots__ = ("_chunks", "_size", "limit")

    def __init__(self, limit: int) -> None:
        """Create an empty ring holding at most ``limit`` calls (0: no cap)."""
        self.limit = limit
        self._chunks: deque[tuple[float, list[Any]]] = deque()
        self._size = 0

    def __len__(self) -> int:
        """Return how many calls are retained."""
        return self._size

    def append(self, flat: list[Any], offset: float) -> None:
        """Retain a drained chunk (the ring owns ``flat`` from now on), then trim."""
        if not flat:
            return
        self._chunks.append((offset, flat))
        self._size += len(flat) // 3
        limit = self.limit
        if not limit:
            return
        chunks = self._chunks
        while self._size > limit:
            excess = self._size - limit
            oldest = chunks[0][1]
            held = len(oldest) // 3
            if held <= excess:
                chunks.popleft()
                self._size -= held
            else:
                del oldest[: 3 * excess]
                self._size -= excess

    def calls(self) -> list[Retained]:
        """Return every retained call, oldest start first."""
        out: list[Retained] = []
        for offset, flat in list(self._chunks):
            out.extend(
                (start + offset, duration, key)
                for key, start, duration in zip(flat[0::3], flat[1::3], flat[2::3], strict=True)
            )
        out.sort(key=_by_start)
        return out

    def counts(self) -> Counter[Any]:
        """Return how many retained calls each key has (each FailedCall, NotedCall: one)."""
        counter: Counter[Any] = Counter()
        for _, flat in list(self._chunks):
            counter.update(flat[0::3])
        return counter

    def replace(self, calls: Iterable[Retained]) -> int:
        """Keep exactly ``calls`` (the newest ``limit`` by start); return how many were cut."""
        kept = sorted(calls, key=_by_start)
        dropped = 0
        if self.limit and len(kept) > self.limit:
            dropped = len(kept) - self.limit
            del kept[:dropped]
        flat: list[Any] = []
        for start, duration, key in kept:
            flat += (key, start, duration)
        self.clear()
        self.append(flat, 0.0)
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
