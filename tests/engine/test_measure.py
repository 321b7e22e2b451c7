"""measure(): blocks recorded like calls."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import threading
import time
import weakref
from typing import Any

import pytest

from callmetrics import Analytics, LoggerContainer
from callmetrics._analytics import python_measure
from core_helpers import only_event

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


def test_fresh_measure_objects_count_every_block(analytics: Analytics) -> None:
    """A new measure("x") per block, nested and repeated, counts each block once."""
    for _ in range(3000):
        with analytics.measure("outer"), analytics.measure("inner"):
            pass
    assert analytics.call_counts == {"outer": 3000, "inner": 3000}
    assert analytics.get_stats("outer")["total_success"] == 3000


def test_measure_from_threads_counts_exactly(analytics: Analytics) -> None:
    """Blocks measured from several threads at once are all counted."""

    def run() -> None:
        for _ in range(2000):
            with analytics.measure("shared"):
                pass

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert analytics.call_counts == {"shared": 8000}


def test_measure_with_another_event_type_keeps_the_first(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """Asking for another event type under a known name warns and keeps the first."""
    analytics = Analytics(loggers=loggers)
    with analytics.measure("step", event_type="IO"):
        pass
    with caplog.at_level(logging.WARNING), analytics.measure("step", event_type="CPU"):
        pass
    assert analytics.call_counts == {"step": 2}
    assert [e["Event Type"] for e in analytics.events] == ["IO", "IO"]
    assert any("already tracked as event type" in r.getMessage() for r in caplog.records)


def test_measure_on_a_disabled_instance_does_nothing() -> None:
    """A disabled instance's measure() records nothing and lets exceptions through."""
    analytics = Analytics({"enabled": False})
    with analytics.measure("x"):
        pass
    with pytest.raises(KeyError), analytics.measure("x"):
        raise KeyError
    assert analytics.call_counts == {}
    with analytics.measure("x") as block:
        block.message = "noted"  # accepted, and ignored with everything else
    assert block.message == "noted"
    assert analytics.call_counts == {}


# -------------------------------------------------------------------------- notes
def test_a_block_s_message_is_kept_on_its_successful_event(analytics: Analytics) -> None:
    """``block.message`` is recorded with a successful block; it counts as a success."""
    for hit in (True, False, True):
        with analytics.measure("fetch", event_type="IO") as block:
            assert block.message is None
            if hit:
                block.message = "cache hit"
    with analytics.measure("fetch", event_type="IO") as block:
        block.message = 3  # not a str: str() of it at exit
    assert [(e.success, e.error, e.message) for e in analytics.events] == [
        (True, None, "cache hit"), (True, None, None), (True, None, "cache hit"),
        (True, None, "3")]
    assert analytics.success_counts == {"fetch": 4}


def test_an_exception_s_message_wins_over_the_block_s(analytics: Analytics) -> None:
    """When the block raises, the failure is recorded with the exception's message."""
    block = analytics.measure("read", event_type="IO")
    block.message = "about to read"  # set before the block starts: the same note
    with pytest.raises(OSError, match="missing"), block:
        raise OSError("missing")
    event = only_event(analytics)
    assert (event.success, event.error, event.message) == (False, "OSError", "missing")


def test_an_async_block_s_message_is_kept(analytics: Analytics) -> None:
    async def main() -> None:
        async with analytics.measure("fetch all", event_type="API") as block:
            await asyncio.sleep(0)
            block.message = "3 pages"

    asyncio.run(main())
    assert only_event(analytics).message == "3 pages"


def test_a_default_type_block_s_message_is_kept_on_every_call(analytics: Analytics) -> None:
    """With the default event type (answered in C after the first block when built)."""
    for i in range(3):
        with analytics.measure("render") as block:
            assert block.message is None
            block.message = f"page {i}"
    with analytics.measure("render"):
        pass

    def fail() -> None:
        with analytics.measure("render") as block:
            block.message = "ignored"
            raise KeyError("gone")

    with pytest.raises(KeyError):
        fail()
    assert [(e.success, e.message) for e in analytics.events] == [
        (True, "page 0"), (True, "page 1"), (True, "page 2"), (True, None),
        (False, "'gone'")]
    assert analytics.success_counts == {"render": 4}


def test_a_note_set_on_the_block_object_reaches_observers_path(analytics: Analytics) -> None:
    """A note set on the object ``measure()`` returned is kept while observers watch too."""
    seen: list[tuple[object, BaseException | None]] = []

    class Watcher:
        def on_start(self, stats: object) -> object:
            return stats

        def on_end(self, token: object, stats: object, duration: float,
                   error: BaseException | None) -> None:
            assert token is stats
            assert duration >= 0
            seen.append((getattr(stats, "name", None), error))

    with analytics.measure("render"):
        pass
    analytics.observers.append(Watcher())
    block = analytics.measure("render")
    with block:
        block.message = "watched"
    analytics.observers.clear()
    assert [e.message for e in analytics.events] == [None, "watched"]
    assert seen == [("render", None)]


def test_a_note_whose_str_reassigns_the_note_is_recorded_safely(analytics: Analytics) -> None:
    """A note's ``__str__`` may change ``block.message`` while the block ends."""

    class Fickle:
        def __init__(self, block: Any) -> None:
            self.block = block

        def __str__(self) -> str:
            self.block.message = None  # drops the only other reference to this note
            return "fickle"

    for _ in range(3):  # the C Measure answers from the second block of a name on
        with analytics.measure("render") as block:
            block.message = Fickle(block)
    assert [e.message for e in analytics.events] == ["fickle"] * 3


def test_blocks_entered_by_exit_stack_and_by_hand_are_recorded(analytics: Analytics) -> None:
    """``ExitStack`` calls ``type(cm).__enter__(cm)``; some code calls the methods itself."""

    def stacked_failure() -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(analytics.measure("stacked"))
            raise ValueError("inside")

    for _ in range(3):  # the C Measure answers from the second block of a name on
        with contextlib.ExitStack() as stack:
            stack.enter_context(analytics.measure("stacked"))
        with pytest.raises(ValueError, match="inside"):
            stacked_failure()
        block = analytics.measure("by hand")
        assert block.__enter__() is block
        assert block.__exit__(None, None, None) is None
    assert analytics.call_counts == {"stacked": 6, "by hand": 3}
    assert analytics.success_counts == {"stacked": 3, "by hand": 3}
    assert [e.message for e in analytics.events if not e.success] == ["inside"] * 3


def test_a_block_s_methods_check_their_arguments(analytics: Analytics) -> None:
    """Wrong arguments fail, on the block and on its class, as for any method."""
    for _ in range(2):
        block: Any = analytics.measure("x")  # wrong calls on purpose
        with pytest.raises(TypeError):
            block.__exit__(None, None)
        with pytest.raises((TypeError, AttributeError)):  # C: TypeError; Python: no _kind
            type(block).__enter__(object())
        with pytest.raises(TypeError):
            type(block).__exit__(block, None)
    assert analytics.call_counts == {}


def test_nested_and_kept_blocks_of_one_name_are_timed_apart(analytics: Analytics) -> None:
    """A block still held (nested, or kept by the caller) is never handed out again."""
    for _ in range(3):
        kept = analytics.measure("x")
        with analytics.measure("x") as outer:
            time.sleep(0.002)
            with analytics.measure("x") as inner:
                assert inner is not outer
                assert inner is not kept
            outer.message = "outer"
        with kept:
            pass
    assert analytics.call_counts == {"x": 9}
    outers = [e for e in analytics.events if e.message == "outer"]
    assert len(outers) == 3
    assert all(e.duration >= 0.002 for e in outers)
    assert sum(e.message is None for e in analytics.events) == 6


def test_a_block_starts_without_the_last_block_s_note(analytics: Analytics) -> None:
    """A note is the block's own: the next ``measure()`` of the name starts with none."""
    for i in range(4):
        with analytics.measure("x") as block:
            assert block.message is None
            if i % 2 == 0:
                block.message = f"note {i}"
    assert [e.message for e in analytics.events] == ["note 0", None, "note 2", None]


def test_a_note_released_by_the_next_measure_may_measure_again(analytics: Analytics) -> None:
    """A note's ``__del__`` running inside ``measure()`` may itself measure a block."""
    deleted: list[str] = []

    class Note:
        def __str__(self) -> str:
            return "noted"

        def __del__(self) -> None:
            with analytics.measure("x") as block:
                deleted.append(type(block).__name__)

    for _ in range(3):
        with analytics.measure("x") as block:
            block.message = Note()
        del block
    with analytics.measure("x"):
        pass
    assert len(deleted) == 3
    assert analytics.call_counts == {"x": 7}
    assert [e.message for e in analytics.events].count("noted") == 3


def test_a_block_whose_bound_exit_is_held_is_not_handed_out_again(
        analytics: Analytics) -> None:
    """Code holding only a block's bound ``__exit__`` still owns the block."""
    for _ in range(3):
        with analytics.measure("x"):  # the name resolved: later blocks come from C
            pass
    block = analytics.measure("x")
    leave = block.__exit__
    block.__enter__()
    del block
    time.sleep(0.02)
    with analytics.measure("x"):
        pass
    leave(None, None, None)
    assert analytics.call_counts == {"x": 5}
    # The held block kept its own start: reused, it would start with the inner block.
    assert max(e.duration for e in analytics.events[-2:]) >= 0.02


# ------------------------------------------------------------------ the method
def test_measure_takes_its_arguments_as_documented(analytics: Analytics) -> None:
    """``name`` by position or keyword, ``event_type`` by keyword only, on both paths."""
    for _ in range(2):
        with analytics.measure("x"), analytics.measure(name="x"):
            pass
        with analytics.measure("x", event_type="block"):
            pass
    assert analytics.call_counts == {"x": 6}
    with pytest.raises(TypeError):
        analytics.measure("x", "block")  # type: ignore[call-arg]  # the bad call under test
    parameters = inspect.signature(analytics.measure).parameters
    assert [(p.name, p.kind, p.default) for p in parameters.values()] == [
        ("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("event_type", inspect.Parameter.KEYWORD_ONLY, "block"),
        ("expected", inspect.Parameter.KEYWORD_ONLY, ())]
    # The C method carries the Python method's documentation.
    assert inspect.getdoc(Analytics.measure) == inspect.getdoc(python_measure)


def test_a_subclass_measures_and_may_override_measure() -> None:
    """Subclasses of Analytics measure blocks; an override may call the base's."""

    class Prefixed(Analytics):
        def measure(self, name: str, *, event_type: str = "block",
                    expected: type[BaseException] | tuple[type[BaseException], ...] = (),
                    ) -> Any:
            return super().measure(f"app.{name}", event_type=event_type, expected=expected)

    class Plain(Analytics):
        pass

    prefixed, plain = Prefixed(), Plain()
    for _ in range(3):
        with prefixed.measure("x"), plain.measure("x"):
            pass
    assert prefixed.call_counts == {"app.x": 3}
    assert plain.call_counts == {"x": 3}


def test_an_instance_that_measured_blocks_is_freed() -> None:
    """Measuring leaves no reference that keeps an Analytics alive once dropped."""
    analytics = Analytics()
    for _ in range(3):
        with analytics.measure("x"), analytics.measure("x"):
            pass
    gone = weakref.ref(analytics)
    del analytics
    gc.collect()
    assert gone() is None


def test_measure_on_an_instance_never_initialised_fails_cleanly() -> None:
    """``Analytics.__new__`` without ``__init__``: measure() raises, it does not crash."""
    bare = Analytics.__new__(Analytics)
    # C: no _measure_host; Python: no _blocks.
    with pytest.raises(AttributeError, match=r"_measure_host|_blocks"):
        bare.measure("x")
