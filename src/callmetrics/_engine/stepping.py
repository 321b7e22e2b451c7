"""The callable replacing a tracked coroutine, generator or async generator function.

Its calls return the original's object in a step proxy (``steps`` for coroutines and
generators, ``asteps`` for async generators), which times each step.  With the
accelerator it is the C ``_speedups.stepping`` (src/speedups/stepping.c), which
hands its calls to the pure-Python ``Stepping`` below while observers are registered.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from callmetrics._engine import sinks
from callmetrics._engine.asteps import AsyncGeneratorSteps
from callmetrics._engine.steps import CoroutineSteps, GeneratorSteps

if TYPE_CHECKING:
    from callmetrics._engine.aggregate import FunctionStats
    from callmetrics._engine.ends import Runtime

__all__ = ["PROXIES", "Stepping", "wrap_steps"]

# The pure-Python proxy of each kind of function.
PROXIES: dict[str, type[Any]] = {
    "async": CoroutineSteps, "gen": GeneratorSteps, "agen": AsyncGeneratorSteps,
}


class Stepping:
    """The pure-Python callable replacing a coroutine, generator or async generator function.

    It binds as a function does; ``wrap`` gives it the original's ``__code__``,
    ``__defaults__`` and ``__kwdefaults__`` so that ``inspect.iscoroutinefunction``,
    ``isgeneratorfunction`` and ``isasyncgenfunction`` answer as for the original.
    """

    __slots__ = ("__dict__", "__weakref__", "_callmetrics_tracking", "_func", "_rt", "_stats",
                 "_steps")

    def __init__(self, func: Callable[..., Any], stats: FunctionStats, rt: Runtime,
                 kind: str) -> None:
        """Wrap ``func``, a function of ``kind`` ``async``, ``gen`` or ``agen``."""
        self._func = func
        self._stats = stats
        self._rt = rt
        self._steps = PROXIES[kind]
        # False (wrap.stop_tracking): a pass-through, returning the original's own object.
        self._callmetrics_tracking = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the original; return its coroutine or (async) generator in a proxy."""
        if not self._callmetrics_tracking:
            return self._func(*args, **kwargs)
        return self._steps(self._func(*args, **kwargs), self._stats, self._rt)

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        """Bind as a function does: a bound method on an instance, itself on the class."""
        return self if obj is None else types.MethodType(self, obj)

    def __reduce__(self) -> str:
        """Pickle by reference (module and qualified name), as functions are."""
        return str(self.__dict__.get("__qualname__", ""))

    def __repr__(self) -> str:
        """Name the function."""
        return f"<tracked function {self.__dict__.get('__qualname__', '?')}>"


def wrap_steps(func: Callable[..., Any], stats: FunctionStats, rt: Runtime, kind: str) -> Any:
    """Return the stepping callable of ``func``: the C one when built, else the Python one."""
    stats.stepped = True
    python = Stepping(func, stats, rt, kind)
    made = sinks.stepping(func, stats, rt, python, kind)
    return python if made is None else made
