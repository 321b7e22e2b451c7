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

from callmetrics._analytics import Analytics
from callmetrics._engine.accel import IMPLEMENTATION
from callmetrics._engine.config import AnalyticsConfig, DurationThresholds
from callmetrics._engine.records import CallInfo, Event, LoggerContainer, TimingInfo
from callmetrics._engine.sketch import DurationSketch
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._version import __version__ as __version__

if TYPE_CHECKING:
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


# accel: which hot path runs, "c" (the optional C accelerator) or "python".
implementation: str = IMPLEMENTATION


def __getattr__(name: str) -> Any:
    """Import the store's and the console's names on first use.

    Programs that only track calls then load neither sqlite3 nor rich.
    """
    if name == "load":
        from callmetrics._load import load  # noqa: PLC0415  # lazy on purpose

        return load
    if name == "StoreError":
        from callmetrics._store import StoreError  # noqa: PLC0415  # lazy on purpose

        return StoreError
    if name in ("get_console", "logging_handler"):
        from callmetrics._outputs import console as _console  # noqa: PLC0415  # lazy on purpose

        return getattr(_console, name)
    raise AttributeError(f"module 'callmetrics' has no attribute {name!r}")
