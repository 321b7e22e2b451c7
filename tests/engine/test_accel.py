"""The optional C hot path (``_speedups``, loaded by ``_accel``) behaves as the Python one.

Most tests here run against whichever implementation is loaded (the whole suite runs
once per implementation in ``.ci/run``); the C-only ones skip, with the reason, when
the accelerator is not in use.  ``test_accel_differential.py`` compares the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib.util
import inspect
import logging
import math
import os
import pickle
import shutil
import subprocess
import sys
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import callmetrics
from callmetrics import Analytics, LoggerContainer
from callmetrics._engine import accel as _accel
from callmetrics._engine import sinks
from callmetrics._engine.aggregate import FailedCall, FunctionStats, NotedCall
from callmetrics._engine.sketch_keys import bucket_keys, key_of

IN_CI = os.environ.get("CI") == "true"

C_ONLY = pytest.mark.skipif(_accel.IMPLEMENTATION != "c",
                            reason=f"the C accelerator is not in use ({_accel.REASON})")


def test_implementation_is_reported_and_forced_by_the_environment() -> None:
    """``callmetrics.implementation`` names the hot path; the environment can force Python."""
    assert callmetrics.implementation == _accel.IMPLEMENTATION
    assert callmetrics.implementation in {"c", "python"}
    if os.environ.get("CALLMETRICS_PURE_PYTHON") == "1":
        assert callmetrics.implementation == "python"
        assert "CALLMETRICS_PURE_PYTHON" in _accel.REASON
    elif IN_CI and shutil.which("gcc") and not sys.flags.ignore_environment:
        # CI builds the extension wherever there is a compiler: it must be in use.
        assert callmetrics.implementation == "c", _accel.REASON


@C_ONLY
def test_the_c_clock_is_perf_counter() -> None:
    """Starts and ends from C and from Python are on one scale, so they mix in one buffer."""
    from callmetrics._engine.accel import speedups as _speedups  # noqa: PLC0415  # C only

    for _ in range(1000):
        before = time.perf_counter()
        now = _speedups.now()
        after = time.perf_counter()
        assert before <= now <= after


@C_ONLY
def test_sync_functions_get_the_c_wrapper_and_others_stay_python(analytics: Analytics) -> None:
    """Sync callables run through the C type; coroutines and generators keep Python wrappers."""

    @analytics.track("unit")
    def sync() -> int:
        return 1

    @analytics.track("unit")
    async def coro() -> int:
        return 1

    assert type(sync).__name__ == "Tracked"
    assert inspect.iscoroutinefunction(coro)
    assert sync() == 1
    assert asyncio.run(coro()) == 1
    assert analytics.call_counts == {"test_sync_functions_get_the_c_wrapper_and_others_"
                                     "stay_python.sync": 1,
                                     "test_sync_functions_get_the_c_wrapper_and_others_"
                                     "stay_python.coro": 1}


def test_async_calls_are_timed_from_start_to_end_on_either_path(analytics: Analytics) -> None:
    """An async call's duration spans its awaits (its end is recorded in C when built)."""

    @analytics.track("unit", name="wait")
    async def wait(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    @analytics.track("unit", name="fail")
    async def fail() -> None:
        await asyncio.sleep(0)
        raise KeyError("x")

    async def main() -> None:
        began = time.perf_counter()
        assert await wait(0.02) == 0.02
        took = time.perf_counter() - began
        with pytest.raises(KeyError):
            await fail()
        (event,) = [e for e in analytics.events if e.function == "wait"]
        assert 0.02 <= event.duration <= took
        assert event.start <= time.time()

    asyncio.run(main())
    assert analytics.call_counts == {"wait": 1, "fail": 1}
    assert analytics.success_counts == {"wait": 1, "fail": 0}


@C_ONLY
def test_a_sink_s_ok_records_one_call_and_checks_its_start() -> None:
    """``Sink.ok(start)`` (the async wrapper's end) appends one call, and refuses a bad start."""
    analytics = Analytics()

    @analytics.track("unit", name="coro")
    async def coro() -> None:
        pass

    asyncio.run(coro())
    assert len(analytics.buffer) == 3  # one call, in the instance's CallBuffer
    stats = analytics._recorder.stats["coro"]
    ok = sinks.success_recorder(stats, analytics)
    assert ok is not None
    ok(time.perf_counter())
    with pytest.raises(TypeError):
        ok("soon")  # type: ignore[arg-type]  # what the test checks
    assert analytics.call_counts == {"coro": 2}


def documented(a: int, b: str = "x", *, c: float = 1.0) -> str:
    """Say hello."""
    return f"{a}{b}{c}"


_tracker = Analytics()
tracked_documented = _tracker.track("unit")(documented)
tracked_documented.__qualname__ = "tracked_documented"  # picklable under this name


def test_wrapper_keeps_metadata_signature_and_pickles_by_reference() -> None:
    """Name, qualname, doc, module, dict, __wrapped__ and the signature are the function's."""
    documented.marker = "kept"  # type: ignore[attr-defined]
    wrapper: Any = Analytics().track("unit")(documented)
    assert wrapper.__name__ == "documented"
    assert wrapper.__qualname__ == "documented"
    assert wrapper.__doc__ == "Say hello."
    assert wrapper.__module__ == __name__
    assert wrapper.__wrapped__ is documented
    assert wrapper.marker == "kept"
    assert inspect.signature(wrapper) == inspect.signature(documented)
    assert list(inspect.signature(wrapper).parameters) == ["a", "b", "c"]
    assert wrapper(1, "y", c=2.0) == "1y2.0"
    copied = pickle.loads(pickle.dumps(tracked_documented))  # noqa: S301  # our own bytes
    assert copied is tracked_documented


def test_binding_matches_the_wrapped_object() -> None:
    """Functions bind; partials and builtins do not; classmethod/staticmethod under and over."""
    analytics = Analytics()
    track = analytics.track("unit")

    def add(x: int, y: int) -> int:
        return x + y

    class Box:
        value = 5

        @track
        def method(self, x: int) -> int:
            return self.value + x

        partial = track(functools.partial(add, 1))
        length: Any = track(len)

        @track
        @classmethod
        def over_class(cls, x: int) -> int:
            return cls.value * x

        @classmethod
        @track
        def under_class(cls, x: int) -> int:
            return cls.value * x

        @track
        @staticmethod
        def over_static(x: int) -> int:
            return -x

        @staticmethod
        @track
        def under_static(x: int) -> int:
            return -x

    box = Box()
    assert box.method(1) == 6
    assert Box.method(box, 2) == 7
    assert box.partial(2) == 3
    assert Box.partial(2) == 3
    assert box.length([1, 2]) == 2
    assert box.over_class(2) == 10
    assert Box.under_class(3) == 15
    assert box.over_static(4) == -4
    assert Box.under_static(5) == -5
    assert sum(analytics.call_counts.values()) == 9


class BoomError(Exception):
    """The exception the tests raise."""


def test_exceptions_pass_unchanged_with_their_traceback(analytics: Analytics) -> None:
    """The very exception object propagates, its traceback reaching the raising line."""
    raised: list[BaseException] = []

    @analytics.track("unit")
    def fail() -> None:
        error = BoomError("no")
        raised.append(error)
        raise error

    with pytest.raises(BoomError) as info:
        fail()
    assert info.value is raised[0]
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "fail"
    assert analytics.success_counts == {"test_exceptions_pass_unchanged_with_their_"
                                        "traceback.fail": 0}
    assert analytics.get_stats()["total_calls"] == 1


def test_keyword_arguments_and_many_positionals_pass_through(analytics: Analytics) -> None:
    """Whatever the calling convention, the function gets exactly what was passed."""

    @analytics.track("unit")
    def echo(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return args, kwargs

    assert echo() == ((), {})
    assert echo(*range(20), k=1) == (tuple(range(20)), {"k": 1})
    mapping = {"a": 1, "b": 2}
    assert echo(**mapping) == ((), mapping)


def test_observers_see_calls_and_blocks(analytics: Analytics) -> None:
    """While an observer is registered, it sees each call with its outcome."""
    seen: list[tuple[str, str | None]] = []

    class Observer:
        def on_start(self, stats: FunctionStats) -> object:
            return stats.name

        def on_end(self, token: object, stats: FunctionStats,  # noqa: ARG002  # protocol
                   duration: float,
                   error: BaseException | None) -> None:
            assert duration >= 0
            seen.append((str(token), type(error).__name__ if error else None))

    @analytics.track("unit", name="work")
    def work(fail: bool) -> None:
        if fail:
            raise BoomError

    work(False)
    with analytics.measure("block"):
        pass
    with analytics.measure("block"):
        pass
    observer = Observer()
    analytics.add_observer(observer)
    work(False)
    with pytest.raises(BoomError):
        work(True)
    with analytics.measure("block"):
        pass
    analytics.remove_observer(observer)
    work(False)
    assert seen == [("work", None), ("work", "BoomError"), ("block", None)]
    assert analytics.call_counts == {"work": 4, "block": 3}
    assert analytics.success_counts == {"work": 3, "block": 3}


def test_success_logging_follows_the_logger_level(loggers: LoggerContainer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Each success is logged while INFO is on, none once the level is raised."""
    analytics = Analytics(loggers=loggers)
    loggers.analytics.setLevel(logging.INFO)
    loggers.console.setLevel(logging.WARNING)

    @analytics.track("unit", name="slow")
    def slow() -> None:
        time.sleep(0.002)

    analytics.long_max = 0.0  # every call counts as long here
    analytics.call_logger.long_max = 0.0
    with caplog.at_level(logging.DEBUG):
        slow()
        with analytics.measure("blk"):
            time.sleep(0.002)
        with analytics.measure("blk"):
            time.sleep(0.002)
        loggers.analytics.setLevel(logging.WARNING)
        slow()
    lines = [r.getMessage() for r in caplog.records if r.name == loggers.analytics.name]
    assert [line.split()[:2] for line in lines] == [["OK", "slow"], ["OK", "blk"],
                                                    ["OK", "blk"]]


def test_measure_blocks_sync_and_async(analytics: Analytics) -> None:
    """``with`` and ``async with`` blocks record successes and failures; errors propagate."""
    for _ in range(3):
        with analytics.measure("sync"):
            pass
    with pytest.raises(BoomError), analytics.measure("sync"):
        raise BoomError

    async def blocks() -> None:
        for _ in range(3):
            async with analytics.measure("async") as block:
                assert block is not None
        with pytest.raises(BoomError):
            async with analytics.measure("async"):
                raise BoomError

    asyncio.run(blocks())
    assert analytics.call_counts == {"sync": 4, "async": 4}
    assert analytics.success_counts == {"sync": 3, "async": 3}
    errors = [call.error for call in analytics.retained()]
    assert errors.count("BoomError") == 2


def test_measure_keeps_validating_names_and_event_types(analytics: Analytics) -> None:
    """Bad names fail as before; another event type for a known name still resolves."""
    with analytics.measure("x"):
        pass
    with pytest.raises(TypeError, match="name"):
        analytics.measure(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        analytics.measure("  ")
    with analytics.measure("x", event_type="block"):
        pass
    assert analytics.call_counts == {"x": 2}


def test_instances_measuring_in_turn_record_into_their_own() -> None:
    """Several instances (and a subclass's) measuring in turn each count their blocks."""

    class Sub(Analytics):
        pass

    first, second, third = Analytics(), Analytics(), Sub()
    for _ in range(50):
        with first.measure("x"), second.measure("x"), third.measure("x"):
            pass
        with second.measure("y"):
            pass
    assert first.call_counts == {"x": 50}
    assert second.call_counts == {"x": 50, "y": 50}
    assert third.call_counts == {"x": 50}


@C_ONLY
def test_an_instance_whose_measure_state_was_replaced_fails_cleanly(
        analytics: Analytics) -> None:
    """measure() in C reads the instance's own state: anything else is refused."""
    other = Analytics()
    for _ in range(2):
        with analytics.measure("x"), other.measure("x"):
            pass
    analytics._measure_host = other._measure_host  # the damage under test
    with pytest.raises(RuntimeError, match="_measure_host"):
        analytics.measure("x")
    del analytics._measure_host
    with pytest.raises(AttributeError):
        analytics.measure("x")
    with other.measure("x"):
        pass
    assert other.call_counts == {"x": 3}


def test_disabled_instance_returns_the_function_itself() -> None:
    """``enabled=False`` tracks nothing and does not wrap."""
    analytics = Analytics({"enabled": False})

    def work() -> int:
        return 1

    assert analytics.track("unit")(work) is work
    with analytics.measure("x"):
        pass
    assert analytics.call_counts == {}


def _refcounts(*objects: object) -> list[int]:
    return [sys.getrefcount(obj) for obj in objects]


def test_no_reference_is_leaked_on_arguments_results_or_exceptions() -> None:
    """Every reference the wrapper takes to an argument, result or exception is given back."""
    # Silent loggers: a captured log record would keep each failure's traceback alive.
    silent = [logging.getLogger(f"test.accel.silent.{part}") for part in "cea"]
    for logger in silent:
        logger.setLevel(logging.CRITICAL)
        logger.propagate = False
    analytics = Analytics(loggers=LoggerContainer(*silent))
    argument, keyword, result, payload = object(), object(), object(), object()
    payload_base = sys.getrefcount(payload)

    @analytics.track("unit")
    def work(a: object, *, k: object) -> object:
        return result

    @analytics.track("unit")
    def fail(a: object) -> None:
        raise BoomError(payload)

    for _ in range(10):  # warm up: caches, buffer growth
        work(argument, k=keyword)
    analytics.get_stats()
    before = _refcounts(argument, keyword, result, work, analytics)
    for _ in range(20_000):
        work(argument, k=keyword)
    analytics.get_stats()
    assert _refcounts(argument, keyword, result, work, analytics) == before

    for _ in range(1000):
        with contextlib.suppress(BoomError):
            fail(argument)
    analytics.get_stats()
    gc.collect()
    assert _refcounts(argument, keyword, result, work, analytics) == before
    # A failed call's exception lives on only in its retained description, not whole.
    assert sys.getrefcount(payload) == payload_base


def _calls_for_memory() -> int:
    return int(os.environ.get("CALLMETRICS_MEMORY_CALLS", "1000000"))


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:  # noqa: PTH123  # Linux only
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.fixture
def quiet_gc() -> Iterator[None]:
    """Collect garbage before measuring memory."""
    gc.collect()
    yield
    gc.collect()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"),  # noqa: PTH110  # plain check
                    reason="RSS is read from /proc (Linux)")
def test_memory_does_not_grow_with_calls(quiet_gc: None) -> None:
    """Many calls and blocks grow neither the traced heap nor RSS beyond the bounded buffers.

    RSS is checked over ``CALLMETRICS_MEMORY_CALLS`` calls (1,000,000 by default; CI
    sets 10,000,000), the traced heap over a tenth of them (tracing is slow).
    """
    import tracemalloc  # noqa: PLC0415  # only this test traces

    analytics = Analytics(max_events=10_000)

    @analytics.track("unit", name="work")
    def work(x: int) -> int:
        return x

    calls = _calls_for_memory()
    warm = 200_000
    for i in range(warm):
        work(i)
    for _ in range(1000):
        with analytics.measure("block"):
            pass
    analytics.get_stats()
    gc.collect()
    rss_before = _rss_kb()
    for i in range(calls):
        work(i)
    for _ in range(calls // 10):
        with analytics.measure("block"):
            pass
    analytics.get_stats()
    gc.collect()
    rss_after = _rss_kb()
    tracemalloc.start()
    try:
        heap_before, _ = tracemalloc.get_traced_memory()
        for i in range(calls // 10):
            work(i)
        for _ in range(calls // 100):
            with analytics.measure("block"):
                pass
        analytics.get_stats()
        gc.collect()
        heap_after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Generous bounds: a leak of one float per call would be 24 MB per million calls.
    assert heap_after - heap_before < 1_000_000
    assert rss_after - rss_before < 30_000
    assert analytics.call_counts["work"] == warm + calls + calls // 10


@pytest.mark.parametrize("pure", [True, False])
def test_version_line_names_the_hot_path(pure: bool) -> None:
    """``callmetrics --version`` says which hot path runs, and why Python when it does."""
    env = {**os.environ, "CALLMETRICS_PURE_PYTHON": "1" if pure else "0"}
    done = subprocess.run([sys.executable, "-m", "callmetrics", "--version"], env=env,
                          capture_output=True, text=True, check=True, timeout=120)
    if pure:
        assert "hot path: pure Python; CALLMETRICS_PURE_PYTHON=1 is set" in done.stdout
    else:
        built = importlib.util.find_spec("callmetrics._engine._speedups") is not None
        expected = "C accelerator" if built else "pure Python; the C accelerator was not built"
        assert f"hot path: {expected}" in done.stdout


@C_ONLY
def test_bulk_helpers_check_what_they_are_given() -> None:
    """The drain's C helpers refuse bad input instead of misreading it."""
    from callmetrics._engine.accel import speedups as _speedups  # noqa: PLC0415  # C only

    one, two, four = key_of(1e-6), key_of(2e-6), key_of(4e-6)
    dense = array("B", bytes(four - one + 1))
    _speedups.count_values([1e-6, 2e-6, 2e-6, 4e-6], dense, one)
    assert (dense[0], dense[two - one], dense[four - one], sum(dense)) == (1, 2, 1, 4)
    for width in "HILQ":
        wide = array(width, bytes((two - one + 1) * array(width).itemsize))
        _speedups.count_values(array("d", [1e-6, 1e-6, 2e-6]), wide, one)
        assert (wide[0], wide[-1], sum(wide)) == (2, 1, 3)
    with pytest.raises(ValueError, match="outside"):
        _speedups.count_values([1e-6, 4e-6], array("B", bytes(2)), one)
    with pytest.raises(ValueError, match="outside"):
        _speedups.count_values([1e-6], array("B", bytes(4)), one + 1)
    with pytest.raises(BufferError):
        _speedups.count_values([1e-6], b"\0\0\0\0", one)  # read-only
    with pytest.raises(TypeError):
        _speedups.count_values([1e-6], array("B", bytes(4)))
    for values in ([3e-6, 1e-6, 5e-6, 1e-6, 5e-6], array("d", [3e-6, 1e-6, 5e-6])):
        total, low, high = _speedups.summary(values)
        assert total == pytest.approx(math.fsum(values), rel=1e-15)
        assert (low, high) == (min(values), max(values))
    # Compensated: a million tiny durations after a large one are not lost.
    values = [1.0] + [1e-16] * 1_000_000
    assert _speedups.summary(values)[0] == pytest.approx(math.fsum(values), rel=1e-15)
    assert _speedups.summary([2.5]) == (2.5, 2.5, 2.5)
    for bad in ([1.0, 2], (1.0, 2.0), None, array("f", [1.0]), array("q", [1])):
        with pytest.raises(TypeError):
            _speedups.summary(bad)
    with pytest.raises(ValueError, match="at least one"):
        _speedups.summary([])
    with pytest.raises(ValueError, match="outside"):
        _speedups.count_values([1.0], array("B", bytes(4)), key_of(1.0) + 1)
    with pytest.raises(TypeError):
        _speedups.count_values([1.0, 2], array("B", bytes(4)), key_of(1.0))
    with pytest.raises(TypeError):
        _speedups.count_values([1.0], array("b", bytes(4)), key_of(1.0))


@C_ONLY
@given(st.lists(st.floats(min_value=1e-9, max_value=1e4), min_size=1, max_size=300))
def test_count_values_counts_the_sketch_keys(values: list[float]) -> None:
    """count_values, from a list or an array('d'), counts exactly the sketch's bucket keys."""
    from callmetrics._engine.accel import speedups as _speedups  # noqa: PLC0415  # C only

    keys = bucket_keys(values)
    first, last = min(keys), max(keys)
    expected = Counter(keys)
    for given_values in (values, array("d", values)):
        dense = array("Q", bytes(8 * (last - first + 1)))
        _speedups.count_values(given_values, dense, first)
        assert {first + i: n for i, n in enumerate(dense) if n} == expected


_OWNERS = [FunctionStats(f"f{i}", "unit", "m") for i in range(6)]


def _key(code: int) -> Any:
    """A key of one of six functions: itself, or a failure's or a note's description."""
    owner = _OWNERS[code % 6]
    kind = code // 6
    if kind == 0:
        return owner
    if kind == 1:
        return FailedCall(owner, "ValueError", "bad", None)
    return NotedCall(owner, "200 OK")


@given(codes=st.lists(st.integers(0, 17), max_size=60), n=st.integers(0, 70),
       groups=st.integers(0, 7))
def test_a_drain_takes_whole_calls_of_at_most_groups_functions(codes: list[int], n: int,
                                                                groups: int) -> None:
    """``take`` cuts before the first call of a function past ``groups``, on either buffer."""
    keys = [_key(code) for code in codes]
    expected = len(keys) if n == 0 else min(n, len(keys))
    if groups:
        met: list[FunctionStats] = []
        for at, key in enumerate(keys[:expected]):
            owner = key if type(key) is FunctionStats else key.stats
            if owner not in met:
                if len(met) == groups:
                    expected = at
                    break
                met.append(owner)
    buffers: list[Any] = [[]]
    if _accel.IMPLEMENTATION == "c":
        from callmetrics._engine.accel import speedups as _speedups  # noqa: PLC0415  # C only

        buffers.append(_speedups.CallBuffer())
    for buffer in buffers:
        for at, key in enumerate(keys):
            buffer.extend((key, float(at), at / 100))
        taken, starts, durations = _accel.take(buffer, 3 * n, groups, FunctionStats)
        assert taken == keys[:expected]
        assert list(starts) == [float(at) for at in range(expected)]
        assert list(durations) == [at / 100 for at in range(expected)]
        assert len(buffer) == 3 * (len(keys) - expected)
        rest, _, _ = _accel.take(buffer, 0)
        assert rest == keys[expected:]


def _group_model(keys: list[Any], durations: list[float]) -> list[tuple[Any, list[float], int,
                                                                        int, int]]:
    """What ``group_calls`` returns, computed plainly: per function in order of first call."""
    order: list[FunctionStats] = []
    for key in keys:
        owner = key if type(key) is FunctionStats else key.stats
        if owner not in order:
            order.append(owner)
    model = []
    for owner in order:
        at = [i for i, key in enumerate(keys)
              if (key if type(key) is FunctionStats else key.stats) is owner]
        mine = [durations[i] for i in at]
        failures = sum(type(keys[i]) is FailedCall for i in at)
        low_at = next(i for i in at if durations[i] == min(mine))
        high_at = next(i for i in at if durations[i] == max(mine))
        model.append((owner, mine, failures, low_at, high_at))
    return model


@given(codes=st.lists(st.integers(0, 17), max_size=80),
       tenths=st.lists(st.integers(1, 6), min_size=80, max_size=80))
def test_a_chunk_groups_by_function_as_the_model_does(codes: list[int],
                                                      tenths: list[int]) -> None:
    """``group_calls`` (C, and its Python twin) groups calls by function, failures counted.

    Durations repeat (few distinct values), so "first lowest" and "first highest" matter;
    the Python twin leaves those indices to be found later (-1).
    """
    keys = [_key(code) for code in codes]
    durations = [tenths[i] / 10 for i in range(len(keys))]
    model = _group_model(keys, durations)
    for given_durations in (durations, array("d", durations)):
        grouped = _accel.group_calls(keys, given_durations, FunctionStats, FailedCall)
        assert [(g[0], list(g[1]), g[2]) for g in grouped] == [m[:3] for m in model]
        for (_, _, _, low_at, high_at), expected in zip(grouped, model, strict=True):
            if _accel.IMPLEMENTATION == "c":
                assert (low_at, high_at) == expected[3:]
            else:
                assert (low_at, high_at) == (-1, -1)


@C_ONLY
def test_group_calls_refuses_bad_input_and_holds_no_reference() -> None:
    """Mismatched or non-float input raises; keys and functions keep their reference counts."""
    from callmetrics._engine.accel import speedups as _speedups  # noqa: PLC0415  # C only

    owner = FunctionStats("f", "unit", "m")
    failure = FailedCall(owner, "ValueError", "bad", None)
    keys = [owner, failure, owner]
    before = (sys.getrefcount(owner), sys.getrefcount(failure))
    for _ in range(100):
        grouped = _speedups.group_calls(keys, array("d", [1.0, 2.0, 3.0]), FunctionStats,
                                        FailedCall)
        assert [(g[0], list(g[1]), g[2:]) for g in grouped] == [(owner, [1.0, 2.0, 3.0],
                                                                 (1, 0, 2))]
        del grouped
    assert (sys.getrefcount(owner), sys.getrefcount(failure)) == before
    for bad in (([owner], [1.0, 2.0]), ([owner], [1]), ((owner,), [1.0]),
                ([object()], [1.0])):
        with pytest.raises((TypeError, ValueError, AttributeError)):
            _speedups.group_calls(bad[0], bad[1], FunctionStats, FailedCall)
    with pytest.raises(TypeError):
        _speedups.group_calls([owner], [1.0], FunctionStats)
    assert (sys.getrefcount(owner), sys.getrefcount(failure)) == before


@C_ONLY
def test_count_values_leaves_the_counts_unchanged_on_bad_input() -> None:
    """The sketch counts straight into its own array: an error must not count half."""
    from callmetrics._engine.accel import speedups as _speedups  # noqa: PLC0415  # C only

    one, two = key_of(1e-6), key_of(2e-6)
    counts = array("H", [5] * (two - one + 1))
    for bad in ([1e-6, 2e-6, 8e-6], [1e-6, 2e-6, "x"], [1e-6, 2e-6, 2]):
        with pytest.raises((TypeError, ValueError)):
            _speedups.count_values(bad, counts, one)
        assert list(counts) == [5] * (two - one + 1)


@C_ONLY
def test_call_buffer_keeps_whole_calls_in_order() -> None:
    """The C buffer speaks the list's flat protocol and hands drains whole calls, in order."""
    from callmetrics._engine.accel import speedups as _speedups  # noqa: PLC0415  # C only

    buffer = _speedups.CallBuffer()
    keys = [object() for _ in range(5)]
    assert len(buffer) == 0
    for i in range(200):  # past several growths of its arrays
        buffer.extend((keys[i % 5], float(i), i / 1000))
    buffer.extend((keys[0], 200.0, 0.2, keys[1], 201.0, 0.201))  # several calls at once
    buffer.extend([keys[2], 202, 0.202])  # a list, and an int start, as floats take them
    assert len(buffer) == 3 * 203
    taken, starts, durations = buffer.take(3 * 150)
    assert taken == [keys[i % 5] for i in range(150)]
    assert list(starts) == [float(i) for i in range(150)]
    assert list(durations) == [i / 1000 for i in range(150)]
    assert starts.typecode == durations.typecode == "d"
    for i in range(203, 400):  # appends after a take reuse the freed front
        buffer.extend((keys[i % 5], float(i), i / 1000))
    taken, starts, durations = buffer.take(0)
    assert list(starts) == [float(i) for i in range(150, 400)]
    assert [id(key) for key in taken] == [id(keys[i % 5]) for i in range(150, 400)]
    assert len(buffer) == 0
    assert [len(part) for part in buffer.take(0)] == [0, 0, 0]


@C_ONLY
def test_call_buffer_refuses_bad_calls_whole() -> None:
    """A bad call appends nothing at all; bad arguments are refused with TypeError/ValueError."""
    from callmetrics._engine.accel import speedups as _speedups  # noqa: PLC0415  # C only

    buffer = _speedups.CallBuffer()
    key = object()
    for bad in ((key, 1.0), (key, 1.0, 2.0, key), (key, "x", 1.0), (key, 1.0, 2.0, key, 3.0, None)):
        with pytest.raises((TypeError, ValueError)):
            buffer.extend(bad)
    assert len(buffer) == 0
    with pytest.raises(TypeError):
        buffer.extend(iter((key, 1.0, 2.0)))
    with pytest.raises(ValueError, match=">= 0"):
        buffer.take(-3)
    with pytest.raises(ValueError, match="groups <= 64"):
        buffer.take(3, 65, FunctionStats)
    with pytest.raises(TypeError, match="needs plain"):
        buffer.take(3, 2)
    buffer.extend((key, 1.0, 2.0))
    with pytest.raises(AttributeError):  # a key that is neither FunctionStats nor has stats
        buffer.take(3, 2, FunctionStats)
    assert len(buffer) == 3  # left as it was
    with pytest.raises(TypeError):
        _speedups.CallBuffer(1)
    with pytest.raises(TypeError):
        _speedups.Sink([], key, [], {}, "k", print, print, print, print)  # not a CallBuffer


@C_ONLY
def test_call_buffer_owns_its_keys_and_lets_the_collector_see_them() -> None:
    """Keys live while buffered, are freed after a take or a clear, and cycles are collected."""
    import weakref  # noqa: PLC0415  # only this test

    from callmetrics._engine.accel import speedups as _speedups  # noqa: PLC0415  # C only

    class Key:
        pass

    buffer = _speedups.CallBuffer()
    key = Key()
    alive = weakref.ref(key)
    base = sys.getrefcount(key)
    for i in range(1000):
        buffer.extend((key, float(i), 0.001))
    assert sys.getrefcount(key) == base + 1000
    taken = buffer.take(3 * 600)
    assert sys.getrefcount(key) == base + 1000  # moved into the list, not copied
    del taken
    assert sys.getrefcount(key) == base + 400
    buffer.clear()
    assert sys.getrefcount(key) == base
    # A key that refers back to the buffer makes a cycle the collector must free.
    key.buffer = buffer  # type: ignore[attr-defined]  # a test attribute
    buffer.extend((key, 0.0, 0.0))
    del key, buffer
    gc.collect()
    assert alive() is None
