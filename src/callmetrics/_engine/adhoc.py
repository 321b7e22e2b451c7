"""The seed's one-off tracked calls: ``execute_sync_wrapped_call`` and its async twins.

``AdHocCalls`` is a part of ``Analytics`` (a mixin): each function called this way
is wrapped once per event type (cached weakly by function) and called through its
wrapper, so that its calls count as those of a decorated function.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from callmetrics._engine.wrap import callable_kind, callable_module, recorded_name, wrap

if TYPE_CHECKING:
    from callmetrics._engine.ends import Runtime
    from callmetrics._engine.recorder import Recorder

__all__ = ["AdHocCalls", "check_expected", "check_text"]


def check_text(what: str, value: object) -> str:
    """Return ``value`` if it is a non-blank str; else raise, naming ``what``."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


def check_expected(expected: object) -> tuple[type[BaseException], ...]:
    """Return ``expected`` (an exception class, or a tuple of them) as a tuple; else raise."""
    types = expected if isinstance(expected, tuple) else (expected,)
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"expected must be an exception class or a tuple of them, "
                            f"got {item!r}")
    return types


class AdHocCalls:
    """One-off tracked calls of functions that were not decorated (the seed's API)."""

    enabled: bool
    _recorder: Recorder
    _adhoc: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Callable[..., Any]]]

    def _decorate(self, func: Any, event_type: str, name: str | None,
                  expected: tuple[type[BaseException], ...] = ()) -> Any:
        raise NotImplementedError  # Analytics.track's

    def _runtime(self) -> Runtime:
        return self  # type: ignore[return-value]  # mixed into Analytics, a Runtime

    def _adhoc_wrapper(self, func: Callable[..., Any], event_type: str,
                       kind: str | None = None) -> Callable[..., Any]:
        check_text("event_type", event_type)
        if not callable(func):
            raise TypeError(f"func must be callable, got {type(func).__name__}")
        key = (event_type, kind or "")
        try:
            per_func = self._adhoc.setdefault(func, {})
        except TypeError:  # not weak-referenceable: wrap afresh each time
            per_func = {}
        wrapper = per_func.get(key)
        if wrapper is None:
            if kind == "async" and callable_kind(func) == "sync":
                wrapper = self._awaiting_wrapper(func, event_type)
            else:
                wrapper = self._decorate(func, event_type, None)
            per_func[key] = wrapper
        return wrapper

    def _awaiting_wrapper(self, func: Callable[..., Any], event_type: str) -> Callable[..., Any]:
        """Track a plain callable that returns an awaitable, timing it to completion."""

        async def call_and_await(*args: Any, **kwargs: Any) -> Any:
            result = func(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        name, module = recorded_name(func), callable_module(func)
        call_and_await.__qualname__ = name
        call_and_await.__module__ = module
        stats = self._recorder.stats_for(name, event_type, module, explicit=False)
        return wrap(call_and_await, "async", stats, self._runtime())  # type: ignore[no-any-return]

    def execute_sync_wrapped_call(
        self, func: Callable[..., Any], event_type: str, *args: Any, **kwargs: Any
    ) -> Any:
        """Call ``func(*args, **kwargs)`` once, tracked, and return its result.

        Unlike the seed, this works (and is tracked) inside a running event loop.
        """
        if not self.enabled:
            return func(*args, **kwargs)
        return self._adhoc_wrapper(func, event_type)(*args, **kwargs)

    async def execute_async_wrapped_call(
        self, func: Callable[..., Any], event_type: str, *args: Any, **kwargs: Any
    ) -> Any:
        """Await ``func(*args, **kwargs)`` once, tracked, and return its result."""
        if not self.enabled:
            result = func(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return await self._adhoc_wrapper(func, event_type, "async")(*args, **kwargs)

    async def execute_wrapped_call(
        self, func: Callable[..., Any], event_type: str, is_async: bool,  # seed API
        *args: Any, **kwargs: Any,
    ) -> Any:
        """Run one tracked call of ``func``, awaiting it when ``is_async``."""
        if is_async:
            return await self.execute_async_wrapped_call(func, event_type, *args, **kwargs)
        return self.execute_sync_wrapped_call(func, event_type, *args, **kwargs)
