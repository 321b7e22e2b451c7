"""callmetrics: exact, low-overhead performance analytics for Python functions.

Decorate functions with ``Analytics().track("event type")``; read exact statistics
and percentiles with ``get_stats()``, look at ``print_summary()`` or an HTML report
from ``generate_reports()``.
"""

from callmetrics._analytics import Analytics
from callmetrics._config import AnalyticsConfig, DurationThresholds
from callmetrics._load import load
from callmetrics._records import CallInfo, Event, LoggerContainer, TimingInfo
from callmetrics._sketch import DurationSketch
from callmetrics._state import FunctionSnapshot
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
