"""Moving recorded calls between recorders: ``merge_with`` and ``restore``.

Both run with the recorders' locks held and their buffers drained (``reading()``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from callmetrics._engine.aggregate import (
    Extreme,
    FailedCall,
    FunctionStats,
    NotedCall,
    children_times,
)
from callmetrics._engine.columns import CallColumns
from callmetrics._engine.recorder import Recorder
from callmetrics._engine.records import Event
from callmetrics._engine.ring import Retained
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._engine.view import RetainedCall

__all__ = ["merge_into", "restore_into"]


def _mine(recorder: Recorder, name: str, event_type: str, module: str) -> FunctionStats:
    stats = recorder.stats.get(name)
    if stats is None:
        stats = recorder.stats[name] = FunctionStats(name, event_type, module, recorder.budget)
    return stats


def _rekey(key: object, mapping: dict[int, FunctionStats]) -> object:
    if type(key) is FailedCall:
        return FailedCall(mapping[id(key.stats)], key.error, key.message, key.location)
    if type(key) is NotedCall:
        return NotedCall(mapping[id(key.stats)], key.message)
    return mapping[id(key)]


def merge_into(mine: Recorder, theirs: Recorder) -> int:
    """Move everything ``theirs`` holds into ``mine``; return how many of its events were cut.

    The retained events keep the seed's meaning at the cap: ``mine``'s own, then the
    newest of ``theirs`` that fit in the room left (by start); the others are dropped.
    """
    mapping: dict[int, FunctionStats] = {}
    children = children_times(theirs.stats.values())
    for name, source in theirs.stats.items():
        target = _mine(mine, name, source.event_type, source.module)
        target.merge(source, children.get(source, 0.0))
        mapping[id(source)] = target
        source.reset()
    incoming = [(start, took, _rekey(key, mapping)) for start, took, key in theirs.ring.calls()]
    theirs.ring.clear()
    limit = mine.ring.limit
    room = max(0, limit - len(mine.ring)) if limit else len(incoming)
    kept = incoming[len(incoming) - room:] if room else []  # the newest that fit
    mine.ring.replace(mine.ring.calls() + kept)
    return len(incoming) - len(kept)


def _key(stats: FunctionStats, error: str | None, message: str | None,
         location: str | None) -> FunctionStats | FailedCall | NotedCall:
    """The ring key of a stored call: a failure, a success with a note, or a plain success."""
    if error is not None:
        return FailedCall(stats, error, message, location)
    if message is not None:
        return NotedCall(stats, message)
    return stats


def _extreme(stats: FunctionStats, event: Event | None) -> Extreme | None:
    if event is None:
        return None
    key = _key(stats, event.error, event.message, event.location)
    return (event.start, event.duration, None if isinstance(key, FunctionStats) else key)


def _attribution(loaded: FunctionStats, snap: FunctionSnapshot) -> None:
    """Give ``loaded`` the stored self, inclusive and active time and callers (None: unknown)."""
    total = snap.total
    if snap.self_time is None or snap.inclusive_time is None:
        loaded.self_known = loaded.active_known = False
        return
    loaded.children_extra = total - snap.self_time
    loaded.nested_extra = total - snap.inclusive_time
    loaded.callers_extra = {edge.name: [edge.calls, edge.time] for edge in snap.callers}
    if snap.active_time is None or snap.active_self_time is None:
        loaded.active_known = False
        return
    loaded.inactive_extra = total - snap.active_time
    loaded.self_gap_extra = snap.self_time - snap.active_self_time


def restore_into(recorder: Recorder, functions: Iterable[FunctionSnapshot],
                 events: Iterable[RetainedCall | tuple[Any, ...]] | CallColumns) -> None:
    """Add stored aggregates and retained calls.

    Each event is a ``RetainedCall`` (what a store read gives, message and location
    included), or a plain ``(start, duration, error, name[, message, location])``.  A
    call without error but with a message is a success with a note.  ``CallColumns``
    (a store view's, by start) go into an empty uncapped ring as they are.
    """
    for snap in functions:
        stats = _mine(recorder, snap.name, snap.event_type, snap.module)
        loaded = FunctionStats(snap.name, snap.event_type, snap.module)
        loaded.calls, loaded.successes, loaded.total = snap.calls, snap.successes, snap.total
        loaded.fast, loaded.medium, loaded.slow = snap.fast, snap.medium, snap.slow
        loaded.sketch = snap.sketch.copy()
        loaded.drain_seconds = snap.overhead
        loaded.slowest = _extreme(stats, snap.slowest)
        loaded.fastest = _extreme(stats, snap.fastest)
        _attribution(loaded, snap)
        failures = snap.failure_types()  # the unrecorded ones as "(unknown)"
        if failures:
            loaded.add_errors(failures)
        loaded.cpu_time = snap.cpu_time
        stats.merge(loaded)
    if isinstance(events, CallColumns):
        if _adopt(recorder, events):
            return
        events = events.calls()
    restored: list[Retained] = []
    for event in events:
        if isinstance(event, RetainedCall):
            start, took, name, event_type, error, message, location = event
        else:
            start, took, error, name, *details = event
            event_type = "unknown"
            message, location = [*details, None, None][:2]
        owner = recorder.stats.get(name)
        if owner is None:
            owner = recorder.stats[name] = FunctionStats(name, event_type, "<store>")
        restored.append((start, took, _key(owner, error, message, location)))
    recorder.ring.replace(recorder.ring.calls() + restored)


def _adopt(recorder: Recorder, calls: CallColumns) -> bool:
    """Put ``calls`` in the ring without a tuple per call, when it is empty and uncapped."""
    owners = []
    for name, event_type in zip(calls.names, calls.types, strict=True):
        owner = recorder.stats.get(name)
        if owner is None:
            owner = recorder.stats[name] = FunctionStats(name, event_type, "<store>")
        owners.append(owner)
    keys: list[FunctionStats | FailedCall | NotedCall] = list(
        map(owners.__getitem__, calls.functions))
    for i, (error, message, location) in calls.details.items():
        keys[i] = _key(owners[calls.functions[i]], error, message, location)
    return recorder.ring.adopt(keys, calls.starts, calls.durations)
