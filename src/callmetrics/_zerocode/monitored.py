"""Zero-code tracking through ``sys.monitoring`` (3.12+): the program's functions untouched.

Instead of replacing functions with wrappers, the code objects of the matching
modules' functions get local monitoring events (``tool``): every call of them is seen
however it is reached (registries, decorators that store the function, closures,
functions defined later, methods), and nothing the program holds changes, so
identity, attributes, frames, tracebacks, ``inspect``, pickling and recursion depth
are plain Python's.

Which code objects: a module's code is walked before it runs (the import hook hands
it over for plain source and bytecode loaders; the script's ``__main__`` code too),
every function's code nested in it included; modules already imported, and those a
custom loader runs, are walked from their functions and classes after they ran.
Lambdas, comprehensions, class bodies and implicit dunder methods are left out, as
is a function decorated with ``track`` (its wrapper records it already).
Stopping tracking a function (pruning, ``uninstrument``) turns its events off.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any, Protocol

from callmetrics._engine.logs import report_internal_error
from callmetrics._zerocode.monitor import GEN_FLAGS
from callmetrics._zerocode.tool import Tool, release

__all__ = ["MonitoredInstrumentation", "module_matches"]

_CO_OPTIMIZED = 0x1  # set on function code, not on module or class bodies
_ASYNC = 0x80 | 0x100  # CO_COROUTINE | CO_ITERABLE_COROUTINE
_SKIPPED = frozenset({"<lambda>", "<genexpr>", "<listcomp>", "<setcomp>", "<dictcomp>"})
_DUNDERS = frozenset({"__init__", "__post_init__", "__call__", "__enter__", "__exit__",
                      "__aenter__", "__aexit__"})
_OWNER = "__callmetrics_owner__"  # wrap.OWNER_ATTRIBUTE: set on track's wrappers



def module_matches(matcher: Callable[[str, str | None], bool], module: object) -> bool:
    """Say whether ``matcher`` (name, file) chooses ``module``: by its name and file."""
    name = getattr(module, "__name__", None)
    origin = getattr(module, "__file__", None)
    return isinstance(name, str) and matcher(name, origin if isinstance(origin, str) else None)

class CodeTracker(Protocol):
    """What monitoring needs of an ``Analytics``."""

    enabled: bool

    @property
    def ends(self) -> Any:
        """How its calls end."""

    def function_stats(self, name: str, event_type: str, module: str, kind: str) -> Any:
        """The aggregates calls of ``name`` are recorded into."""


def _kind(code: types.CodeType) -> str:
    flags = code.co_flags
    if flags & 0x200:
        return "agen"
    if flags & 0x80:
        return "async"
    return "gen" if flags & GEN_FLAGS else "sync"


def _wanted(code: types.CodeType) -> bool:
    name = code.co_name
    if not code.co_flags & _CO_OPTIMIZED or name in _SKIPPED:
        return False
    return not (name.startswith("__") and name.endswith("__") and name not in _DUNDERS)


def _nested(code: types.CodeType) -> list[types.CodeType]:
    """Every code object in ``code``'s tree, ``code`` first."""
    found, todo = [], [code]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return found


def _functions_of(value: object) -> list[Any]:
    """The functions a class attribute holds (methods, property parts, ...)."""
    if isinstance(value, classmethod | staticmethod):
        return [value.__func__]
    if isinstance(value, property):
        return [value.fget, value.fset, value.fdel]
    return [value]


class MonitoredInstrumentation:
    """One ``instrument()`` call tracked through ``sys.monitoring`` (see the module)."""

    def __init__(self, analytics: CodeTracker, matcher: Callable[[str, str | None], bool],
                 event_type: str, tool: Tool) -> None:
        """Track, with ``tool``, the functions of the modules ``matcher`` accepts."""
        self.analytics = analytics
        self.matcher = matcher
        self.event_type = event_type
        self.tool = tool
        self._codes: dict[int, tuple[types.CodeType, str]] = {}  # attached, by id
        self._refused: set[int] = set()  # decorated, dropped, or another's
        self._lock = threading.RLock()
        self._closed = False

    # ------------------------------------------------------------- attaching
    def _label(self, module: str, code: types.CodeType) -> str:
        parts = [p for p in code.co_qualname.split(".") if p != "<locals>"]
        qualname = ".".join(parts) or code.co_qualname
        return qualname if module == "__main__" else f"{module}.{qualname}"

    def _attach(self, code: types.CodeType, module: str) -> None:
        key = id(code)
        if key in self._codes or key in self._refused or not _wanted(code):
            return
        if not self.analytics.enabled:
            return
        name = self._label(module, code)
        stats = self.analytics.function_stats(name, self.event_type, module, _kind(code))
        if self.tool.attach(code, stats, self.analytics):
            self._codes[key] = (code, name)
        else:
            self._refused.add(key)

    def prepare(self, code: types.CodeType, module: str) -> types.CodeType:
        """Track every function defined by ``code`` (a module's code, not yet run)."""
        with self._lock:
            if self._closed:
                return code
            try:
                for nested in _nested(code):
                    self._attach(nested, module)
            except Exception as exc:  # noqa: BLE001  # instrumenting must never break the program
                report_internal_error(f"instrumenting module {module}", exc)
        return code

    def refuse(self, func: object) -> None:
        """Leave alone a function ``track`` decorated: its wrapper records it."""
        inner = func
        if getattr(func, _OWNER, None) is not None:
            inner = getattr(func, "__wrapped__", None) or getattr(func, "_callmetrics_func", None)
        code = getattr(inner, "__code__", None)
        if isinstance(code, types.CodeType):
            with self._lock:
                self._refused.add(id(code))
                if id(code) in self._codes:
                    del self._codes[id(code)]
                    self.tool.detach(code)

    def _value(self, value: object, module: str, namespace: dict[str, Any] | None,
               seen: set[int]) -> None:
        for func in _functions_of(value):
            if getattr(func, _OWNER, None) is not None:
                self.refuse(func)
            elif (isinstance(func, types.FunctionType) and func.__module__ == module
                  and (namespace is None or func.__globals__ is namespace)):
                # defined there (a wrapper that copied the name from elsewhere is not)
                for code in _nested(func.__code__):
                    self._attach(code, module)
            elif (isinstance(func, type) and func.__module__ == module
                  and id(func) not in seen):
                seen.add(id(func))
                for attr in list(vars(func).values()):
                    self._value(attr, module, namespace, seen)

    def wrap_value(self, namespace: object, attr: str, value: object, module: str) -> None:  # noqa: ARG002  # the Wrapper protocol's signature
        """Track the function or class ``value`` (found as ``namespace.attr``)."""
        with self._lock:
            if not self._closed:
                self._value(value, module, getattr(namespace, "__dict__", None), set())

    def wrap_module(self, module: types.ModuleType) -> None:
        """Track the functions and classes ``module`` defines (it has run already)."""
        name = getattr(module, "__name__", None)
        if not isinstance(name, str):
            return
        try:
            with self._lock:
                if self._closed:
                    return
                seen: set[int] = set()
                namespace = vars(module)
                for value in list(namespace.values()):
                    self._value(value, name, namespace, seen)
        except Exception as exc:  # noqa: BLE001  # instrumenting must never break the program
            report_internal_error(f"instrumenting module {name}", exc)

    def matches(self, module: types.ModuleType) -> bool:
        """Say whether ``module`` is one this instrumentation tracks."""
        return module_matches(self.matcher, module)

    # ------------------------------------------------------------- stopping
    def names(self) -> set[str]:
        """Return the recorded names of the functions tracked now."""
        with self._lock:
            return {name for _, name in self._codes.values()}

    def drop(self, names: set[str]) -> int:
        """Stop tracking the functions recorded under ``names``: their events go off.

        Nothing is rebound: every reference to them stays what it was.  Calls already
        under way finish unrecorded.  Returns how many code objects stopped.
        """
        with self._lock:
            gone = [(key, code) for key, (code, name) in self._codes.items() if name in names]
            for key, code in gone:
                del self._codes[key]
                self._refused.add(key)
                self.tool.detach(code)
            return len(gone)

    def flush(self) -> None:
        """Record the generator calls closed without an event so far."""
        self.tool.sweep()

    def undo(self) -> None:
        """Stop tracking everything and give the tool back (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for code, _ in self._codes.values():
                self.tool.detach(code)
            self._codes.clear()
            self.tool.sweep()
        release(self.tool)
