"""callmetrics' ``sys.monitoring`` tool (3.12+): one tool id, six callbacks, local events.

Only the code objects being tracked get events (``set_local_events``): ``PY_START``
and ``PY_RETURN``, plus ``PY_RESUME`` and ``PY_YIELD`` for generators and coroutines
(their steps: active time).  ``PY_UNWIND`` and ``PY_THROW`` cannot be set locally;
they are on for the whole program, and cost only when an exception leaves a frame
or is thrown into a generator or coroutine (one code-extra read when untracked).
The callbacks are the accelerator's ``Monitor`` when it is built, else the
pure-Python twin (``monitor.Monitor``).

The tool id is the first free of 3, 4, 2 (``PROFILER_ID``, which cProfile takes on
3.12+) and 5; never the debugger's (0) or coverage.py's (1).  When none is free,
:func:`acquire` says so in one line and returns None: zero-code tracking then wraps.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from typing import Any

from callmetrics._engine import sinks
from callmetrics._engine.accel import speedups as _speedups
from callmetrics._engine.logs import report_internal_error
from callmetrics._zerocode.monitor import GEN_FLAGS, Monitor, PySink

__all__ = ["TOOL_NAME", "Tool", "acquire", "release", "supported"]

TOOL_NAME = "callmetrics"
# sys.monitoring (3.12+); typed Any, since mypy checks against 3.11, which lacks it.
_MON: Any = getattr(sys, "monitoring", None)
_CANDIDATES = (3, 4, 2, 5)


def supported() -> bool:
    """Whether zero-code tracking can use ``sys.monitoring`` here (3.12+, not turned off).

    ``CALLMETRICS_ZEROCODE=wrap`` asks for the wrappers instead (comparisons, benchmarks).
    """
    return sys.version_info >= (3, 12) and os.environ.get("CALLMETRICS_ZEROCODE") != "wrap"


def _report(where: str, exc: BaseException) -> None:
    report_internal_error(f"zero-code tracking ({where})", exc)


class Tool:
    """The tool id held, and the monitor whose callbacks are registered under it."""

    def __init__(self, tool_id: int) -> None:
        """Register the callbacks under ``tool_id`` (already taken by :func:`acquire`)."""
        mon = _MON
        self.id = tool_id
        self.events = mon.events
        disable = mon.DISABLE
        self.monitor: Any = (Monitor(_report, disable) if _speedups is None
                             else _speedups.Monitor(_report, disable))
        events = self.events
        for event, callback in ((events.PY_START, self.monitor.py_start),
                                (events.PY_RETURN, self.monitor.py_return),
                                (events.PY_YIELD, self.monitor.py_yield),
                                (events.PY_RESUME, self.monitor.py_resume),
                                (events.PY_THROW, self.monitor.py_throw),
                                (events.PY_UNWIND, self.monitor.py_unwind)):
            mon.register_callback(tool_id, event, callback)
        mon.set_events(tool_id, events.PY_UNWIND | events.PY_THROW)
        self.users = 0

    def attach(self, code: types.CodeType, stats: Any, rt: Any) -> bool:
        """Record the calls of ``code`` into ``stats`` (of runtime ``rt``); False if taken."""
        sink = sinks.code_sink(stats, rt) if _speedups is not None else PySink(stats, rt.ends)
        if not self.monitor.attach(code, sink):
            return False
        events = self.events
        wanted = events.PY_START | events.PY_RETURN
        if code.co_flags & GEN_FLAGS:  # stepped: its active time is known
            wanted |= events.PY_YIELD | events.PY_RESUME
            stats.stepped = True
        _MON.set_local_events(self.id, code, wanted)
        return True

    def detach(self, code: types.CodeType) -> None:
        """Stop recording ``code``'s calls: its events are off, nothing is rebound."""
        _MON.set_local_events(self.id, code, 0)
        self.monitor.detach(code)

    def sweep(self, everything: bool = False) -> int:
        """Record the generator calls closed without an event (see ``monitor``)."""
        return int(self.monitor.sweep(everything))

    def close(self) -> None:
        """Unregister the callbacks and free the tool id."""
        mon = _MON
        mon.set_events(self.id, 0)
        events = self.events
        for event in (events.PY_START, events.PY_RETURN, events.PY_YIELD, events.PY_RESUME,
                      events.PY_THROW, events.PY_UNWIND):
            mon.register_callback(self.id, event, None)
        mon.free_tool_id(self.id)


_TOOL: Tool | None = None
_lock = threading.Lock()


def acquire() -> Tool | None:
    """Return the tool (taking a free id the first time), or None when no id is free."""
    global _TOOL  # noqa: PLW0603  # one tool per process, shared by every instrumentation
    with _lock:
        if _TOOL is None:
            for tool_id in _CANDIDATES:
                if _MON.get_tool(tool_id) is None:
                    _MON.use_tool_id(tool_id, TOOL_NAME)
                    _TOOL = Tool(tool_id)
                    break
            else:
                taken = ", ".join(f"{i}: {_MON.get_tool(i)}" for i in _CANDIDATES)
                sys.stderr.write(f"callmetrics: no free sys.monitoring tool id ({taken}); "
                                 "tracking by wrapping functions instead\n")
                return None
        _TOOL.users += 1
        return _TOOL


def release(tool: Tool) -> None:
    """Give the tool back; the last user frees its id."""
    global _TOOL  # noqa: PLW0603  # see acquire
    with _lock:
        tool.users -= 1
        if tool.users <= 0 and _TOOL is tool:
            tool.sweep(everything=True)
            tool.close()
            _TOOL = None
