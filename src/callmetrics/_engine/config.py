"""Configuration: validated, immutable settings for an ``Analytics`` instance.

Every field has a documented range (the README's Configuration table); a value out
of it, of the wrong type, or an unknown field raises when the config is built, with
a message naming the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = ["AnalyticsConfig", "DurationThresholds", "coerce_config"]

_T = TypeVar("_T")

# Ranges (inclusive).  Counts stay far inside SQLite's 64-bit INTEGER.
MAX_EVENTS: Final = 10 ** 8  # retained calls: about 10 GB of memory at the limit
MAX_DETAIL_ROWS: Final = 10 ** 6  # rows of the report's detailed table
MAX_THRESHOLD: Final = 1e9  # seconds (31 years)
FLUSH_INTERVAL: Final = (0.01, 86_400.0)  # seconds: 10 ms to a day
STORE_TIMEOUT: Final = (0.0, 600.0)  # seconds a flush, close or exit waits for the store
MAX_FUNCTIONS: Final = 10_000_000  # distinct names before new ones share one entry


def _number(owner: str, name: str, value: object, low: float | None = None,
            high: float = MAX_THRESHOLD) -> float:
    """Check a number from ``low`` to ``high``; no ``low``: positive (0 excluded)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}.{name} must be a number, got {type(value).__name__}")
    if low is None:
        if not 0 < value <= high:  # also rejects NaN
            raise ValueError(f"{owner}.{name} must be a positive number of at most "
                             f"{high:g}, got {value!r}")
    elif not low <= value <= high:
        raise ValueError(f"{owner}.{name} must be from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _integer(owner: str, name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}.{name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= high:
        raise ValueError(f"{owner}.{name} must be from 0 to {high:_}, got {value!r}")
    return value


def _path(owner: str, name: str, value: object) -> None:
    if not isinstance(value, str | Path) or not str(value):
        raise TypeError(f"{owner}.{name} must be a non-empty path, got {value!r}")
    if "\x00" in str(value):
        raise ValueError(f"{owner}.{name} must not contain a NUL character, got {value!r}")


def _flag(owner: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}.{name} must be a bool, got {type(value).__name__}")
    return value


def _text(owner: str, name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{owner}.{name} must be a non-empty str, got {value!r}")
    if "\x00" in value:
        raise ValueError(f"{owner}.{name} must not contain a NUL character, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class DurationThresholds:
    """Upper bounds, in seconds, of the fast, medium and long duration categories."""

    short_max: float = 2.0
    medium_max: float = 5.0
    long_max: float = 10.0

    def __post_init__(self) -> None:
        """Check that every bound is positive and that they are ordered."""
        for name in ("short_max", "medium_max", "long_max"):
            object.__setattr__(
                self, name, _number("duration_thresholds", name, getattr(self, name))
            )
        if not self.short_max <= self.medium_max <= self.long_max:
            raise ValueError(
                "duration_thresholds must satisfy short_max <= medium_max <= long_max, got "
                f"short_max={self.short_max}, medium_max={self.medium_max}, "
                f"long_max={self.long_max}"
            )


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    """Settings of an ``Analytics`` instance; every field is checked on construction."""

    enabled: bool = True
    max_events: int = 10_000
    duration_thresholds: DurationThresholds = field(default_factory=DurationThresholds)
    time_format: str = "%Y-%m-%d %H:%M:%S"
    compact_time: bool = False
    enable_gc_collect: bool = True
    report_dir: str | Path = "analytics"
    report_max_detail_rows: int = 1_000
    store_path: str | Path | None = None
    flush_interval: float = 5.0
    store_timeout: float = 3.0
    max_functions: int = 10_000
    track_concurrency: bool = False
    cpu_time: bool = False

    def __post_init__(self) -> None:
        """Validate every field, naming the one at fault."""
        owner = "AnalyticsConfig"
        _flag(owner, "enabled", self.enabled)
        _integer(owner, "max_events", self.max_events, MAX_EVENTS)
        if isinstance(self.duration_thresholds, Mapping):
            object.__setattr__(
                self, "duration_thresholds", _from_mapping(DurationThresholds,
                                                          self.duration_thresholds,
                                                          "duration_thresholds")
            )
        elif not isinstance(self.duration_thresholds, DurationThresholds):
            raise TypeError(
                f"{owner}.duration_thresholds must be DurationThresholds or a mapping, "
                f"got {type(self.duration_thresholds).__name__}"
            )
        _text(owner, "time_format", self.time_format)
        _flag(owner, "compact_time", self.compact_time)
        _flag(owner, "enable_gc_collect", self.enable_gc_collect)
        _path(owner, "report_dir", self.report_dir)
        _integer(owner, "report_max_detail_rows", self.report_max_detail_rows, MAX_DETAIL_ROWS)
        if self.store_path is not None:
            _path(owner, "store_path", self.store_path)
        object.__setattr__(self, "flush_interval", _number(
            owner, "flush_interval", self.flush_interval, *FLUSH_INTERVAL))
        object.__setattr__(self, "store_timeout", _number(
            owner, "store_timeout", self.store_timeout, *STORE_TIMEOUT))
        # Distinct names recorded before new ones fold into one "<other functions>"
        # entry (0: no cap).
        _integer(owner, "max_functions", self.max_functions, MAX_FUNCTIONS)
        # Count each function's calls in progress (a call observer: off, it costs nothing).
        _flag(owner, "track_concurrency", self.track_concurrency)
        # Measure each sync call's thread CPU time (a call observer: off, it costs nothing).
        _flag(owner, "cpu_time", self.cpu_time)

    def replace(self, **changes: Any) -> AnalyticsConfig:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _from_mapping(cls: type[_T], data: Mapping[Any, Any], where: str) -> _T:
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(key) for key in data if key not in known)
    if unknown:
        raise ValueError(
            f"unknown {where} field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return cls(**data)


def coerce_config(config: object) -> AnalyticsConfig:
    """Turn any accepted configuration shape into an ``AnalyticsConfig``.

    Accepted: None (defaults), an ``AnalyticsConfig``, a mapping of its fields (with a
    nested mapping for ``duration_thresholds``), or an object with an ``analytics``
    attribute holding one of those (the seed's ``AppConfig`` shape).
    """
    if config is None:
        return AnalyticsConfig()
    if isinstance(config, AnalyticsConfig):
        return config
    if isinstance(config, Mapping):
        return _from_mapping(AnalyticsConfig, config, "AnalyticsConfig")
    inner = getattr(config, "analytics", None)
    if inner is not None and inner is not config:
        if isinstance(inner, AnalyticsConfig | Mapping):
            return coerce_config(inner)
        return _from_object(inner)
    raise TypeError(
        "config must be None, an AnalyticsConfig, a mapping, or an object with an "
        f"'analytics' attribute; got {type(config).__name__}"
    )


def _attributes(obj: object) -> set[str]:
    """Return the public data attributes an attribute-style config object sets.

    Read from its dataclass fields, its instance ``__dict__`` (``vars()``) and its
    ``__slots__``; for a class used as a namespace, from its class attributes that are
    not methods.  Names starting with ``_`` are the object's own business.
    """
    names: set[str] = set()
    if dataclasses.is_dataclass(obj):
        names.update(f.name for f in dataclasses.fields(obj))
    if isinstance(obj, type):
        names.update(key for key, value in vars(obj).items()
                     if not callable(value) and not isinstance(value, classmethod
                                                               | staticmethod | property))
    else:
        names.update(getattr(obj, "__dict__", {}))
        for klass in type(obj).__mro__:
            slots = vars(klass).get("__slots__", ())
            names.update((slots,) if isinstance(slots, str) else slots)
    return {name for name in names if not name.startswith("_")}


def _read_object(cls: type[_T], obj: object, where: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(_attributes(obj) - known)
    if unknown:
        raise ValueError(
            f"unknown {where} field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return {name: getattr(obj, name) for name in sorted(known) if hasattr(obj, name)}


def _from_object(obj: object) -> AnalyticsConfig:
    """Read the seed's attribute-style config (``config.analytics.max_events`` ...).

    An attribute that is not a field (a typo such as ``max_event``) is an error, as an
    unknown key of a mapping is.
    """
    values = _read_object(AnalyticsConfig, obj, "AnalyticsConfig")
    thresholds = values.get("duration_thresholds")
    if thresholds is not None and not isinstance(thresholds, DurationThresholds | Mapping):
        values["duration_thresholds"] = _read_object(DurationThresholds, thresholds,
                                                     "duration_thresholds")
    return AnalyticsConfig(**values)
