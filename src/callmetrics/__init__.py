"""callmetrics: exact, low-overhead performance analytics for Python functions.

Decorate functions with ``Analytics().track("event type")``; read exact statistics
and percentiles with ``get_stats()``, look at ``print_summary()`` or an HTML report
from ``generate_reports()``.

PYTEST_DONT_REWRITE: pytest marks the packages of its plugins (ours is
``callmetrics.integrations.pytest_plugin``) for assertion rewriting; under
``callmetrics run -m pytest`` this package is imported before pytest starts, and
this marker keeps pytest from warning about it (an error under ``filterwarnings =
error``).  callmetrics has no assertions to rewrite.
"""

from typing import TYPE_CHECKING, Any

from callmetrics._engine.accel import IMPLEMENTATION
from callmetrics._version import __version__ as __version__

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics
    from callmetrics._engine.config import AnalyticsConfig, DurationThresholds
    from callmetrics._engine.records import CallInfo, Event, LoggerContainer, TimingInfo
    from callmetrics._engine.sketch import DurationSketch
    from callmetrics._engine.state import FunctionSnapshot
    from callmetrics._load import load
    from callmetrics._outputs.console import get_console, logging_handler
    from callmetrics._store import StoreError

__all__ = [
    "Analytics",
    "AnalyticsConfig",
    "CallInfo",
    "DurationSketch",
    "DurationThresholds",
    "Event",
    "FunctionSnapshot",
    "LoggerContainer",
    "StoreError",
    "TimingInfo",
    "get_console",
    "implementation",
    "load",
    "logging_handler",
]


# accel: which hot path runs, "c" (the optional C accelerator) or "python".  Decided
# here, when callmetrics is imported (CALLMETRICS_PURE_PYTHON is read then).
implementation: str = IMPLEMENTATION

# Where each public name is defined.  They are imported on first use, so that the
# command line (``python -m callmetrics diff``, which imports this package first)
# loads only what its command needs, and programs that only track calls load neither
# sqlite3 nor rich.  ``from callmetrics import Analytics`` and ``callmetrics.Analytics``
# work as if they were imported here.
_HOMES = {
    "Analytics": "callmetrics._analytics",
    "AnalyticsConfig": "callmetrics._engine.config",
    "DurationThresholds": "callmetrics._engine.config",
    "CallInfo": "callmetrics._engine.records",
    "Event": "callmetrics._engine.records",
    "LoggerContainer": "callmetrics._engine.records",
    "TimingInfo": "callmetrics._engine.records",
    "DurationSketch": "callmetrics._engine.sketch",
    "FunctionSnapshot": "callmetrics._engine.state",
    "load": "callmetrics._load",
    "StoreError": "callmetrics._store.schema",
    "get_console": "callmetrics._outputs.console",
    "logging_handler": "callmetrics._outputs.console",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (then it is an attribute)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'callmetrics' has no attribute {name!r}")
    from importlib import import_module  # noqa: PLC0415  # only on first use of a name

    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
