"""The C wrappers, built from the engine's parts (with the accelerator; else None).

``accel`` loads the C module and knows nothing of the engine; this module joins the
two: a ``Sink`` holds a function's ``FunctionStats`` and its instance's ends
(``ends.Ends``), and the sync wrapper, the async wrapper's success recorder and
``measure()`` in C are made from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from callmetrics._engine.accel import speedups as _speedups
from callmetrics._engine.callers import key_for
from callmetrics._engine.logs import CACHE_KEY

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats
    from callmetrics._engine.ends import Runtime

__all__ = ["code_sink", "measure_host", "measure_method", "stepping", "success_recorder",
           "sync_builder"]

Builder = Callable[[Callable[..., Any], "FunctionStats", "Runtime"], Callable[..., Any]]
B = TypeVar("B", bound=Builder)


class _Kind(Protocol):
    """What ``measure_host`` reads of a cached block kind (``measure.BlockKind``)."""

    event_type: str
    stats: FunctionStats
    rt: Runtime


def _sink(stats: FunctionStats, rt: Runtime) -> Any:
    """The C ``Sink`` of ``stats``: where its calls go, and the engine's Python ends."""
    ends = rt.ends
    return _speedups.Sink(ends.buffer, stats, rt.observers, ends.cache, CACHE_KEY,
                          ends.log.refresh, ends.after, ends.failed, ends.noted,
                          stats.edges, stats.nested, key_for)


def code_sink(stats: FunctionStats, rt: Runtime) -> Any:
    """Return the C ``Sink`` of ``stats`` (None without the accelerator).

    Zero-code tracking through ``sys.monitoring`` records a code object's calls into it
    (``_speedups.Monitor``), exactly as the C wrapper records a tracked call.
    """
    return None if _speedups is None else _sink(stats, rt)


def sync_builder(python_builder: B) -> B:
    """Return the builder of sync wrappers: the C one when built, else ``python_builder``.

    The C wrapper keeps the Python one and calls it while observers are registered.
    """
    if _speedups is None:
        return python_builder
    track = _speedups.track

    def build(func: Callable[..., Any], stats: FunctionStats, rt: Runtime) -> Any:
        return track(func, _sink(stats, rt), python_builder(func, stats, rt))

    return cast("B", build)


def stepping(func: Callable[..., Any], stats: FunctionStats, rt: Runtime,
             python: Callable[..., Any], kind: str) -> Any:
    """Return the C stepping callable of a coroutine or (async) generator function.

    ``kind`` is ``async``, ``gen`` or ``agen``; None without the accelerator.  Its
    calls return a C proxy timing each step (``steps``, ``asteps``); while observers
    are registered it hands calls to ``python``, the pure-Python stepping callable.
    """
    if _speedups is None:
        return None
    return _speedups.stepping(func, _sink(stats, rt), stats.idle, python, kind)


def success_recorder(stats: FunctionStats, rt: Runtime) -> Callable[[float], None] | None:
    """Return ``ok(start)``, recording a successful call of ``stats`` in C (None: no C).

    The async wrapper ends its calls with it: the clock read, the append and the
    limit check of the C wrapper, in one call from Python.
    """
    if _speedups is None:
        return None
    return cast("Callable[[float], None]", _sink(stats, rt).ok)


def measure_method(cls: type) -> Any:
    """Return ``measure`` in C for instances of ``cls`` (None: no C path).

    The method is made for ``cls`` itself, whose exact instances the interpreter then
    calls it on without binding anything; each instance keeps its state, made by
    :func:`measure_host`, as its ``_measure_host`` attribute.
    """
    if _speedups is None:
        return None
    return _speedups.measure_method(cls)


def measure_host(owner: object, measure: Callable[..., Any],
                 blocks: Mapping[str, _Kind]) -> Any:
    """Return the state of ``owner``'s C ``measure`` (None without the accelerator).

    ``measure`` is the pure-Python method bound to ``owner``, and ``blocks`` where it
    caches what a name resolves to; a name found there with the default event type is
    answered in C from then on (a ``Measure`` recording exactly what the Python one
    records), anything else by ``measure``.
    """
    if _speedups is None:
        return None
    sites: dict[str, Any] = {}

    def fallback(name: str, *args: Any, **kwargs: Any) -> Any:
        made = measure(name, *args, **kwargs)
        if type(name) is str and name not in sites:
            kind = blocks.get(name)
            if kind is not None and kind.event_type == "block":
                sites[name] = _sink(kind.stats, kind.rt)
        return made

    return _speedups.MeasureHost(owner, sites, fallback)
