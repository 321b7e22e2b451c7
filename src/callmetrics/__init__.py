"""callmetrics: exact, low-overhead performance analytics for Python functions.

Decorate functions with ``Analytics().track("event type")``; read exact statistics
and percentiles with ``get_stats()``, look at ``print_summary()`` or an HTML report
from ``generate_reports()``.
"""

from typing import TYPE_CHECKING, Any

from callmetrics._analytics import Analytics
from callmetrics._config import AnalyticsConfig, DurationThresholds
from callmetrics._records import CallInfo, Event, LoggerContainer, TimingInfo
from callmetrics._sketch import DurationSketch
from callmetrics._state import FunctionSnapshot

if TYPE_CHECKING:
    from callmetrics._load import load
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
    "load",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import the store's names on first use, so that programs not using it skip sqlite3."""
    if name == "load":
        from callmetrics._load import load  # noqa: PLC0415  # lazy on purpose

        return load
    if name == "StoreError":
        from callmetrics._store import StoreError  # noqa: PLC0415  # lazy on purpose

        return StoreError
    raise AttributeError(f"module 'callmetrics' has no attribute {name!r}")
