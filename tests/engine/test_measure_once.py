"""A measure() block is recorded once per entry: exited twice, or entered while active."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from callmetrics import Analytics
from callmetrics._analytics import python_measure
from callmetrics._engine.accel import IMPLEMENTATION


def _c_block(analytics: Analytics, name: str) -> Any:
    with analytics.measure(name):  # the first use resolves the name (in Python)
        pass
    analytics.reset()
    block = analytics.measure(name)
    if IMPLEMENTATION == "c":
        assert type(block).__module__ == "callmetrics._engine._speedups"
    return block


def _python_block(analytics: Analytics, name: str) -> Any:
    return python_measure(analytics, name)


BLOCKS = pytest.mark.parametrize("make", [_c_block, _python_block], ids=["c", "python"])


@BLOCKS
def test_a_block_exited_twice_records_once(make: Callable[[Analytics, str], Any]) -> None:
    """The second __exit__ is ignored (the first recorded the block)."""
    analytics = Analytics()
    block = make(analytics, "step")
    with block:
        pass
    block.__exit__(None, None, None)
    block.__exit__(ValueError, ValueError("late"), None)
    assert analytics.call_counts == {"step": 1}
    assert analytics.get_stats()["total_success"] == 1


@BLOCKS
def test_a_block_entered_while_active_raises(make: Callable[[Analytics, str], Any]) -> None:
    """Entering the same block inside itself raises RuntimeError; the outer one records once."""
    analytics = Analytics()
    block = make(analytics, "step")
    with block, pytest.raises(RuntimeError, match=r"measure\('step'\) block entered while "
                                                   r"already active"):
        block.__enter__()
    assert analytics.call_counts == {"step": 1}
    with block:  # exited: usable again
        pass
    assert analytics.call_counts == {"step": 2}


@BLOCKS
def test_an_async_block_exited_twice_records_once(make: Callable[[Analytics, str], Any]) -> None:
    """The same for `async with`."""
    analytics = Analytics()
    block = make(analytics, "step")

    async def main() -> None:
        async with block:
            pass
        await block.__aexit__(None, None, None)

    asyncio.run(main())
    assert analytics.call_counts == {"step": 1}
