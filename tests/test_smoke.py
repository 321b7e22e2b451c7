"""The package imports and records a call."""

from callmetrics import Analytics


def test_records_a_call(analytics: Analytics) -> None:
    """A decorated function's call is counted."""

    @analytics.track("unit")
    def double(x: int) -> int:
        return x * 2

    assert double(2) == 4
    assert analytics.call_counts == {"test_records_a_call.double": 1}
