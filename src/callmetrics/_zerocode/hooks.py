"""The import hook and the ``__main__`` rewrite behind zero-code tracking.

One meta path finder, shared by every active instrumentation, asks the other finders
for a module's spec and, when some instrumentation wants the module, hands out a
loader proxy that runs the module and then has it wrapped.  The program's own main
code is compiled with a hook call after each top-level ``def`` and ``class``.
"""

from __future__ import annotations

import ast
import sys
import threading
import types
from collections.abc import Callable, Iterable
from importlib.machinery import SourceFileLoader, SourcelessFileLoader
from typing import Any, Protocol, cast

from callmetrics._engine.logs import report_internal_error

__all__ = ["ACTIVE", "MAIN_HOOK", "MainHook", "Preparer", "Wrapper", "decorated", "install",
           "main_code", "run_targets", "uninstall_if_idle"]

# The name under which the ``__main__`` namespace finds the wrap-after-definition hook.
MAIN_HOOK = "__callmetrics_defined__"


class Wrapper(Protocol):
    """What the hooks need of an instrumentation."""

    matcher: Callable[[str, str | None], bool]

    def matches(self, module: types.ModuleType) -> bool:
        """Say whether ``module`` is one to wrap."""

    def wrap_module(self, module: types.ModuleType) -> None:
        """Wrap the module's functions and classes."""

    def wrap_value(self, namespace: object, attr: str, value: object, module: str) -> None:
        """Wrap one function or class found as ``namespace.attr``."""


class Preparer(Protocol):
    """An instrumentation that tracks a module's code objects before the module runs."""

    def matches(self, module: types.ModuleType) -> bool:
        """Say whether ``module`` is one to track."""

    def prepare(self, code: types.CodeType, module: str) -> types.CodeType:
        """Track the functions ``code`` defines; return the code to run."""

    def refuse(self, func: object) -> None:
        """Leave ``func`` alone: a decorator tracks it."""


# ----------------------------------------------------------------- import hook
# Loaders whose exec_module is exactly "get_code, then exec it in the module's namespace".
_PLAIN_LOADERS = (SourceFileLoader, SourcelessFileLoader)
ACTIVE: list[Wrapper] = []
_MAIN_TARGETS: set[str] = set()  # module names runpy is about to run as __main__
_hook_lock = threading.RLock()


def _after_import(module: types.ModuleType) -> None:
    for inst in tuple(ACTIVE):  # a copy: another thread may (un)instrument
        if inst.matches(module):
            inst.wrap_module(module)


def _preparers(module: types.ModuleType) -> list[Preparer]:
    """The active instrumentations that track ``module``'s code before it runs."""
    return [cast("Preparer", inst) for inst in tuple(ACTIVE)
            if hasattr(inst, "prepare") and inst.matches(module)]


def decorated(func: object) -> None:
    """``track`` just wrapped ``func``: zero-code tracking must not count its calls too."""
    for inst in tuple(ACTIVE):
        refuse = getattr(inst, "refuse", None)
        if refuse is not None:
            refuse(func)


class _Loader:
    """Stands in for a module's loader: runs it, then wraps the module's functions."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> types.ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: types.ModuleType) -> None:
        preparers = _preparers(module)
        if preparers and type(self._loader) in _PLAIN_LOADERS:
            # What the loader's own exec_module does, with the code tracked first, so
            # that functions registered or called while the module runs are seen too.
            code = self._loader.get_code(module.__name__)
            if code is None:
                raise ImportError(f"cannot load {module.__name__!r}", name=module.__name__)
            for inst in preparers:
                code = inst.prepare(code, module.__name__)
            exec(code, module.__dict__)  # noqa: S102  # running the module is the point
        else:
            self._loader.exec_module(module)
        _after_import(module)

    def get_code(self, fullname: str) -> types.CodeType | None:
        """Return the module's code; for the module run as ``__main__``, with the hooks."""
        code: types.CodeType | None = self._loader.get_code(fullname)
        if fullname in _MAIN_TARGETS and code is not None:
            preparers = [inst for inst in tuple(ACTIVE) if hasattr(inst, "prepare")]
            if preparers:  # sys.monitoring: the code runs unchanged
                for inst in preparers:
                    if inst.matcher("__main__", None):
                        code = cast("Preparer", inst).prepare(code, "__main__")
                return code
            source = self._loader.get_source(fullname)
            if source is not None:
                code = main_code(source, code.co_filename)
        return code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Finder:
    """A meta path finder that asks the others, then puts a ``_Loader`` in the spec."""

    @staticmethod
    def find_spec(fullname: str, path: Any, target: Any = None) -> Any:
        for finder in list(sys.meta_path):
            if isinstance(finder, _Finder) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            loader = spec.loader
            if loader is not None and hasattr(loader, "exec_module") and (
                    fullname in _MAIN_TARGETS
                    or any(inst.matcher(fullname, spec.origin) for inst in list(ACTIVE))):
                spec.loader = _Loader(loader)  # type: ignore[assignment]  # a loader by protocol
            return spec
        return None

    @staticmethod
    def invalidate_caches() -> None:
        """Nothing cached here."""


_FINDER = _Finder()



def install() -> None:
    """Put the finder first in ``sys.meta_path`` (once)."""
    with _hook_lock:
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)


def uninstall_if_idle() -> None:
    """Take the finder out of ``sys.meta_path`` when no instrumentation is left."""
    with _hook_lock:
        if not ACTIVE and _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)


# ------------------------------------------------------------- the __main__ code
_COMPOUND_BODIES = ("body", "orelse", "finalbody")


def _insert_hooks(body: list[ast.stmt]) -> None:
    out: list[ast.stmt] = []
    for stmt in body:
        out.append(stmt)
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            call = ast.Expr(ast.Call(ast.Name(MAIN_HOOK, ast.Load()),
                                     [ast.Constant(stmt.name)], []))
            out.append(ast.copy_location(call, stmt))
            continue
        for field in _COMPOUND_BODIES:
            inner = getattr(stmt, field, None)
            if isinstance(inner, list):
                _insert_hooks(inner)
        for handler in getattr(stmt, "handlers", ()):
            _insert_hooks(handler.body)
        for case in getattr(stmt, "cases", ()):
            _insert_hooks(case.body)
    body[:] = out


def main_code(source: str | bytes, filename: str) -> types.CodeType:
    """Compile the program's main code with a wrap hook after each top-level definition.

    Line numbers are kept, so tracebacks and debuggers point at the program's own lines.
    """
    tree = ast.parse(source, filename)
    _insert_hooks(tree.body)
    ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec", dont_inherit=True)


class MainHook:
    """Called by the program's main code after each top-level definition."""

    def __init__(self, inst: Wrapper) -> None:
        """Wrap definitions with ``inst`` (when it matches ``__main__``)."""
        self._inst = inst

    def __call__(self, name: str) -> None:
        """Wrap the function or class just bound to ``name`` in the caller's globals."""
        try:
            namespace = sys._getframe(1).f_globals  # the defining module
            module = namespace.get("__name__", "__main__")
            if not self._inst.matcher(module, None):
                return
            value = namespace.get(name)
            self._inst.wrap_value(_Namespace(namespace), name, value, module)
        except Exception as exc:  # noqa: BLE001  # instrumenting must never break the program
            report_internal_error("instrumenting __main__", exc)


class _Namespace:
    """Attribute access over a globals dict, so ``wrap_value`` can set and restore names."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        object.__setattr__(self, "__dict__", namespace)


def run_targets(names: Iterable[str]) -> None:
    """Have the import hook add the main hooks to these modules when runpy runs them."""
    with _hook_lock:
        _MAIN_TARGETS.update(names)
    install()
