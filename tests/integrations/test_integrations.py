"""What the web middlewares share: bounded names, the failure rule, per-status counts."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callmetrics import Analytics
from callmetrics.integrations import (
    FailedStatus,
    RequestLog,
    check_event_type,
    default_failure,
    fail_on,
    request_name,
    status_line,
)

STANDARD = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}


@given(st.text(max_size=20), st.one_of(st.none(), st.sampled_from(["/a", "/users/{id}"])))
def test_names_are_bounded_whatever_the_method(method: str, template: str | None) -> None:
    verb, _, rest = request_name(method, template).partition(" ")
    assert verb in STANDARD | {"OTHER"}
    assert rest == (template if template is not None else "<unmatched>")


@given(st.integers(min_value=100, max_value=999))
def test_only_5xx_fail_by_default(status: int) -> None:
    assert default_failure(status) == (500 <= status <= 599)


def test_a_failing_status_carries_its_status_line() -> None:
    with pytest.raises(FailedStatus, match=r"^503 Service Unavailable$") as info:
        fail_on(503, default_failure)
    assert info.value.status == 503
    assert str(FailedStatus(599)) == "599 Unknown Status"
    fail_on(404, default_failure)  # not a failure: nothing raised
    fail_on(0, lambda _: True)  # no response: not judged by status


@given(st.integers(min_value=100, max_value=999))
def test_every_status_has_one_status_line(status: int) -> None:
    """Failures and successes describe a status the same way."""
    line = status_line(status)
    assert line == str(FailedStatus(status))
    assert line.startswith(f"{status} ")
    assert line != f"{status} "


def test_a_status_that_is_not_a_failure_is_noted_on_the_block() -> None:
    analytics = Analytics()
    for status in (200, 404, 0):
        with analytics.measure("GET /x", event_type="http") as block:
            fail_on(status, default_failure, block)
    assert [(e.success, e.message) for e in analytics.events] == [
        (True, "200 OK"), (True, "404 Not Found"), (True, None)]  # 0: no response started


def test_status_counts_are_exact_across_threads() -> None:
    log = RequestLog()

    def hammer() -> None:
        for i in range(2_000):
            log.add("GET /x", 200 if i % 2 else 404)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.status_counts == {("GET /x", 200): 8_000, ("GET /x", 404): 8_000}


@pytest.mark.parametrize("bad", ["", "  ", None, 3])
def test_bad_event_types_are_refused(bad: object) -> None:
    with pytest.raises(TypeError, match="event_type"):
        check_event_type(bad)
