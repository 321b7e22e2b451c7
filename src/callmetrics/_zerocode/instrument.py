"""Zero-code tracking: which modules, and (3.11, or no free tool id) wrapping them.

On Python 3.12+ the functions are tracked through ``sys.monitoring`` and never
replaced (``monitored``, ``tool``); :func:`make_instrumentation` picks that whenever a
tool id is free.  Otherwise each function is wrapped with ``track``'s wrapper:

- modules already imported are wrapped at once;
- modules imported later are wrapped right after they execute, by one import hook
  (``_hooks``: a meta path finder that hands out a loader proxy);
- the program's own ``__main__`` code is compiled with one extra statement after
  each top-level ``def`` and ``class`` that wraps what was just defined (``_hooks``),
  so the script's functions are tracked before its first call to them.

Each function then gets the very wrapper ``Analytics.track`` builds, so a call costs
what a decorated call costs, and nothing is paid by functions that are not tracked.
"""

from __future__ import annotations

import fnmatch
import os
import site
import sys
import sysconfig
import threading
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from callmetrics._engine.logs import report_internal_error
from callmetrics._engine.wrap import stop_tracking, stoppable
from callmetrics._zerocode.hooks import ACTIVE, install, uninstall_if_idle
from callmetrics._zerocode.monitored import MonitoredInstrumentation, module_matches
from callmetrics._zerocode.tool import acquire, supported

__all__ = [
    "Instrumentation",
    "Matcher",
    "instrument",
    "make_instrumentation",
    "start",
    "stop",
    "uninstrument",
]

# Dunder methods worth timing; the others (``__repr__``, ``__eq__``, ``__hash__``,
# ``__getattr__``...) run implicitly and often, and wrapping them would mostly add noise.
_DUNDERS = frozenset({"__init__", "__post_init__", "__call__", "__enter__", "__exit__",
                      "__aenter__", "__aexit__"})
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])  # the callmetrics package


class Tracker(Protocol):
    """What instrumenting needs of an ``Analytics``: its public ``track``."""

    def track(self, event_type: str, *, name: str | None = None) -> Callable[[Any], Any]:
        """Return the tracking decorator."""


def _installation_dirs() -> tuple[str, ...]:
    """Directories of the standard library and of installed packages (never default)."""
    found: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            found.add(os.path.realpath(path))
    for path in [*site.getsitepackages(), site.getusersitepackages()]:
        found.add(os.path.realpath(path))
    return tuple(sorted(found))


def _under(path: str, dirs: Iterable[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip(os.sep) + os.sep) for d in dirs)


class Matcher:
    """Decides which modules are instrumented: by name globs, or by the folder they live in.

    ``pkg.*`` also matches ``pkg`` itself.  Folder roots never match the standard
    library or installed packages (a virtual environment inside the project folder
    included); name globs match whatever they name.  ``callmetrics`` itself never
    matches.
    """

    def __init__(self, patterns: Iterable[str] = (), exclude: Iterable[str] = (),
                 roots: Iterable[str | Path] = ()) -> None:
        """Match modules named by ``patterns`` or living under ``roots``, minus ``exclude``."""
        self.patterns = tuple(patterns)
        self.exclude = tuple(exclude)
        self.roots = tuple(os.path.realpath(root) for root in roots)
        self._installed = _installation_dirs() if self.roots else ()

    @staticmethod
    def _glob(name: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(name, p) or (p.endswith(".*") and name == p[:-2])
                   for p in patterns)

    def __call__(self, name: str, origin: str | None) -> bool:
        """Say whether the module ``name`` (loaded from file ``origin``) is instrumented."""
        if name == "callmetrics" or name.startswith("callmetrics."):
            return False
        if self._glob(name, self.exclude):
            return False
        if self._glob(name, self.patterns):
            return True
        if not self.roots or not origin:
            return False
        path = os.path.realpath(origin)
        return _under(path, self.roots) and not _under(path, self._installed)


def _is_ours(func: types.FunctionType) -> bool:
    """True for callmetrics' own code, tracking wrappers included: never wrap those."""
    return func.__code__.co_filename.startswith(_PACKAGE_DIR)


class Instrumentation:
    """One ``instrument()`` call: what it matches, and what it replaced (to undo it)."""

    def __init__(self, analytics: Tracker, matcher: Callable[[str, str | None], bool],
                 event_type: str) -> None:
        """Wrap with ``analytics.track(event_type)`` the modules ``matcher`` accepts."""
        self.analytics = analytics
        self.matcher = matcher
        self.event_type = event_type
        # (namespace owner, attribute, original, wrapper), to restore in reverse order.
        self._replaced: list[tuple[object, str, object, object]] = []
        # id(original) -> (original, wrapper, recorded name)
        self._wrappers: dict[int, tuple[object, object, str]] = {}
        self._dropped: set[int] = set()  # ids of originals whose wrapper passes through
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ wrapping
    def _wrapped(self, func: types.FunctionType, name: str) -> Any:
        known = self._wrappers.get(id(func))
        if known is not None and known[0] is func:
            return known[1]  # an alias: the same wrapper (a pass-through once dropped)
        wrapper = self.analytics.track(self.event_type, name=name)(func)
        self._wrappers[id(func)] = (func, wrapper, name)
        if not stoppable(wrapper):  # none left today: every wrapper has a pass-through
            self._dropped.add(id(func))
        return wrapper

    @staticmethod
    def _plain(func: object, module: str, prefix: str) -> TypeGuard[types.FunctionType]:
        # type(), not isinstance(): the C wrapper answers __class__ as a function's
        return (type(func) is types.FunctionType and func.__module__ == module
                and func.__name__ != "<lambda>" and not _is_ours(func)
                and func.__qualname__.startswith(prefix))

    def _replace(self, owner: object, attr: str, old: object, new: object) -> None:
        if new is old:
            return
        try:
            setattr(owner, attr, new)
        except (AttributeError, TypeError) as exc:  # a read-only namespace: leave it be
            report_internal_error(f"instrumenting {attr}", exc)
            return
        self._replaced.append((owner, attr, old, new))

    def _label(self, module: str, qualname: str) -> str:
        return qualname if module == "__main__" else f"{module}.{qualname}"

    def _class(self, cls: type, module: str, seen: set[int]) -> None:
        if id(cls) in seen:
            return
        seen.add(id(cls))
        prefix = cls.__qualname__ + "."
        for attr, value in list(vars(cls).items()):
            if attr.startswith("__") and attr.endswith("__") and attr not in _DUNDERS:
                continue
            func = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            if isinstance(value, property):
                func = value.fget
            if self._plain(func, module, prefix):
                wrapper = self._wrapped(func, self._label(module, func.__qualname__))
                if isinstance(value, property):
                    new: object = value.getter(wrapper)
                elif isinstance(value, classmethod | staticmethod):
                    new = type(value)(wrapper)
                else:
                    new = wrapper
                self._replace(cls, attr, value, new)
            elif (isinstance(value, type) and value.__module__ == module
                  and value.__qualname__.startswith(prefix)):
                self._class(value, module, seen)

    def wrap_value(self, namespace: object, attr: str, value: object, module: str) -> None:
        """Wrap ``value`` (a function or class found as ``namespace.attr``) if it qualifies."""
        with self._lock:
            if self._plain(value, module, ""):
                if "<locals>" not in value.__qualname__:
                    self._replace(namespace, attr, value,
                                  self._wrapped(value, self._label(module, value.__qualname__)))
            elif (isinstance(value, type) and value.__module__ == module
                  and "<locals>" not in value.__qualname__):
                self._class(value, module, set())

    def wrap_module(self, module: types.ModuleType) -> None:
        """Wrap every qualifying function and class defined in ``module``."""
        name = getattr(module, "__name__", None)
        if not isinstance(name, str):
            return
        try:
            for attr, value in list(vars(module).items()):
                self.wrap_value(module, attr, value, name)
        except Exception as exc:  # noqa: BLE001  # instrumenting must never break the program
            report_internal_error(f"instrumenting module {name}", exc)

    def matches(self, module: types.ModuleType) -> bool:
        """Say whether ``module`` is one this instrumentation wraps."""
        return module_matches(self.matcher, module)

    def names(self) -> set[str]:
        """Return the recorded names of the functions wrapped that :meth:`drop` can stop.

        A wrapper without a pass-through (none today) is left out: it stays tracked.
        """
        with self._lock:
            return {name for key, (_, _, name) in self._wrappers.items()
                    if key not in self._dropped}

    def drop(self, names: set[str]) -> int:
        """Stop tracking the functions recorded under ``names``; return how many stopped.

        Each wrapper turns into a pass-through in place (``wrap.stop_tracking``):
        nothing is rebound, so every reference to it keeps working (a registry's keys,
        a list of callbacks, ``is``).  Calls already running finish tracked.
        """
        with self._lock:
            stopped = 0
            for key, (_, wrapper, name) in self._wrappers.items():
                if name in names and key not in self._dropped and stop_tracking(wrapper):
                    self._dropped.add(key)
                    stopped += 1
            return stopped

    def flush(self) -> None:
        """Nothing is held back when wrapping (see ``MonitoredInstrumentation.flush``)."""

    def undo(self) -> None:
        """Put every original back where the wrapper still stands.

        Wrappers held elsewhere (a registry, a list) become pass-throughs.
        """
        with self._lock:
            for _, wrapper, _ in self._wrappers.values():
                stop_tracking(wrapper)
            while self._replaced:
                owner, attr, old, new = self._replaced.pop()
                current = (owner.__dict__ if isinstance(owner, type) else vars(owner)).get(attr)
                if current is new:
                    setattr(owner, attr, old)
            self._wrappers.clear()


def make_instrumentation(analytics: Any, matcher: Callable[[str, str | None], bool],
                         event_type: str) -> Instrumentation | MonitoredInstrumentation:
    """Track through ``sys.monitoring`` where it is there (3.12+) and a tool id is free.

    Else (3.11, or every id taken, said in one line) wrap the functions; also when
    the instance measures thread CPU time (``cpu_time``: a call observer, which the
    ``sys.monitoring`` callbacks do not run).
    """
    if supported() and not getattr(getattr(analytics, "settings", None), "cpu_time", False):
        tool = acquire()
        if tool is not None:
            return MonitoredInstrumentation(analytics, matcher, event_type, tool)
    return Instrumentation(analytics, matcher, event_type)


def start(inst: Instrumentation | MonitoredInstrumentation) -> None:
    """Activate ``inst``: wrap matching modules already imported, and those imported later."""
    ACTIVE.append(inst)
    install()
    for module in list(sys.modules.values()):
        if isinstance(module, types.ModuleType) and inst.matches(module):
            inst.wrap_module(module)


def stop(inst: Instrumentation | MonitoredInstrumentation) -> None:
    """Deactivate ``inst`` and restore what it wrapped."""
    if inst in ACTIVE:
        ACTIVE.remove(inst)
    uninstall_if_idle()
    inst.undo()


_BY_ANALYTICS: dict[int, list[Instrumentation | MonitoredInstrumentation]] = {}


def _texts(what: str, value: str | Iterable[str]) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise TypeError(f"{what} must hold non-empty str globs, got {item!r}")
    return items


def instrument(analytics: Tracker, patterns: Iterable[str], *,
               exclude: str | Iterable[str] = (), event_type: str = "function") -> None:
    """Track every function of the modules matching ``patterns`` (``Analytics.instrument``).

    Raises:
        TypeError, ValueError: for a bad pattern, ``exclude`` or ``event_type``, at once.

    """
    chosen = _texts("patterns", patterns)
    if not chosen:
        raise ValueError("patterns: give at least one module glob, e.g. 'myapp.*'")
    excluded = _texts("exclude", exclude)
    analytics.track(event_type)  # validates event_type, naming it
    inst = make_instrumentation(analytics, Matcher(chosen, excluded), event_type)
    _BY_ANALYTICS.setdefault(id(analytics), []).append(inst)
    start(inst)


def uninstrument(analytics: Tracker) -> None:
    """Undo every ``instrument()`` of ``analytics`` (``Analytics.uninstrument``)."""
    for inst in reversed(_BY_ANALYTICS.pop(id(analytics), [])):
        stop(inst)

