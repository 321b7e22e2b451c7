"""Events: the seed keys, times, JSON."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callmetrics import Analytics, Event
from callmetrics._engine.records import format_time, make_event
from core_helpers import feed, only_event

SEED_KEYS = ["Function", "Event Type", "Start Time", "End Time", "Duration (s)", "Success",
             "Error", "Message", "Location"]
DAY = 86_400.0



def test_events_have_seed_keys_and_values(analytics: Analytics) -> None:
    """Each event is a mapping with the seed's keys plus Error, holding the call's facts."""

    @analytics.track("unit")
    def work() -> None:
        time.sleep(0.01)

    before, began = time.time(), time.perf_counter()
    work()
    elapsed, after = time.perf_counter() - began, time.time()
    event = only_event(analytics)
    assert list(event) == SEED_KEYS
    assert len(event) == len(SEED_KEYS)
    assert event["Function"] == "test_events_have_seed_keys_and_values.work"
    assert event["Event Type"] == "unit"
    assert isinstance(event["Duration (s)"], float)
    assert 0.01 <= event["Duration (s)"] <= elapsed
    assert before - 0.5 <= event.start <= after + 0.5
    assert event.end == pytest.approx(event.start + event.duration)
    assert event["Success"] is True
    assert event["Error"] is None
    assert event["Start Time"] == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.start))
    assert event["End Time"] == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.end))
    with pytest.raises(KeyError):
        event["Nope"]


@pytest.fixture
def half_hour_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with local time at UTC+05:30, so local and UTC times differ."""
    monkeypatch.setenv("TZ", "IST-05:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("half_hour_zone")
def test_event_times_use_time_format_in_local_time() -> None:
    """Start/End Time are formatted with time_format in local time."""
    analytics = Analytics({"time_format": "%d/%m/%Y %H.%M.%S"})
    feed(analytics, "f", [0.5], events=1)
    start = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    analytics.restore([], [(start, 0.5, None, "f")])
    event = analytics.events[0]
    assert event.start == start
    assert event["Start Time"] == "15/11/2023 03.43.20"
    assert event["End Time"] == "15/11/2023 03.43.20"


@pytest.mark.usefixtures("half_hour_zone")
def test_compact_time_formats_hours_minutes_seconds() -> None:
    """With compact_time, Start/End Time read as %H:%M:%S in local time."""
    analytics = Analytics({"compact_time": True, "time_format": "%Y"})
    analytics.restore([], [(1_700_000_000.0, 2.0, None, "f")])
    event = analytics.events[0]
    assert event["Start Time"] == "03:43:20"
    assert event["End Time"] == "03:43:22"


# ------------------------------------------------------ seed compatibility (issue 10)


def test_events_and_stats_are_json_serialisable_as_they_are(analytics: Analytics) -> None:
    """json.dumps takes get_stats() as it is, and the events view once listed."""

    @analytics.track("unit", name="mixed")
    def mixed(fail: bool) -> None:
        if fail:
            raise ValueError("nope")

    mixed(False)
    with pytest.raises(ValueError, match="nope"):
        mixed(True)
    events = json.loads(json.dumps(list(analytics.events)))
    assert [e["Success"] for e in events] == [True, False]
    assert events[1]["Error"] == "ValueError"
    stats = json.loads(json.dumps(analytics.get_stats()))
    assert stats["total_calls"] == 2
    assert isinstance(analytics.events[0], dict)


def test_event_repr_uses_the_shared_duration_format() -> None:
    """repr(Event) formats the duration as every output does (µs, three digits)."""
    event = Event("f", "unit", 0.0, 1.2e-6, None)
    assert repr(event) == "Event('f', 'unit', 1.20 µs, ok)"
    failed = Event("f", "unit", 0.0, 0.25, "KeyError")
    assert repr(failed) == "Event('f', 'unit', 250 ms, KeyError)"


def test_event_repr_says_why_a_call_failed() -> None:
    """A failure's repr carries its message (quoted, cut at 60 characters): why, at a glance."""
    failed = Event("f", "unit", 0.0, 0.25, "KeyError", message="user 7 not found")
    assert repr(failed) == "Event('f', 'unit', 250 ms, KeyError: 'user 7 not found')"
    long = Event("f", "unit", 0.0, 0.25, "E", message="x" * 500)
    assert repr(long) == f"Event('f', 'unit', 250 ms, E: '{'x' * 59}…')"
    hostile = Event("f", "unit", 0.0, 0.25, "E", message="\x1b[2J")
    assert "\x1b" not in repr(hostile)


def test_event_attributes_match_its_keys() -> None:
    """The attributes read what the keys hold; end is start + duration."""
    event = Event("f", "unit", 100.0, 2.5, "E", message="m", location="x.py:1 in f")
    assert (event.function, event.event_type, event.duration) == ("f", "unit", 2.5)
    assert (event.error, event.message, event.location) == ("E", "m", "x.py:1 in f")
    assert (event.start, event.end, event.success) == (100.0, 102.5, False)


def test_make_event_equals_the_constructor() -> None:
    """The bulk builder gives the same event as the public constructor."""
    built = make_event("f", "unit", 1_796_000_000.25, 0.5, "E", "%H:%M:%S", "m", "loc")
    assert built == Event("f", "unit", 1_796_000_000.25, 0.5, "E", compact=True, message="m",
                          location="loc")
    assert built.start == 1_796_000_000.25


@given(st.floats(0, 4e9, allow_nan=False))
def test_cached_time_format_matches_strftime(timestamp: float) -> None:
    """The per-second cache gives exactly what time.strftime gives."""
    fmt = "%Y-%m-%d %H:%M:%S"
    assert format_time(timestamp, fmt, compact=False) == time.strftime(
        fmt, time.localtime(math.floor(timestamp)))
