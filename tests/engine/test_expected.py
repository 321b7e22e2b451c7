"""Expected exceptions: a call that raises one counts as a success noted with its name."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from callmetrics import Analytics


def test_a_tracked_call_raising_an_expected_exception_is_a_success() -> None:
    """KeyError declared expected: a success noted 'expected KeyError'; it still propagates."""
    analytics = Analytics()

    @analytics.track("lookup", name="find", expected=(KeyError, IndexError))
    def find(table: dict[str, int], key: str) -> int:
        return table[key]

    assert find({"a": 1}, "a") == 1
    with pytest.raises(KeyError):
        find({}, "b")
    assert analytics.success_counts == {"find": 2}
    stats = analytics.get_stats()
    assert (stats["total_success"], stats["expected_exceptions"]) == (2, 1)
    assert [(e.success, e.error, e.message) for e in analytics.events] == [
        (True, None, None), (True, None, "expected KeyError")]


def test_other_exceptions_still_fail() -> None:
    """Only the declared classes (and their subclasses) are expected."""
    analytics = Analytics()

    @analytics.track("lookup", name="parse", expected=LookupError)
    def parse(text: str) -> int:
        if text == "missing":
            raise KeyError(text)  # a LookupError
        return int(text)

    with pytest.raises(KeyError):
        parse("missing")
    with pytest.raises(ValueError, match="invalid literal"):
        parse("x")
    stats = analytics.get_stats()
    assert (stats["total_calls"], stats["total_success"], stats["expected_exceptions"]) == (
        2, 1, 1)
    assert [e.error for e in analytics.events] == [None, "ValueError"]


def test_generators_and_coroutines_honour_expected() -> None:
    """StopIteration-style control flow in a generator, a probe in a coroutine."""
    analytics = Analytics()

    @analytics.track("gen", name="items", expected=RuntimeError)
    def items() -> Iterator[int]:
        yield 1
        raise RuntimeError("done early")

    @analytics.track("co", name="probe", expected=ValueError)
    async def probe() -> int:
        raise ValueError("absent")

    with pytest.raises(RuntimeError):
        list(items())
    with pytest.raises(ValueError, match="absent"):
        asyncio.run(probe())
    assert analytics.success_counts == {"items": 1, "probe": 1}
    assert analytics.get_stats()["expected_exceptions"] == 2


def test_a_measured_block_may_expect_exceptions() -> None:
    """measure(expected=...), also once the name is answered by the cached (C) path."""
    analytics = Analytics()
    for _ in range(3):
        with pytest.raises(KeyError), analytics.measure("probe", expected=KeyError):
            raise KeyError("x")
    with pytest.raises(KeyError), analytics.measure("probe"):  # declared once: kept
        raise KeyError("y")
    stats = analytics.get_stats()
    assert (stats["total_success"], stats["expected_exceptions"]) == (4, 4)
    analytics.reset()
    assert analytics.get_stats()["expected_exceptions"] == 0


def test_a_bad_expected_fails_at_once() -> None:
    analytics = Analytics()
    with pytest.raises(TypeError, match="expected must be an exception class"):
        analytics.track("x", expected=("KeyError",))  # type: ignore[arg-type]  # on purpose
    with pytest.raises(TypeError, match="expected must be an exception class"):
        analytics.measure("x", expected=int)  # type: ignore[arg-type]  # on purpose
