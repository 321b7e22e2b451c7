"""The bounded ring of retained calls: exactly the newest ``limit`` calls drained.

Calls arrive as the chunks a drain took from the buffer, as three parallel
sequences: ``keys`` (the function's ``FunctionStats``, a ``FailedCall`` for a call
that raised, a ``NotedCall`` for a successful one with a note), ``starts``
(``perf_counter`` readings) and ``durations`` (seconds), lists or ``array('d')``;
each chunk carries the offset that turns those readings into Unix times.

With a limit, the ring is a circular store sized up front (up to ``PREALLOCATED``
calls; a larger limit grows to its size as calls come): a key list and
``array('d')`` of starts, durations and Unix offsets that each chunk is copied into,
overwriting the oldest calls once full.  So a drain allocates nothing that stays
(beyond growing a limit above ``PREALLOCATED``): a program measuring its own
allocations (``tracemalloc``) sees none of it.  No per-call object is built until a read asks.
Without a limit (0), chunks are kept as they come.
"""

from __future__ import annotations

import threading
import weakref
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, MutableSequence
from itertools import islice
from operator import add, itemgetter, le
from typing import Any

__all__ = ["PREALLOCATED", "EventRing", "Retained", "RingView"]

# One retained call: (unix start, duration, key), key a FunctionStats, FailedCall or NotedCall.
Retained = tuple[float, float, Any]

_by_start = itemgetter(0)

# offset, keys, starts, durations
_Chunk = tuple[float, list[Any], MutableSequence[float], MutableSequence[float]]

PREALLOCATED = 100_000  # calls stored up front (32 bytes each) for limits up to this


def _zeros(n: int) -> array[float]:
    return array("d", bytes(8 * n))


class EventRing:
    """The most recent calls, at most ``limit`` of them (0: no cap)."""

    __slots__ = ("_chunks", "_durations", "_head", "_keys", "_offsets", "_size", "_starts",
                 "_views", "limit")

    def __init__(self, limit: int) -> None:
        """Create an empty ring holding at most ``limit`` calls (0: no cap)."""
        self.limit = limit
        self._chunks: deque[_Chunk] = deque()  # without a limit only
        self._size = 0
        self._head = 0  # once full: where the oldest call is (the next to overwrite)
        room = min(limit, PREALLOCATED)
        self._keys: list[Any] = [None] * room
        self._starts = _zeros(room)
        self._durations = _zeros(room)
        self._offsets = _zeros(room)  # per call: what turns its start into Unix time
        self._views: list[weakref.ref[RingView]] = []  # views reading in place (events)

    def __len__(self) -> int:
        """Return how many calls are retained."""
        return self._size

    def append(self, keys: list[Any], starts: MutableSequence[float],
               durations: MutableSequence[float], offset: float) -> None:
        """Retain a drained chunk (copied: the sequences stay the caller's)."""
        n = len(keys)
        if not n:
            return
        if self._views:
            self._freeze_views()
        limit = self.limit
        if not limit:
            self._chunks.append((offset, keys, starts, durations))
            self._size += n
            return
        first = max(0, n - limit)  # more than the ring holds: only the newest count
        began, took = starts[first:], durations[first:]
        if not isinstance(began, array):
            began = array("d", began)
        if not isinstance(took, array):
            took = array("d", took)
        self._store(keys[first:] if first else keys, began, took, array("d", [offset]))

    def _store(self, keys: list[Any], began: array[float], took: array[float],
               offset: array[float]) -> None:
        limit, done, n = self.limit, 0, len(keys)
        while done < n:
            if self._size < limit:  # filling: write after the last call
                at = self._size
                held = len(self._keys)
                if at == held:  # a limit above PREALLOCATED: grow towards it
                    grow = min(limit, max(2 * held, 1_024)) - held
                    self._keys.extend([None] * grow)
                    self._starts.extend(_zeros(grow))
                    self._durations.extend(_zeros(grow))
                    self._offsets.extend(_zeros(grow))
                    held += grow
                step = min(n - done, held - at)
                self._size += step
            else:  # full: overwrite the oldest
                at = self._head
                step = min(n - done, limit - at)
                self._head = (at + step) % limit
            self._keys[at:at + step] = keys[done:done + step]
            self._starts[at:at + step] = began[done:done + step]
            self._durations[at:at + step] = took[done:done + step]
            self._offsets[at:at + step] = offset * step
            done += step

    def slot(self, at: int) -> Retained:
        """Return the call stored at slot ``at`` (a capped ring's storage)."""
        return (self._starts[at] + self._offsets[at], self._durations[at], self._keys[at])

    def view(self, lock: threading.RLock) -> RingView | list[Retained]:
        """Return the retained calls in the order they were recorded, read lazily.

        A capped ring answers with a ``RingView`` reading its slots in place until the
        ring next changes (then the view copies them first); an uncapped one with a list.
        """
        if not self.limit:
            return [(start + offset, duration, key)
                    for offset, keys, starts, durations in list(self._chunks)
                    for key, start, duration in zip(keys, starts, durations, strict=True)]
        start = self._head if self._size == self.limit else 0
        made = RingView(self, lock, start, self._size)
        self._views = [ref for ref in self._views if ref() is not None]
        self._views.append(weakref.ref(made))
        return made

    def _freeze_views(self) -> None:
        """Have every live view copy what it shows: the ring is about to change."""
        views, self._views = self._views, []
        for ref in views:
            view = ref()
            if view is not None:
                view.freeze()

    def calls(self) -> list[Retained]:
        """Return every retained call, oldest start first."""
        out: list[Retained] = []
        if self.limit:
            size = self._size
            out.extend((start + offset, duration, key) for start, offset, duration, key in zip(
                self._starts[:size], self._offsets[:size], self._durations[:size],
                self._keys[:size], strict=True))
        for offset, keys, starts, durations in list(self._chunks):
            out.extend(
                (start + offset, duration, key)
                for key, start, duration in zip(keys, starts, durations, strict=True)
            )
        out.sort(key=_by_start)
        return out

    def columns(self) -> tuple[list[Any], array[float], array[float]]:
        """Return ``calls()`` as columns: keys, Unix starts, durations (no per-call tuple).

        The same calls in the same order (by start, stable), with C-speed passes only.
        """
        keys: list[Any] = []
        starts = array("d")
        durations = array("d")
        if self.limit:
            size = self._size
            keys = self._keys[:size]
            starts = array("d", map(add, self._starts[:size], self._offsets[:size]))
            durations = self._durations[:size]
        for offset, chunk_keys, chunk_starts, chunk_durations in list(self._chunks):
            keys.extend(chunk_keys)
            starts.extend(map(offset.__add__, chunk_starts))
            durations.extend(chunk_durations)
        if not all(map(le, starts, islice(starts, 1, None))):
            order = sorted(range(len(starts)), key=starts.__getitem__)
            keys = list(map(keys.__getitem__, order))
            starts = array("d", map(starts.__getitem__, order))
            durations = array("d", map(durations.__getitem__, order))
        return keys, starts, durations

    def adopt(self, keys: list[Any], starts: array[float], durations: array[float]) -> bool:
        """Keep exactly these calls (Unix starts, ascending) if the ring is empty and uncapped.

        The columnar twin of ``replace`` for a view rebuilt from a store; False (nothing
        done) when it does not apply.
        """
        if self.limit or self._size or not all(map(le, starts, islice(starts, 1, None))):
            return False
        self.append(keys, starts, durations, 0.0)
        return True

    def counts(self) -> Counter[Any]:
        """Return how many retained calls each key has (each FailedCall, NotedCall: one)."""
        counter: Counter[Any] = Counter(self._keys[:self._size] if self.limit else ())
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
        """Drop every retained call (the store keeps its size)."""
        if self._views:
            self._freeze_views()
        self._chunks.clear()
        self._keys[:] = [None] * len(self._keys)
        self._size = 0
        self._head = 0


class RingView:
    """The ring's calls at one moment, read in place until the ring changes."""

    __slots__ = ("__weakref__", "_frozen", "_lock", "_ring", "_size", "_start")

    def __init__(self, ring: EventRing, lock: threading.RLock, start: int, size: int) -> None:
        """Show the ``size`` calls of ``ring`` from slot ``start`` on (read under ``lock``)."""
        self._ring = ring
        self._lock = lock
        self._start = start
        self._size = size
        self._frozen: list[Retained] | None = None

    def __len__(self) -> int:
        """Return how many calls the view shows."""
        return self._size

    def call(self, i: int) -> Retained:
        """Return the ``i``-th call shown (0 <= i < len), oldest first."""
        with self._lock:
            if self._frozen is None:
                found = self._ring.slot((self._start + i) % self._ring.limit)
                if self._frozen is None:  # else a signal handler's drain froze it meanwhile
                    return found
            frozen = self._frozen
        return frozen[i]

    def calls(self, first: int = 0, stop: int | None = None) -> list[Retained]:
        """Return the calls shown from ``first`` to ``stop`` (one lock for them all)."""
        stop = self._size if stop is None else stop
        with self._lock:
            if self._frozen is None:
                ring, start, limit = self._ring, self._start, self._ring.limit
                found = [ring.slot((start + i) % limit) for i in range(first, stop)]
                if self._frozen is None:  # else a signal handler's drain froze it meanwhile
                    return found
            frozen = self._frozen
        return frozen[first:stop]

    def freeze(self) -> None:
        """Copy what the view shows: the ring is about to change (its lock is held)."""
        if self._frozen is None:
            ring, start, limit = self._ring, self._start, self._ring.limit
            self._frozen = [ring.slot((start + i) % limit) for i in range(self._size)]
