"""The drain's C fold (``fold_group``) leaves every aggregate as ``FunctionStats.add`` does.

Hypothesis builds drained chunks (several functions called in turn; short calls,
calls beyond ``short_max``, zero-length ones; enough calls of one function to widen
its sketch's counts) and folds each into two recorders, one folding in C and one in
Python; every function's aggregates must then be equal, exactly.
"""

from __future__ import annotations

import os
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmetrics._engine import accel
from callmetrics._engine import recorder as recorder_module
from callmetrics._engine.aggregate import FunctionStats
from callmetrics._engine.recorder import Recorder

pytestmark = pytest.mark.skipif(recorder_module._FOLD is None,
                                reason=f"the C accelerator is not in use ({accel.REASON})")

SHORT_MAX = 1e-3
DURATIONS = st.one_of(
    st.floats(min_value=1e-7, max_value=5e-4),  # short
    st.floats(min_value=2e-3, max_value=2.0),  # beyond short_max: Python's way
    st.sampled_from([0.0, 1e-12, SHORT_MAX]),  # bucket 0; exactly short_max
)
CALL = st.tuples(st.integers(0, 4), DURATIONS)
CHUNKS = st.lists(st.lists(CALL, min_size=1, max_size=400), min_size=1, max_size=8)


def fold_all(chunks: list[list[tuple[int, float]]], fold: object) -> dict[str, FunctionStats]:
    recorder = Recorder(max_events=100, max_functions=100, short_max=SHORT_MAX,
                        medium_max=1.0, warn=print, bulk=True)
    functions = [recorder.stats_for(f"f{i}", "function", "m", explicit=True) for i in range(5)]
    saved = recorder_module._FOLD
    recorder_module._FOLD = fold  # type: ignore[assignment]  # the path under test
    try:
        for chunk in chunks:
            keys = [functions[i] for i, _ in chunk]
            starts = array("d", [0.001 * k for k in range(len(chunk))])
            durations = array("d", [duration for _, duration in chunk])
            with recorder.lock:
                recorder._fold(keys, starts, durations)
    finally:
        recorder_module._FOLD = saved
    return recorder.stats


def state(stats: FunctionStats) -> tuple[object, ...]:
    sketch = stats.sketch
    return (stats.calls, stats.successes, stats.hot_calls, stats.total, stats.fast,
            stats.medium, stats.slow, sketch, sketch._counts.typecode, sketch.count,
            sketch.min, sketch.max, stats.slowest and stats.slowest[1:],
            stats.fastest and stats.fastest[1:])


# Fewer examples under valgrind (.ci/run sets CALLMETRICS_EXAMPLES), where calls are slow.
@settings(max_examples=int(os.environ.get("CALLMETRICS_EXAMPLES", "300")), deadline=None)
@given(CHUNKS)
def test_the_c_fold_leaves_what_python_leaves(chunks: list[list[tuple[int, float]]]) -> None:
    """Counts, sums (to the last bit), categories, sketches and extremes: all equal."""
    in_c = fold_all(chunks, recorder_module._FOLD)
    in_python = fold_all(chunks, None)
    assert {name: state(s) for name, s in in_c.items()} == \
        {name: state(s) for name, s in in_python.items()}


def test_the_c_fold_takes_the_common_case() -> None:
    """Short calls in covered buckets are folded in C (not handed back to Python)."""
    in_c = recorder_module._FOLD
    assert in_c is not None
    chunks = [[(k % 3, 1e-5 * (1 + k % 5)) for k in range(60)] for _ in range(3)]
    answers = []

    def counting(*args: object) -> object:
        answer = in_c(*args)  # type: ignore[arg-type]  # as the recorder calls it
        answers.append(answer)
        return answer

    fold_all(chunks, counting)
    assert answers.count(None) == 3  # each function's first fold grows its sketch
    assert answers[-3:] == [False, False, False]  # no new extreme: nothing more to do


def test_a_function_called_often_widens_its_counts_in_python_and_folds_in_c_after() -> None:
    """Past 255 calls the sketch's items widen (Python's way), then C folds again."""
    chunks = [[(0, 1e-5 * (1 + k % 7)) for k in range(200)] for _ in range(4)]
    in_c = fold_all(chunks, recorder_module._FOLD)
    assert in_c["f0"].sketch._counts.itemsize == 2
    assert state(in_c["f0"]) == state(fold_all(chunks, None)["f0"])


def test_a_subclass_is_left_to_python() -> None:
    """fold_group folds exactly FunctionStats (its slots' places are known): else None."""

    class Derived(FunctionStats):
        __slots__ = ()

    stats = Derived("d", "function", "m")
    assert accel.fold_group is not None
    assert accel.fold_group(stats, array("d", [1e-5]), 1, SHORT_MAX) is None
    assert stats.calls == 0
