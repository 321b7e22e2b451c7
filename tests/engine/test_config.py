"""Configuration: defaults, the accepted shapes, and bad values naming their field."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmetrics import Analytics, AnalyticsConfig, DurationThresholds, LoggerContainer
from callmetrics._engine.config import coerce_config


def test_defaults() -> None:
    """With no config every field has the issue's default."""
    analytics = Analytics()
    cfg = analytics.config
    assert cfg.enabled is True
    assert cfg.max_events == 10_000
    assert cfg.duration_thresholds == DurationThresholds(2.0, 5.0, 10.0)
    assert cfg.time_format == "%Y-%m-%d %H:%M:%S"
    assert cfg.compact_time is False
    assert cfg.enable_gc_collect is True
    assert cfg.report_dir == "analytics"
    assert cfg.report_max_detail_rows == 1000
    assert cfg.store_path is None
    assert cfg.flush_interval == 5.0
    assert (analytics.short_max, analytics.medium_max, analytics.long_max) == (2.0, 5.0, 10.0)
    assert analytics.max_events == 10_000


def test_config_is_immutable() -> None:
    """An AnalyticsConfig cannot be changed in place; replace() gives a checked copy."""
    cfg = AnalyticsConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_events = 3  # type: ignore[misc]  # the mutation under test
    assert cfg.replace(max_events=3).max_events == 3
    with pytest.raises(ValueError, match="max_events"):
        cfg.replace(max_events=-3)


def test_config_object_is_used_as_is() -> None:
    """An AnalyticsConfig is taken as given."""
    cfg = AnalyticsConfig(max_events=12, compact_time=True)
    analytics = Analytics(cfg)
    assert analytics.config == cfg
    assert analytics.max_events == 12
    assert analytics.compact_time is True


def test_mapping_with_nested_thresholds() -> None:
    """A mapping of fields, with a nested mapping for duration_thresholds, is accepted."""
    analytics = Analytics({
        "enabled": True,
        "max_events": 50,
        "duration_thresholds": {"short_max": 0.5, "medium_max": 1, "long_max": 4},
        "time_format": "%H:%M",
        "compact_time": True,
        "enable_gc_collect": False,
    })
    assert analytics.max_events == 50
    assert (analytics.short_max, analytics.medium_max, analytics.long_max) == (0.5, 1.0, 4.0)
    assert isinstance(analytics.settings.duration_thresholds, DurationThresholds)
    assert analytics.time_format == "%H:%M"
    assert analytics.compact_time is True
    assert analytics.enable_gc_collect is False


def test_partial_nested_mapping_keeps_other_defaults() -> None:
    """Thresholds not named in a nested mapping keep their defaults."""
    analytics = Analytics({"duration_thresholds": {"short_max": 1.0}})
    assert (analytics.short_max, analytics.medium_max, analytics.long_max) == (1.0, 5.0, 10.0)


def test_app_config_shaped_objects() -> None:
    """An object with an `analytics` attribute (the seed's AppConfig) is read."""
    seed_style = SimpleNamespace(analytics=SimpleNamespace(
        enabled=True,
        max_events=77,
        duration_thresholds=SimpleNamespace(short_max=1.0, medium_max=3.0, long_max=9.0),
        time_format="%Y",
        compact_time=False,
        enable_gc_collect=False,
    ))
    analytics = Analytics(seed_style)
    assert analytics.max_events == 77
    assert (analytics.short_max, analytics.medium_max, analytics.long_max) == (1.0, 3.0, 9.0)
    assert analytics.time_format == "%Y"
    assert analytics.enable_gc_collect is False
    assert Analytics(SimpleNamespace(analytics=AnalyticsConfig(max_events=3))).max_events == 3
    assert Analytics(SimpleNamespace(analytics={"max_events": 4})).max_events == 4
    sparse = Analytics(SimpleNamespace(analytics=SimpleNamespace(compact_time=True)))
    assert sparse.compact_time is True
    assert sparse.max_events == 10_000


def test_max_events_argument_overrides_config() -> None:
    """max_events given to Analytics wins over the config's value, 0 included."""
    assert Analytics({"max_events": 5}, max_events=9).max_events == 9
    assert Analytics(AnalyticsConfig(max_events=5), max_events=0).max_events == 0
    assert Analytics({"max_events": 5}, max_events=9).settings.max_events == 9


def test_disabled_flag() -> None:
    """enabled=False is reflected on the instance."""
    assert Analytics({"enabled": False}).enabled is False


def test_coerce_config_accepts_each_shape() -> None:
    """coerce_config turns every accepted shape into an AnalyticsConfig."""
    assert coerce_config(None) == AnalyticsConfig()
    assert coerce_config({"max_events": 1}).max_events == 1
    assert coerce_config(SimpleNamespace(analytics={"max_events": 2})).max_events == 2


@pytest.mark.parametrize(
    ("config", "error", "field"),
    [
        ({"max_events": -1}, ValueError, "max_events"),
        ({"max_events": 1.5}, TypeError, "max_events"),
        ({"max_events": "10"}, TypeError, "max_events"),
        ({"max_events": True}, TypeError, "max_events"),
        ({"enabled": "yes"}, TypeError, "enabled"),
        ({"enabled": 1}, TypeError, "enabled"),
        ({"compact_time": None}, TypeError, "compact_time"),
        ({"enable_gc_collect": "no"}, TypeError, "enable_gc_collect"),
        ({"time_format": 5}, TypeError, "time_format"),
        ({"time_format": ""}, TypeError, "time_format"),
        ({"duration_thresholds": 3}, TypeError, "duration_thresholds"),
        ({"duration_thresholds": {"short_max": 0}}, ValueError, "short_max"),
        ({"duration_thresholds": {"medium_max": -1}}, ValueError, "medium_max"),
        ({"duration_thresholds": {"long_max": math.inf}}, ValueError, "long_max"),
        ({"duration_thresholds": {"short_max": math.nan}}, ValueError, "short_max"),
        ({"duration_thresholds": {"short_max": "1"}}, TypeError, "short_max"),
        ({"duration_thresholds": {"short_max": True}}, TypeError, "short_max"),
        ({"duration_thresholds": {"short_max": 6.0}}, ValueError, "short_max <= medium_max"),
        ({"duration_thresholds": {"medium_max": 11.0}}, ValueError, "medium_max <= long_max"),
        ({"duration_thresholds": {"shortmax": 1.0}}, ValueError, "shortmax"),
        ({"max_event": 5}, ValueError, "max_event"),
        ({"report_dir": ""}, TypeError, "report_dir"),
        ({"report_max_detail_rows": -2}, ValueError, "report_max_detail_rows"),
        ({"store_path": 3}, TypeError, "store_path"),
        ({"flush_interval": 0}, ValueError, "flush_interval"),
        # Extremes that passed validation and broke later (issue 12, item 6).
        ({"flush_interval": 1e300}, ValueError, "flush_interval"),
        ({"flush_interval": 1e-300}, ValueError, "flush_interval"),
        ({"flush_interval": 0.001}, ValueError, "flush_interval"),
        ({"flush_interval": 86_401}, ValueError, "flush_interval"),
        ({"max_events": 2 ** 63}, ValueError, "max_events"),
        ({"max_events": 10 ** 8 + 1}, ValueError, "max_events"),
        ({"report_max_detail_rows": 10 ** 30}, ValueError, "report_max_detail_rows"),
        ({"store_path": "runs\x00.db"}, ValueError, "store_path"),
        ({"report_dir": "out\x00put"}, ValueError, "report_dir"),
        ({"time_format": "%Y\x00"}, ValueError, "time_format"),
        ({"duration_thresholds": {"long_max": 1e300}}, ValueError, "long_max"),
        ({"store_timeout": -1}, ValueError, "store_timeout"),
        ({"store_timeout": 601}, ValueError, "store_timeout"),
        ({"store_timeout": math.nan}, ValueError, "store_timeout"),
        ({"store_timeout": "3"}, TypeError, "store_timeout"),
    ],
)
def test_bad_values_name_their_field(
    config: dict[str, Any], error: type[Exception], field: str
) -> None:
    """Each bad configuration value raises ValueError or TypeError naming the field."""
    with pytest.raises(error, match=field):
        Analytics(config)


def test_unknown_keys_are_all_named() -> None:
    """Every unknown key is named in the error, not just the first."""
    with pytest.raises(ValueError, match="colour") as info:
        Analytics({"colour": "red", "size": 3, "max_events": 1})
    assert "size" in str(info.value)


def test_bad_max_events_argument() -> None:
    """A negative or non-integer max_events argument is rejected, naming the field."""
    with pytest.raises(ValueError, match="max_events"):
        Analytics(max_events=-1)
    with pytest.raises(TypeError, match="max_events"):
        Analytics(max_events=2.5)  # type: ignore[arg-type]  # the bad input under test


def test_bad_seed_style_object_names_its_field() -> None:
    """An AppConfig-shaped object's bad values are named like a mapping's."""
    bad = SimpleNamespace(analytics=SimpleNamespace(max_events=-4))
    with pytest.raises(ValueError, match="max_events"):
        Analytics(bad)
    unordered = SimpleNamespace(analytics=SimpleNamespace(
        duration_thresholds=SimpleNamespace(short_max=5.0, medium_max=1.0, long_max=9.0)))
    with pytest.raises(ValueError, match="short_max"):
        Analytics(unordered)


@pytest.mark.parametrize("config", [5, "max_events=3", ["max_events"], object()])
def test_unsupported_config_shapes(config: object) -> None:
    """Something that is not a config, mapping or AppConfig-shaped object is a TypeError."""
    with pytest.raises(TypeError, match="config"):
        Analytics(config)


def test_threshold_ordering_allows_equal_bounds() -> None:
    """Equal thresholds are ordered (short_max <= medium_max <= long_max)."""
    thresholds = DurationThresholds(1.0, 1.0, 1.0)
    assert (thresholds.short_max, thresholds.medium_max, thresholds.long_max) == (1.0, 1.0, 1.0)


def test_thresholds_checked_when_built_directly() -> None:
    """DurationThresholds and AnalyticsConfig check their values when constructed."""
    with pytest.raises(ValueError, match="long_max"):
        DurationThresholds(1.0, 2.0, 0.0)
    with pytest.raises(ValueError, match="medium_max <= long_max"):
        DurationThresholds(1.0, 3.0, 2.0)
    with pytest.raises(ValueError, match="max_events"):
        AnalyticsConfig(max_events=-1)


def test_store_and_report_paths_accept_paths(tmp_path: Path) -> None:
    """report_dir and store_path take str or Path."""
    cfg = AnalyticsConfig(report_dir=tmp_path, store_path=str(tmp_path / "s.db"))
    assert cfg.report_dir == tmp_path


def test_bad_loggers() -> None:
    """The loggers must be a LoggerContainer of three logging.Logger objects."""
    with pytest.raises(TypeError, match="loggers"):
        Analytics(loggers=object())  # type: ignore[arg-type]  # the bad input under test
    bad: Any = "error"
    with pytest.raises(TypeError, match="error_logger"):
        LoggerContainer(logging.getLogger("a"), bad, logging.getLogger("b"))


@pytest.mark.parametrize(("field", "value"), [
    ("flush_interval", 0.01), ("flush_interval", 86_400), ("max_events", 10 ** 8),
    ("report_max_detail_rows", 10 ** 6), ("store_timeout", 0), ("store_timeout", 600),
])
def test_each_range_includes_its_ends(field: str, value: float) -> None:
    """The documented bounds themselves are accepted."""
    assert getattr(AnalyticsConfig().replace(**{field: value}), field) == value


def test_a_typo_in_an_attribute_style_config_is_named() -> None:
    """``config.analytics.max_event = 5`` (a typo) is an error, not silently ignored."""
    typo = SimpleNamespace(analytics=SimpleNamespace(max_event=5, enabled=True))
    with pytest.raises(ValueError, match="max_event;"):
        Analytics(typo)
    nested = SimpleNamespace(analytics=SimpleNamespace(
        duration_thresholds=SimpleNamespace(short_max=1.0, shortmax=2.0)))
    with pytest.raises(ValueError, match=r"duration_thresholds field.*shortmax"):
        Analytics(nested)


def test_attribute_style_configs_of_every_shape_are_checked() -> None:
    """Slotted objects, dataclasses and classes used as namespaces are read and checked."""

    class Slotted:
        __slots__ = ("max_events", "max_evnts")

        def __init__(self) -> None:
            self.max_events = 5
            self.max_evnts = 6

    @dataclass
    class Settings:
        max_events: int = 7
        colour: str = "red"

    class Namespace:
        max_events = 8
        compact_time = True

        def helper(self) -> int:  # methods are not config fields
            return 1

    with pytest.raises(ValueError, match="max_evnts"):
        Analytics(SimpleNamespace(analytics=Slotted()))
    with pytest.raises(ValueError, match="colour"):
        Analytics(SimpleNamespace(analytics=Settings()))
    assert Analytics(SimpleNamespace(analytics=Namespace)).max_events == 8
    private = SimpleNamespace(max_events=9, _cache={})
    assert Analytics(SimpleNamespace(analytics=private)).max_events == 9


_ANY = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
        | st.binary(max_size=4) | st.lists(st.integers(), max_size=2))
_FIELDS = [f.name for f in dataclasses.fields(AnalyticsConfig)]


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from([*_FIELDS, "max_event", "flushinterval"]), _ANY,
                       max_size=3))
def test_any_config_is_accepted_within_range_or_refused_naming_a_field(
        values: dict[str, object]) -> None:
    """Whatever the values, the config is built within its ranges or refused naming a field."""
    message = None
    try:
        config = coerce_config(values)
    except (TypeError, ValueError) as exc:
        message = str(exc)
    if message is not None:
        assert any(name in message for name in values)
        return
    assert 0 <= config.max_events <= 10 ** 8
    assert 0 <= config.report_max_detail_rows <= 10 ** 6
    assert 0.01 <= config.flush_interval <= 86_400
    assert 0 <= config.store_timeout <= 600
    assert all("\x00" not in str(path) for path in (config.report_dir, config.store_path))


def test_a_nul_in_the_store_argument_names_store_path() -> None:
    """``Analytics(store=...)`` is checked like the field it overrides."""
    with pytest.raises(ValueError, match="store_path"):
        Analytics(store="runs\x00.db")
