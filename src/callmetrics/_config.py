"""Configuration: validated, immutable settings for an ``Analytics`` instance."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["AnalyticsConfig", "DurationThresholds", "coerce_config"]

_T = TypeVar("_T")
_MAX_FUNCTIONS = 10_000_000


def _number(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}.{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}.{name} must be a positive finite number, got {value!r}")
    return float(value)


def _integer(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}.{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{owner}.{name} must be >= 0, got {value!r}")
    return value


def _flag(owner: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}.{name} must be a bool, got {type(value).__name__}")
    return value


def _text(owner: str, name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{owner}.{name} must be a non-empty str, got {value!r}")
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
    max_functions: int = 10_000

    def __post_init__(self) -> None:
        """Validate every field, naming the one at fault."""
        owner = "AnalyticsConfig"
        _flag(owner, "enabled", self.enabled)
        _integer(owner, "max_events", self.max_events)
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
        if not isinstance(self.report_dir, str | Path) or not str(self.report_dir):
            raise TypeError(f"{owner}.report_dir must be a path, got {self.report_dir!r}")
        _integer(owner, "report_max_detail_rows", self.report_max_detail_rows)
        if self.store_path is not None and (
            not isinstance(self.store_path, str | Path) or not str(self.store_path)
        ):
            raise TypeError(f"{owner}.store_path must be a path or None, got {self.store_path!r}")
        object.__setattr__(
            self, "flush_interval", _number(owner, "flush_interval", self.flush_interval)
        )
        # Distinct names recorded before new ones fold into one "<other functions>"
        # entry (0: no cap).
        if _integer(owner, "max_functions", self.max_functions) > _MAX_FUNCTIONS:
            raise ValueError(f"{owner}.max_functions must be at most {_MAX_FUNCTIONS:,}, "
                             f"got {self.max_functions!r}")

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


def _from_object(obj: object) -> AnalyticsConfig:
    """Read the seed's attribute-style config (``config.analytics.max_events`` ...)."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(AnalyticsConfig):
        if hasattr(obj, f.name):
            values[f.name] = getattr(obj, f.name)
    thresholds = values.get("duration_thresholds")
    if thresholds is not None and not isinstance(thresholds, DurationThresholds | Mapping):
        values["duration_thresholds"] = {
            f.name: getattr(thresholds, f.name)
            for f in dataclasses.fields(DurationThresholds)
            if hasattr(thresholds, f.name)
        }
    return AnalyticsConfig(**values)
