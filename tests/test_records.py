"""Events: the seed keys, times, JSON."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from callmetrics import (
    Analytics,
)
from core_helpers import feed, only_event

SEED_KEYS = ["Function", "Event Type", "Start Time", "End Time", "Duration (s)", "Success",
             "Error", "Message", "Location"]
DAY = 86_400.0
# asyncio may run a timer up to its clock resolution early; durations of tracked calls
# that await asyncio.sleep(t) are checked against t less this margin.
ASYNCIO_EARLY = 1e-3



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
