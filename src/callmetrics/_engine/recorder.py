"""The recorder: one call buffer per instance, bounded drains, aggregates and the ring.

The hot path appends each finished call to ``Recorder.buffer`` as three flat items,
``buffer.extend((key, start, duration))``: ``key`` is the function's
``FunctionStats`` (a ``FailedCall`` when the call raised, a ``NotedCall`` when a
successful one carries a note), ``start`` a
``perf_counter`` reading, ``duration`` seconds.  The buffer is a list on the
pure-Python path, where ``extend`` with a tuple is one C call that holds the list
for its whole length (under the GIL and under free-threading's per-list lock
alike), or the accelerator's ``CallBuffer`` (C arrays; the C wrappers store into it
directly, with no object per call).  Either way it always holds whole calls.

When the buffer holds ``BUFFER_LIMIT`` calls, the call that sees it drains one
chunk of at most ``BUFFER_LIMIT`` calls of at most ``GROUPS_PER_DRAIN`` functions
(``drain_soon``; so calls spread over many functions drain in smaller chunks): it
takes the chunk off the front of the buffer at once (``_accel.take``: keys, starts
and durations; so other threads see a short buffer again and do not pile in),
folds it into the aggregates (in bulk when one function filled it, grouped by
function when few did, call by call when many did), and hands it to the ring,
which trims to exactly ``max_events``.  Reads drain everything first.  A drain
therefore costs in proportion to the calls it takes, never to the number of
functions tracked, and no call pays for more than one bounded chunk.

Re-entry: the lock is re-entrant so that a signal handler, a ``__del__`` or a
logging handler running inside a drain or a read in the same thread cannot
deadlock; ``_busy`` marks that a drain or read is under way, and a nested one then
neither drains nor waits: it reads the aggregates as they stand.

Fork: ``_engine/forking.py`` takes every live recorder's lock across ``fork()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, MutableSequence, Sequence
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from callmetrics._engine.accel import fold_group, fold_setup, group_calls, new_buffer, take
from callmetrics._engine.aggregate import FailedCall, FunctionStats, count_failures
from callmetrics._engine.callers import EdgeBudget, fold_edges
from callmetrics._engine.forking import enrol
from callmetrics._engine.logs import report_internal_error
from callmetrics._engine.ring import EventRing
from callmetrics._engine.sketch import DurationSketch

__all__ = ["BUFFER_LIMIT", "BULK_LIMIT", "NAME_LIMIT", "OVERFLOW_NAME", "Recorder", "bounded_name"]

# A drained function's common case folded in C (the accelerator's fold_group, set up
# for these two classes' slots), else None: FunctionStats.add in Python.
_FOLD = fold_group if fold_setup is not None and fold_setup(FunctionStats, DurationSketch) \
    else None

# Calls buffered before the call that sees them drains one chunk.  Small enough that
# a drain of one function's chunk stays far below 100 µs, large enough to amortise it.
BUFFER_LIMIT = 1024

# A drain folds each function's calls with some fixed work (one to two microseconds
# in pure Python): a drain stops before the call that would make it fold more than
# this many groups, so that no call pays for more than this many functions' folds.
GROUPS_PER_DRAIN = 16

# A whole program's run (``callmetrics run``, the pytest plugin) favours throughput over
# the bound above: chunks of this many calls, with no bound on their functions, fold
# grouped by function (a few microseconds per function met) instead of call by call
# (about a microsecond per call).  No larger: the buffer (24 bytes a call in C) is what
# a program measuring its own allocations sees (more-itertools allows 256 KiB).
BULK_LIMIT = 4_096

# Where calls of functions past ``max_functions`` are recorded, together.
OVERFLOW_NAME = "<other functions>"

# A recorded name (and event type, and module) is cut to at most this many characters,
# the full length noted, whatever asked for it (track, measure, a middleware, zero-code):
# anything the recorder accepts can be stored and read back.
NAME_LIMIT = 1000


def bounded_name(text: str) -> str:
    """Return ``text``, or its start and a marker noting its full length, in ``NAME_LIMIT``."""
    full = len(text)
    if full <= NAME_LIMIT:
        return text
    marker = f"… ({full:,} characters)"
    return text[:NAME_LIMIT - len(marker)] + marker


def _locate(keys: list[Any], durations: Sequence[float], stats: FunctionStats,
            value: float) -> int:
    """Return the index of a call of ``stats`` (plain, failed or noted) that took ``value`` s."""
    position = 0
    while True:
        position = durations.index(value, position)
        key = keys[position]
        if key is stats or (type(key) is not FunctionStats and key.stats is stats):
            return position
        position += 1


def _functions(keys: list[Any]) -> int:
    """Return how many functions the keys stand for (a failure's or a note's: its owner)."""
    return len({key if type(key) is FunctionStats else key.stats for key in keys})


class Recorder:
    """Buffers, drains, per-function aggregates and the ring of one ``Analytics``."""

    __slots__ = ("__weakref__", "_busy", "_warn", "budget", "buffer", "chunk", "cpu", "created",
                 "groups", "lock", "max_functions", "medium_max", "on_fold", "order", "overflow",
                 "ring", "short_max", "stats", "wall")

    def __init__(self, *, max_events: int, max_functions: int, short_max: float,
                 medium_max: float, warn: Callable[[str], None], bulk: bool = False) -> None:
        """Create an empty recorder; ``warn`` logs a one-line warning.

        ``bulk``: drain ``BULK_LIMIT`` calls at a time, of any number of functions
        (with the accelerator; the pure-Python path keeps its bounded drains).
        """
        self.buffer: Any = new_buffer()  # a list, or the accelerator's CallBuffer
        # The pure-Python buffer holds two float objects a call (72 bytes and more): it
        # keeps the bounded drains, so that what a program measuring its allocations
        # sees stays small.
        large = bulk and not isinstance(self.buffer, list)
        self.chunk, self.groups = (BULK_LIMIT, 0) if large else (BUFFER_LIMIT, GROUPS_PER_DRAIN)
        self.lock = threading.RLock()
        self.order = 0
        enrol(self)  # sets the order
        self._busy = False
        self.stats: dict[str, FunctionStats] = {}
        self.ring = EventRing(max_events)
        self.max_functions = max_functions
        self.short_max = short_max
        self.medium_max = medium_max
        self.overflow: FunctionStats | None = None
        self._warn = warn
        self.budget = EdgeBudget()  # caller edges this instance may still make
        self.created = perf_counter()  # where its wall time starts
        self.wall: float | None = None  # a view of stored runs: the seconds they spanned
        self.cpu: Any = None  # cputime.CpuTimes (cpu_time=True): folded with each drain
        # Told the count of each chunk folded, lock held (callmetrics run's pruner); must
        # be quick and never raise.
        self.on_fold: Callable[[int], None] | None = None

    # ------------------------------------------------------------ registry
    def stats_for(self, name: str, event_type: str, module: str, *, explicit: bool,
                  warn: bool = True) -> FunctionStats:
        """Return the aggregates calls of ``name`` are recorded into (created if new).

        Past ``max_functions`` names, a new name is recorded under ``OVERFLOW_NAME``.
        A name, event type or module longer than ``NAME_LIMIT`` is cut (``bounded_name``).
        """
        if len(name) > NAME_LIMIT or len(event_type) > NAME_LIMIT or len(module) > NAME_LIMIT:
            name, event_type = bounded_name(name), bounded_name(event_type)
            module = bounded_name(module)
        with self.lock:
            stats = self.stats.get(name)
            if stats is None:
                if self.max_functions and len(self.stats) - (self.overflow is not None) \
                        >= self.max_functions:
                    return self._overflow(name)
                stats = self.stats[name] = FunctionStats(name, event_type, module, self.budget)
                return stats
            if explicit or stats.module == module:
                if stats.event_type != event_type and warn:
                    self._warn(f"callmetrics: {name} is already tracked as event type "
                               f"{stats.event_type!r}; keeping it (asked for {event_type!r})")
                return stats
            qualified = f"{module}.{name}"
            if warn:
                self._warn(f"callmetrics: {name} in module {module} has the same name as one "
                           f"in {stats.module}; recording it as {qualified}")
            return self.stats_for(qualified, event_type, module, explicit=True, warn=warn)

    def _overflow(self, name: str) -> FunctionStats:
        if self.overflow is None:
            self._warn(f"callmetrics: more than max_functions={self.max_functions:,} function "
                       f"names; {name} and every later new name are recorded together as "
                       f"{OVERFLOW_NAME!r} (totals stay exact)")
            self.overflow = self.stats[OVERFLOW_NAME] = FunctionStats(
                OVERFLOW_NAME, "mixed", "<overflow>", self.budget)
        return self.overflow

    # -------------------------------------------------------------- drains
    def drain_soon(self, wait: float = 0.0) -> bool:
        """Fold one chunk of the buffer, unless a drain or read is already under way.

        Called by the hot path when the buffer is full: never raises, and waits for
        the lock at most ``wait`` seconds (0: not at all).  Returns False when another
        thread held the lock throughout (its drain leaves room), True otherwise.
        """
        lock = self.lock
        if not lock.acquire(blocking=False) and not (wait > 0 and self._await_lock(wait)):
            return False
        try:
            if self._busy:
                return True  # re-entered from this thread: the outer drain or read goes on
            self._busy = True
            try:
                self._drain_chunk(self.chunk, self.groups)
                if self.cpu is not None:
                    self.cpu.fold()
            finally:
                self._busy = False
        except Exception as exc:  # noqa: BLE001  # runs inside a user's call: never break it
            report_internal_error("draining buffered calls", exc)
        finally:
            lock.release()
        return True

    def _await_lock(self, wait: float) -> bool:
        """Take the lock within ``wait`` seconds, letting its holder run meanwhile.

        Not ``lock.acquire(timeout=...)``: released, the lock would go to this sleeping
        thread, which holds it until it runs again, while the running threads' calls
        pile up and wait in turn; under the GIL the threads then pass the lock round
        one chunk at a time (8 threads on 2 cores spent several times their calls' time
        so).  Here a waiting thread only lets other threads run (``sleep(0)`` hands
        the GIL over), and takes the lock when it is free.
        """
        lock = self.lock
        deadline = time.monotonic() + wait
        while True:
            time.sleep(0)
            if lock.acquire(blocking=False):
                return True
            if time.monotonic() >= deadline:
                return False

    @contextmanager
    def reading(self) -> Iterator[bool]:
        """Hold the lock with the calls buffered before it drained; yield False when nested.

        A read nested in a drain or a read of this same thread (a signal handler, a
        ``__del__``) neither drains nor waits: it sees the aggregates as they stand.
        """
        with self.lock:
            if self._busy:
                yield False
                return
            self._busy = True
            try:
                try:
                    # Everything buffered now, then what came meanwhile, and no more: a
                    # read must end even while other threads' calls (or tracked code run
                    # by the fold itself, a finalizer say) keep coming.
                    for _ in range(2):
                        if not self.buffer:
                            break
                        self._drain_chunk(0, 0)
                    if self.cpu is not None:
                        self.cpu.fold()
                except Exception as exc:  # noqa: BLE001  # a read still answers
                    report_internal_error("draining buffered calls", exc)
                yield True
            finally:
                self._busy = False

    def drain_calls(self, keys: Sequence[Any], starts: Sequence[float],
                    durations: Sequence[float]) -> None:
        """Fold calls buffered elsewhere, in the order given; blocks on the lock.

        ``keys[i]`` is a ``FunctionStats``, a ``FailedCall`` or a ``NotedCall``; ``starts``
        are ``perf_counter`` readings, ``durations`` seconds.
        """
        n = len(keys)
        if n != len(starts) or n != len(durations):
            raise ValueError("keys, starts and durations must have the same length")
        if n:
            with self.lock:
                self._fold(list(keys), list(starts), list(durations))

    def _drain_chunk(self, limit: int, groups: int) -> None:
        """Fold up to ``limit`` calls (0: all) off the buffer's front, ``groups`` keys at most."""
        # Calls appended meanwhile by other threads stay (each append is one atomic
        # extend at the end; only drains, holding the lock, take from the front).
        keys, starts, durations = take(self.buffer, 3 * limit, groups, FunctionStats)
        if keys:
            self._fold(keys, starts, durations)

    def _fold(self, keys: list[Any], starts: MutableSequence[float],
              durations: MutableSequence[float]) -> None:
        """Fold a chunk of calls into the aggregates and retain it; lock held.

        The ring owns the three sequences from now on.
        """
        began = perf_counter()
        offset = time.time() - began
        first = keys[0]
        n = len(keys)
        spent: list[tuple[FunctionStats, int]] = []  # each function folded, with its calls
        owners: list[FunctionStats] = []  # or each call's function, when folded one by one
        # (The last key first: a chunk of many functions is told apart without a scan.)
        alone = type(first) is FunctionStats and keys[-1] is first and keys.count(first) == n
        if not alone:
            # Callers counted (_callers); the edges' keys are their functions again.
            fold_edges(keys, durations, FunctionStats)
            first = keys[0]
            alone = (type(first) is FunctionStats and keys[-1] is first
                     and keys.count(first) == n)
        if alone:
            # One function filled the chunk (the common hot loop): no grouping at all.
            low, high = first.add(durations, n, self.short_max, self.medium_max)
            self._extremes(first, keys, starts, durations, offset, low, high, -1, -1)
            spent = [(first, n)]
        elif 4 * len(set(keys)) > n and (n <= 4 * GROUPS_PER_DRAIN
                                         or 4 * _functions(keys) > n):
            # Calls spread over many functions (called in turn): grouping would cost
            # more than it saves, so each call is folded as it comes.  (Distinct keys
            # first, cheaply; then, for a large chunk, functions: failures' and notes'
            # keys are distinct even when their function is one, as in a loop of
            # failing calls.)
            owners = self._fold_each(keys, starts, durations, offset)
        else:
            spent = self._fold_groups(keys, starts, durations, offset)
        self.ring.append(keys, starts, durations, offset)
        # The bulk work is part of what the decorator costs: share it out by calls.
        per_call = (perf_counter() - began) / n
        for stats in owners:
            stats.drain_seconds += per_call
        for stats, count in spent:
            stats.drain_seconds += per_call * count
        if self.on_fold is not None:
            self.on_fold(n)

    def _fold_groups(self, keys: list[Any], starts: Sequence[float],
                     durations: Sequence[float], offset: float) -> list[tuple[FunctionStats, int]]:
        """Fold calls grouped by function; return each function with its count of calls."""
        spent = []
        failed = 0
        fold, short_max = _FOLD, self.short_max
        for stats, group, failures, low_at, high_at in group_calls(keys, durations,
                                                                   FunctionStats, FailedCall):
            count = len(group)
            # The common case in C (the same sums, counts and sketch as stats.add);
            # False: no new extreme to set.
            folded = None if fold is None else fold(stats, group, count - failures, short_max)
            if folded is None:
                folded = stats.add(group, count - failures, short_max, self.medium_max)
            if folded:
                low, high = folded
                self._extremes(stats, keys, starts, durations, offset, low, high, low_at,
                               high_at)
            spent.append((stats, count))
            failed += failures
        if failed:  # counted by type only when the chunk holds failures
            count_failures(keys)
        return spent

    def _fold_each(self, keys: list[Any], starts: Sequence[float],
                   durations: Sequence[float], offset: float) -> list[FunctionStats]:
        """Fold calls one by one (extremes included); return each call's function."""
        short_max, medium_max = self.short_max, self.medium_max
        owners: list[FunctionStats] = []
        failures = 0
        for at, key in enumerate(keys):
            duration = durations[at]
            if type(key) is FunctionStats:
                stats, record, success = key, None, True
            else:  # a FailedCall, or a NotedCall (a success)
                stats, record = key.stats, key
                success = type(key) is not FailedCall
                failures += not success
            stats.add_call(duration, success, short_max, medium_max)
            # The first call of a duration is the extreme, as _locate finds it in a chunk.
            made = None
            slowest = stats.slowest
            if slowest is None or duration > slowest[1]:
                made = stats.slowest = (starts[at] + offset, duration, record)
            fastest = stats.fastest
            if fastest is None or duration < fastest[1]:
                stats.fastest = made or (starts[at] + offset, duration, record)
            owners.append(stats)
        if failures:
            count_failures(keys)
        return owners

    @staticmethod
    def _extremes(stats: FunctionStats, keys: list[Any], starts: Sequence[float],
                  durations: Sequence[float], offset: float, low: float, high: float,
                  low_at: int, high_at: int) -> None:
        """Make the chunk's lowest and highest calls of ``stats`` its extremes if they are.

        ``low_at`` and ``high_at`` are their indices in the chunk (-1: found here, only
        when a new extreme needs its call).
        """
        if stats.slowest is None or high > stats.slowest[1]:
            at = high_at if high_at >= 0 else _locate(keys, durations, stats, high)
            key = keys[at]
            stats.slowest = (starts[at] + offset, high, None if key is stats else key)
        if stats.fastest is None or low < stats.fastest[1]:
            if low == high and stats.slowest[1] == high:
                stats.fastest = stats.slowest  # one call (or equal ones): share the record
                return
            at = low_at if low_at >= 0 else _locate(keys, durations, stats, low)
            key = keys[at]
            stats.fastest = (starts[at] + offset, low, None if key is stats else key)
