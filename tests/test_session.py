"""The quiet instance ``callmetrics run`` and the pytest plugin record into."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from callmetrics._session import make_analytics


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every log record made meanwhile, by any logger."""
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record)
        return record

    logging.setLogRecordFactory(counting)
    yield made
    logging.setLogRecordFactory(factory)


def test_failed_calls_are_counted_and_make_no_log_record(
        records: list[logging.LogRecord]) -> None:
    """A program raising as part of its work pays for no record that nobody reads."""
    analytics = make_analytics(None, None)

    @analytics.track("unit", name="probe")
    def probe(n: int) -> int:
        if n % 2:
            raise KeyError(n)
        return n

    for n in range(100):
        with contextlib.suppress(KeyError):
            probe(n)
    assert analytics.call_counts == {"probe": 100}
    assert analytics.success_counts == {"probe": 50}
    assert [r for r in records if r.name.startswith("callmetrics.run")] == []


def test_its_drains_are_bulk_ones() -> None:
    """Counts stay exact while calls of many functions drain in large chunks."""
    analytics = make_analytics(None, None)
    fns = [analytics.track("unit", name=f"f{i}")(lambda: None) for i in range(300)]
    for i in range(50_000):
        fns[i % 300]()
    counts = analytics.call_counts
    assert sum(counts.values()) == 50_000
    assert counts["f0"] == 167
    assert counts["f299"] == 166
