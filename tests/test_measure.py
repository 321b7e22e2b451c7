"""measure(): blocks recorded like calls."""
from __future__ import annotations

import asyncio
import time

import pytest

from callmetrics import (
    Analytics,
)
from core_helpers import only_event

SEED_KEYS = ["Function", "Event Type", "Start Time", "End Time", "Duration (s)", "Success",
             "Error", "Message", "Location"]
DAY = 86_400.0
# asyncio may run a timer up to its clock resolution early; durations of tracked calls
# that await asyncio.sleep(t) are checked against t less this margin.
ASYNCIO_EARLY = 1e-3



def test_measure_block(analytics: Analytics) -> None:
    """A `with measure(...)` block is recorded like a call of that name and event type."""
    with analytics.measure("load config", event_type="IO"):
        time.sleep(0.01)
    event = only_event(analytics)
    assert (event["Function"], event["Event Type"], event["Success"]) == ("load config", "IO",
                                                                         True)
    assert event.duration >= 0.01
    with analytics.measure("load config", event_type="IO"):
        pass
    assert analytics.call_counts == {"load config": 2}


def test_measure_block_failure_propagates(analytics: Analytics) -> None:
    """An exception leaving a measured block propagates and records a failure."""
    error = OSError("missing")
    with pytest.raises(OSError, match="missing") as info, analytics.measure("read"):
        raise error
    assert info.value is error
    event = only_event(analytics)
    assert (event["Event Type"], event["Error"]) == ("block", "OSError")


def test_measure_async_block(analytics: Analytics) -> None:
    """`async with measure(...)` records the block; a failure propagates."""

    async def main() -> None:
        async with analytics.measure("fetch all", event_type="API"):
            await asyncio.sleep(0.01)
        with pytest.raises(TimeoutError):
            async with analytics.measure("fetch all", event_type="API"):
                raise TimeoutError

    asyncio.run(main())
    assert analytics.call_counts == {"fetch all": 2}
    assert analytics.success_counts == {"fetch all": 1}
    assert [e["Error"] for e in analytics.events] == [None, "TimeoutError"]


def test_measure_rejects_bad_names(analytics: Analytics) -> None:
    """measure() fails at once for an empty name or event type, naming the field."""
    with pytest.raises(ValueError, match="name"):
        analytics.measure("")
    with pytest.raises(ValueError, match="event_type"):
        analytics.measure("ok", event_type="")
    with pytest.raises(TypeError, match="name"):
        analytics.measure(None)  # type: ignore[arg-type]  # the bad input under test


# ---------------------------------------------------------------------- disabled
