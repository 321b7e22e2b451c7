"""Per-function aggregates and the details kept for each failed call (issue 10)."""

from __future__ import annotations

import contextlib
import gc
import json
import weakref

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callmetrics import Analytics, LoggerContainer
from callmetrics._engine.aggregate import MESSAGE_LIMIT, FunctionStats, failure_of
from core_helpers import only_event


class BoomError(Exception):
    """An exception whose message spans lines."""




def raise_it(exc: BaseException) -> None:
    """Raise ``exc`` here (the innermost frame the location must name)."""
    raise exc


def test_failure_keeps_message_and_innermost_location(analytics: Analytics) -> None:
    """A failed call's event carries the message and where the exception was raised."""

    @analytics.track("unit", name="lookup")
    def lookup(user: int) -> None:
        raise_it(ValueError(f"user {user} not found"))

    with pytest.raises(ValueError, match="user 7 not found"):
        lookup(7)
    event = only_event(analytics)
    assert event["Error"] == "ValueError"
    assert event["Message"] == "user 7 not found"
    location = event["Location"]
    assert location.endswith(f":{raise_it.__code__.co_firstlineno + 2} in raise_it")
    assert location.startswith(__file__)
    retained = analytics.retained()[0]
    assert (retained.message, retained.location) == (event["Message"], location)
    assert json.loads(json.dumps(list(analytics.events)))[0]["Message"] == "user 7 not found"


def test_successful_calls_have_no_details(analytics: Analytics) -> None:
    """Message and Location are None for a call that returned."""
    analytics.track("unit", name="ok")(lambda: None)()
    event = only_event(analytics)
    assert (event["Message"], event["Location"]) == (None, None)


def test_long_multiline_message_is_one_bounded_line() -> None:
    """A message is cut to 500 characters, on one line, with the full length noted."""
    stats = FunctionStats("f", "unit", "m")
    text = "line one\nline two\t" + "x" * 2000
    failed = failure_of(stats, BoomError(text))
    assert failed.message is not None
    assert "\n" not in failed.message
    assert failed.message.startswith("line one line two x")
    assert failed.message.endswith(f"… ({len(text):,} characters)")
    assert len(failed.message) < MESSAGE_LIMIT + 30
    assert failure_of(stats, BoomError("")).message is None


@given(st.text(max_size=1200))
def test_any_message_becomes_one_bounded_line(text: str) -> None:
    """Whatever the text, the kept message is a single line within the bound."""
    failed = failure_of(FunctionStats("f", "unit", "m"), BoomError(text))
    if failed.message is not None:
        assert "\n" not in failed.message
        assert "\r" not in failed.message
        assert len(failed.message) <= MESSAGE_LIMIT + 30


def test_a_message_whose_str_raises_is_described(analytics: Analytics) -> None:
    """str(exc) raising does not break the call: the message says so."""

    class UnprintableError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    @analytics.track("unit", name="bad")
    def bad() -> None:
        raise UnprintableError

    with pytest.raises(UnprintableError):
        bad()
    assert only_event(analytics)["Message"] == "<str() raised RuntimeError>"


def test_the_exception_and_its_frames_are_not_kept_alive(quiet: LoggerContainer) -> None:
    """Recording a failure keeps neither the exception nor its traceback's frames."""
    analytics = Analytics(loggers=quiet)  # no log record holds the exception either
    refs: list[weakref.ref[BaseException]] = []

    @analytics.track("unit", name="bad")
    def bad() -> None:
        exc = BoomError("gone")
        refs.append(weakref.ref(exc))
        raise exc

    with contextlib.suppress(BoomError):
        bad()
    gc.collect()
    assert refs[0]() is None
    assert only_event(analytics)["Message"] == "gone"


def test_failure_details_survive_as_the_slowest_call(analytics: Analytics) -> None:
    """The slowest call ever, when it failed, keeps its message in get_stats()."""

    @analytics.track("unit", name="slow")
    def slow(fail: bool) -> None:
        if fail:
            sum(range(200_000))
            raise BoomError("took long")

    slow(False)
    with pytest.raises(BoomError):
        slow(True)
    slowest = analytics.get_stats()["slowest"]
    assert (slowest["Error"], slowest["Message"]) == ("BoomError", "took long")
