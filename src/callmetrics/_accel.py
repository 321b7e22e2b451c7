"""Which hot path runs: the optional C accelerator, or the pure-Python wrappers.

``callmetrics._speedups`` (built from ``_speedups.c`` when a compiler is present)
provides the sync wrapper and the ``measure()`` block in C.  It is used unless

- it was not built (no compiler: ``pip install`` says so in one line),
- ``CALLMETRICS_PURE_PYTHON=1`` is set in the environment when callmetrics is imported,
- the interpreter is a free-threaded build (the C code relies on the GIL).

``IMPLEMENTATION`` says which (``"c"`` or ``"python"``), ``REASON`` why Python.

The C types know nothing of the engine: a ``Sink`` holds a ``Buffer`` of
``(key, start, duration)`` calls and the engine's callbacks for the rare cases (a
failure, a full buffer, success logging, observers).  The functions below build
them from the engine's parts; the engine takes calls out with ``Buffer.take()``.
"""

from __future__ import annotations

import os
import sysconfig
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from callmetrics._logging import CACHE_KEY

if TYPE_CHECKING:
    from callmetrics._state import FunctionStats
    from callmetrics._wrap import Runtime

__all__ = [
    "IMPLEMENTATION",
    "REASON",
    "measure_factory",
    "pull",
    "wrap_sync",
]


def _load() -> tuple[Any, str]:
    if os.environ.get("CALLMETRICS_PURE_PYTHON") == "1":
        return None, "CALLMETRICS_PURE_PYTHON=1 is set"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None, "free-threaded CPython: the C accelerator relies on the GIL"
    try:
        from callmetrics import _speedups  # noqa: PLC0415  # optional, built by setup.py
    except ImportError:
        return None, "the C accelerator was not built"
    return _speedups, ""


_speedups, REASON = _load()
IMPLEMENTATION: Final[str] = "python" if _speedups is None else "c"

# Calls a function's C buffer holds before it asks the engine to drain: the same
# bound as the pure-Python buffer (BUFFER_LIMIT calls).
_LIMIT_CALLS = 4096


# ------------------------------------------------------------------------------
# Engine seam.  This is written against main's engine: every FunctionStats owns its
# buffers (``stats.buf`` of [start, duration, ...] floats, ``stats.errs``) and the
# instance drains them all at once.  Each tracked function gets one C Buffer (in
# ``_Sinks``); ``pull(rt)`` moves their calls into ``stats.buf`` before a drain.
# ------------------------------------------------------------------------------


class _Sinks:
    """The C sinks of one runtime (an ``Analytics``), one per tracked function."""

    __slots__ = ("by_stats", "sites")

    def __init__(self) -> None:
        self.by_stats: dict[int, tuple[FunctionStats, Any]] = {}
        self.sites: dict[str, Any] = {}


_registry: weakref.WeakKeyDictionary[Any, _Sinks] = weakref.WeakKeyDictionary()


def _sinks(rt: object) -> _Sinks:
    found = _registry.get(rt)
    if found is None:
        found = _registry[rt] = _Sinks()
    return found


def _sink(stats: FunctionStats, rt: Runtime) -> Any:
    """Return the one C sink the calls of ``stats`` go to (created on first use)."""
    from callmetrics._wrap import finisher  # noqa: PLC0415  # _wrap imports this module

    sinks = _sinks(rt)
    found = sinks.by_stats.get(id(stats))
    if found is not None:
        return found[1]
    log = rt.call_logger
    name, event_type = stats.name, stats.event_type
    _, failed, _ = finisher(stats, rt)

    def on_success(duration: float) -> None:
        log.success(name, event_type, duration)

    sink = _speedups.Sink(
        buffer=_speedups.Buffer(_LIMIT_CALLS),
        key=stats,
        observers=rt.observers,
        cache=log.cache,
        cache_key=CACHE_KEY,
        refresh=log.refresh,
        on_success=on_success,
        on_failure=failed,
        on_full=rt.drain_soon,
    )
    sinks.by_stats[id(stats)] = (stats, sink)
    return sink


def pull(rt: object) -> None:
    """Move the calls buffered in C for ``rt`` into the engine's buffers.

    Call it at the start of every drain, holding the instance's lock.
    """
    sinks = _registry.get(rt)
    if sinks is None:
        return
    for stats, sink in sinks.by_stats.values():
        buffer = sink.buffer
        if len(buffer):
            _, starts, durations = buffer.take()
            flat: list[float] = [0.0] * (2 * len(starts))
            flat[0::2] = starts
            flat[1::2] = durations
            stats.buf.extend(flat)


# ------------------------------------------------------------------------------
# What the wrappers and ``measure()`` ask for.
# ------------------------------------------------------------------------------


def wrap_sync(func: Callable[..., Any], stats: FunctionStats, rt: Runtime,
              observed: Callable[..., Any]) -> Any:
    """Return the C wrapper of a sync ``func``, or None when the C path is off.

    ``observed`` is the pure-Python wrapper, which the C one calls while observers
    are registered (they are rare and need Python anyway).
    """
    if _speedups is None:
        return None
    return _speedups.track(func, _sink(stats, rt), observed)


def measure_factory(owner: Any, measure: Callable[..., Any],
                    resolve: Callable[[str], FunctionStats | None]) -> Any:
    """Return ``measure`` with a C fast path for names seen before, or ``measure`` itself.

    Args:
        owner: the ``Analytics`` instance; its ``enabled`` is read on every call.
        measure: the pure-Python ``measure(name, *, event_type="block")``.
        resolve: returns the stats a block ``name`` records into when a cached C
            path gives exactly what ``measure(name)`` gives (no warning, enabled),
            None otherwise.

    """
    if _speedups is None:
        return measure
    sinks = _sinks(owner)
    sites = sinks.sites

    def fallback(name: str, *args: Any, **kwargs: Any) -> Any:
        made = measure(name, *args, **kwargs)
        if not args and not kwargs and isinstance(name, str) and name not in sites:
            stats = resolve(name)
            if stats is not None:
                sites[name] = _sink(stats, owner)
        return made

    return _speedups.MeasureFactory(owner, sites, fallback)
