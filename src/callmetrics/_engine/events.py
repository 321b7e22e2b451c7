"""``analytics.events``: a read-only view of the retained calls, built one event at a time.

The view is taken at one moment and keeps showing that moment: the calls drained
later are not in it, and when the ring is about to change (a drain, a clear, a merge)
it first copies what it shows (``RingView.freeze``).  Until then, ``events[-1]``,
``len(events)`` and a slice build only the events they return, so reading the newest
call costs a few microseconds whatever ``max_events`` is.  The order is the order in
which the calls were recorded (as they ended), as the seed's list was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from callmetrics._engine.aggregate import FailedCall, NotedCall
from callmetrics._engine.records import Event, make_event
from callmetrics._engine.ring import Retained, RingView

__all__ = ["EventsView", "event_of"]


def event_of(call: Retained, fmt: str) -> Event:
    """The seed's event dict of one retained call ``(unix start, duration, key)``."""
    start, took, key = call
    if type(key) is FailedCall:
        stats = key.stats
        return make_event(stats.name, stats.event_type, start, took, key.error, fmt,
                          key.message, key.location)
    if type(key) is NotedCall:  # a success with a note
        stats = key.stats
        return make_event(stats.name, stats.event_type, start, took, None, fmt, key.message)
    return make_event(key.name, key.event_type, start, took, None, fmt)


class EventsView(Sequence[Event]):
    """What ``analytics.events`` returns: the retained calls as the seed's event dicts.

    A read-only sequence (index, slice, ``len``, iteration); ``clear()`` drops the
    instance's retained events (the seed's way), as ``analytics.events = []`` does.
    ``list(analytics.events)`` gives a list to keep or edit.
    """

    __slots__ = ("_calls", "_clear", "_fmt")

    def __init__(self, calls: RingView | Sequence[Retained], fmt: str,
                 clear: Callable[[], None]) -> None:
        """Show ``calls`` as events with times formatted by ``fmt``."""
        self._calls = calls
        self._fmt = fmt
        self._clear = clear

    def __len__(self) -> int:
        """Return how many events there are."""
        return len(self._calls)

    def _one(self, i: int) -> Event:
        calls = self._calls
        call = calls.call(i) if isinstance(calls, RingView) else calls[i]
        return event_of(call, self._fmt)

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        """Return one event (negative indices count from the newest), or a list for a slice."""
        n = len(self._calls)
        if isinstance(index, slice):
            first, stop, step = index.indices(n)
            if step == 1 and isinstance(self._calls, RingView):
                fmt = self._fmt
                return [event_of(call, fmt) for call in self._calls.calls(first, stop)]
            return [self._one(i) for i in range(first, stop, step)]
        i = index.__index__()
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("event index out of range")
        return self._one(i)

    def __iter__(self) -> Iterator[Event]:
        """Yield the events oldest first, each built when reached."""
        calls = self._calls
        fmt = self._fmt
        if isinstance(calls, RingView):  # taken at once, built one by one
            calls = calls.calls()
        for call in calls:
            yield event_of(call, fmt)

    def __eq__(self, other: object) -> bool:
        """Equal to a sequence (a list, another view) of the same events."""
        if isinstance(other, EventsView | list | tuple):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compares like a list, so unhashable

    def __add__(self, other: Sequence[Event]) -> list[Event]:
        """``events + other``: a new list, as for a list."""
        return [*self, *other]

    def __radd__(self, other: Sequence[Event]) -> list[Event]:
        """``other + events``: a new list."""
        return [*other, *self]

    def __repr__(self) -> str:
        """Show the count and the newest event."""
        newest = f", newest={self[-1]!r}" if len(self) else ""
        return f"<analytics.events: {len(self)} retained{newest}>"

    def clear(self) -> None:
        """Drop every retained event of the instance (its counts stay): ``clear_events()``."""
        self._clear()
        self._calls = ()

    def _refuse(self, *_: object, **__: object) -> Any:
        raise TypeError("analytics.events is a read-only snapshot of what was recorded; use "
                        "events.clear() or reset() to start again, list(analytics.events) "
                        "for a copy to edit")

    append = extend = insert = pop = remove = reverse = sort = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
