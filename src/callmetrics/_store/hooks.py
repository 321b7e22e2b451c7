"""The process hooks of the store's writers: closing them at exit, and across forks.

Every open writer is registered here.  At the interpreter's exit (``atexit``) and at
a multiprocessing child's exit (its finalizers) they are closed, all within the
longest of their ``store_timeout``s.  Across ``os.fork`` the forking thread holds
their write locks, and a forked child starts a fresh run or goes quiet (see
``StoreWriter.after_fork_in_child``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from callmetrics._engine.environment import process_environment
from callmetrics._engine.logs import report_internal_error


class HookedWriter(Protocol):
    """What the hooks need of an open writer (``writer.StoreWriter``)."""

    timeout: float

    @property
    def inactive(self) -> bool:
        """Whether this is a forked child's copy that must not write."""

    def close(self, deadline: float | None = None) -> bool:
        """Flush what is left and close, by ``deadline``; True when all was written."""

    def before_fork(self) -> None:
        """Hold the write lock across a fork."""

    def after_fork_in_child(self) -> None:
        """Start a fresh run in a forked child, or go quiet."""

__all__ = ["FORK_HELD", "OPEN", "ORPHANS", "HookedWriter", "install_exit_hooks", "program_name",
           "run_environment", "say"]

_log = logging.getLogger("callmetrics.store")


def say(level: int, message: str, *args: object) -> None:
    """Log ``message``; also print it on stderr when no handler would show it.

    The library's loggers carry a NullHandler: without this, a program that never
    configured logging would lose calls without a word.
    """
    _log.log(level, message, *args)
    logger: logging.Logger | None = _log
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) and level >= h.level
               for h in logger.handlers):
            return
        logger = logger.parent if logger.propagate else None
    with contextlib.suppress(Exception):  # stderr closed: nowhere left to say it
        sys.stderr.write("callmetrics: " + (message % args) + "\n")


def program_name() -> str:
    """Return the program's name (``python -m x`` gives ``x``), never its arguments.

    Arguments are left out on purpose: command lines can carry secrets.
    """
    if not sys.argv or not sys.argv[0] or sys.argv[0] == "-c":
        return Path(sys.executable).name
    program = Path(sys.argv[0])
    return program.parent.name if program.name == "__main__.py" else program.name



def run_environment(label: str | None, program: str) -> str:
    """What the run runs on (Python, platform, hot path, argv, host, pid, label), as JSON.

    Its command line is the program's name and how many arguments followed it: the
    arguments themselves are left out, as from ``runs.program`` (they can carry secrets).
    """
    found = process_environment(label)
    extra = len(sys.argv) - 1
    found["argv"] = program + (f" (+{extra} argument{'s' if extra > 1 else ''}, not kept)"
                               if extra > 0 else "")
    return json.dumps(found, ensure_ascii=False)


# Writers still open, closed at interpreter exit (and at a multiprocessing child's exit).
OPEN: set[HookedWriter] = set()
# Connections inherited across fork, kept alive so they are never closed in the child.
ORPHANS: list[sqlite3.Connection] = []
# Writers' locks held by the forking thread across a fork (see _before_fork).
FORK_HELD: list[threading.Lock] = []
_hooks_installed = False


def _close_all() -> None:
    """Close every open writer, all within the longest of their ``store_timeout``s."""
    writers = list(OPEN)
    if not writers:
        return
    deadline = time.monotonic() + max(w.timeout for w in writers)
    for writer in writers:
        try:
            writer.close(deadline)
        except Exception as exc:  # noqa: BLE001  # exit must go on for the other writers
            report_internal_error("closing the store at exit", exc)


def _before_fork() -> None:
    """Keep every writer's flush out of the way across a fork.

    A child inheriting a lock held by a thread it does not have would hang; holding
    the write locks also means no flush is reading the recorder at the fork.
    """
    for writer in sorted((w for w in list(OPEN) if not w.inactive), key=id):
        writer.before_fork()


def _release_fork_locks() -> None:
    while FORK_HELD:
        FORK_HELD.pop().release()


def _after_fork_in_child() -> None:
    _release_fork_locks()  # the child's one thread is the one that took them
    if not OPEN:
        return
    for writer in list(OPEN):
        writer.after_fork_in_child()
    _hook_multiprocessing()


class _Anchor:
    """A weak-referenceable object for multiprocessing's after-fork registry."""


_ANCHOR = _Anchor()
_finalizer: Any = None
_hooked_pid = 0


def _finalize_at_process_exit(_anchor: object = None) -> None:
    """Have multiprocessing close the writers when this process ends (idempotent)."""
    global _finalizer  # noqa: PLW0603  # one finalizer per process
    util = sys.modules.get("multiprocessing.util")
    if util is not None and (_finalizer is None or not _finalizer.still_active()):
        _finalizer = util.Finalize(None, _close_all, exitpriority=100)


def _hook_multiprocessing() -> None:
    """Close the writers at the end of multiprocessing children too.

    Those end with ``os._exit`` (fork, forkserver), so ``atexit`` never runs there,
    but multiprocessing's finalizers do.  A child clears the finalizers it inherited,
    and those registered while its main module was imported, before it runs its
    after-fork callbacks: register the finalizer again from one of those.
    """
    global _hooked_pid  # noqa: PLW0603  # once per process
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    _finalize_at_process_exit()
    if _hooked_pid != os.getpid():
        _hooked_pid = os.getpid()
        util.register_after_fork(_ANCHOR, _finalize_at_process_exit)


def install_exit_hooks() -> None:
    global _hooks_installed  # noqa: PLW0603  # installed once per process
    _hook_multiprocessing()
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_close_all)
    os.register_at_fork(before=_before_fork, after_in_parent=_release_fork_locks,
                        after_in_child=_after_fork_in_child)
