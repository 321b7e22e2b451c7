"""Recorders' locks across ``fork()``: taken before it, released on both sides after.

A child inherits every lock as it was, held or not, and has only the thread that
forked; a lock another thread held would never be released there.  So the forking
thread takes every live recorder's lock just before ``fork()`` (after the store's
hooks, which take their write locks first: hooks registered later run earlier), which
also means no drain is half done, and releases them on both sides after it: the child
starts with working locks and exactly the calls recorded (or buffered) before the fork.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from typing import Protocol

__all__ = ["enrol"]


class _Locked(Protocol):
    order: int
    lock: threading.RLock


_ORDER = itertools.count()
_LIVE: weakref.WeakSet[_Locked] = weakref.WeakSet()
_HELD: list[_Locked] = []  # the recorders whose locks the forking thread holds


def enrol(recorder: _Locked) -> None:
    """Give ``recorder`` its creation order and take its lock across every later fork.

    Locks of several recorders are always taken in this order (fork, merge).
    """
    recorder.order = next(_ORDER)
    _LIVE.add(recorder)


def _before_fork() -> None:
    """Take every live recorder's lock, in creation order, before ``fork()``."""
    for recorder in sorted(_LIVE, key=lambda r: r.order):
        recorder.lock.acquire()
        _HELD.append(recorder)


def _after_fork() -> None:
    """Release what ``_before_fork`` took (in the parent, and in the child: its one thread)."""
    while _HELD:
        _HELD.pop().lock.release()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork,
                        after_in_child=_after_fork)
