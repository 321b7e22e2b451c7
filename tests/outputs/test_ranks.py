"""The rank test's ranks, in C and in Python, and diff's verdicts on a fixed pair.

The C accelerator's ranks and their Python twin agree; the verdicts are those diff
gave before either was made faster.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callmetrics._engine import accel
from callmetrics._outputs import compare
from callmetrics._outputs.verdicts import Side, Thresholds, judge
from store_helpers import snapshot

needs_c = pytest.mark.skipif(accel.average_ranks is None,
                             reason=f"the C accelerator is not in use ({accel.REASON})")

# Few distinct values (many ties), signed zeros and infinities, or anything finite.
values = st.one_of(
    st.lists(st.sampled_from([0.0, -0.0, 1e-6, 2.5e-6, 1.0, math.inf, -1.0]), max_size=80),
    st.lists(st.floats(allow_nan=False, width=64), max_size=80),
    st.lists(st.floats(min_value=0, max_value=1e-3).map(lambda v: round(v, 6)), max_size=300))


def python(values: list[float]) -> tuple[list[float], float]:
    return compare._python_ranks(values, sorted(values))


def in_c(values: object) -> tuple[list[float], float] | None:
    assert accel.average_ranks is not None  # needs_c
    return accel.average_ranks(values)  # type: ignore[arg-type]  # any object on purpose


@needs_c
@given(values)
def test_the_c_ranks_are_the_python_ranks(drawn: list[float]) -> None:
    """Every rank (ties averaged) and the tie term agree exactly, in the values' order."""
    found = in_c(drawn)
    assert found is not None
    ranks, ties = found
    expected_ranks, expected_ties = python(drawn)
    assert ranks == expected_ranks
    assert all(isinstance(rank, float) for rank in ranks)
    assert ties == expected_ties


@needs_c
def test_a_large_group_of_ties_and_a_long_sample_agree() -> None:
    """5,000 equal values among 200,000: the same ranks and tie term both ways."""
    rng = random.Random(5)
    drawn = [round(rng.lognormvariate(-9, 0.3), 9) for _ in range(195_000)] + [1e-4] * 5_000
    rng.shuffle(drawn)
    assert in_c(drawn) == python(drawn)


@needs_c
@pytest.mark.parametrize("drawn", [[1.0, 2], [1.0, math.nan], (1.0, 2.0), [True, 1.0]])
def test_what_the_c_code_leaves_to_python_is_ranked_in_python(drawn: list[float]) -> None:
    """An int, a NaN or a tuple: the C code answers None, and the ranks come from Python."""
    assert in_c(drawn) is None
    assert compare._average_ranks(list(drawn)) == python(list(drawn))


def test_no_value_has_no_rank() -> None:
    assert compare._average_ranks([]) == ([], 0.0)


# ------------------------------------------------------------------- a fixed pair
def fixed_pair() -> tuple[Side, Side]:
    """Eight functions of 400 calls a side, durations at 0.1 us (so with ties).

    The base's calls 100 to 159 ran 1.6x slower (a stretch to leave out); the head ran
    1.05x slower throughout, and f2 1.3x slower still.
    """
    rng = random.Random(22)
    sides = []
    for start, label in ((0.0, "base"), (10.0, "head")):
        calls = {}
        for k in range(8):
            name = f"f{k}"
            pairs = []
            for i in range(400):
                value = 1e-4 * (1 + k / 5) * rng.lognormvariate(0, 0.2)
                if label == "base" and 100 <= i < 160:
                    value *= 1.6
                if label == "head":
                    value *= 1.05 * (1.3 if name == "f2" else 1.0)
                pairs.append((start + i * 1e-3 + k * 1e-5, round(value, 7)))
            calls[name] = pairs
        sides.append(Side([snapshot(n, [d for _, d in p]) for n, p in calls.items()],
                          {n: ([s for s, _ in p], [d for _, d in p]) for n, p in calls.items()}))
    return sides[0], sides[1]


# What diff decided for the fixed pair before its reading, windows and ranks were made
# faster (callmetrics at 9c038de): name, verdict, regressed, reason, Holm's p, raw p,
# the interval, the adjusted ratio.
BEFORE = [
    ("f2", "slower", True, "CI [1.18, 1.42] above --max-ratio 1.1", 1.4324242968621974e-50,
     1.7905303710777467e-51, 1.1787599985699193, 1.4244604757218298, 1.3034128796966318),
    ("f7", "same", False, "p=0.67 after Holm, not below 0.002", 0.6692402826564239,
     0.11154004710940399, 0.8803249677278496, 1.0893356786006287, 0.9790879003489819),
    ("f6", "same", False, "p=0.34 after Holm, not below 0.002", 0.3406023912829936,
     0.048657484468999083, 0.875381036189244, 1.0511813193613764, 0.9583247300790149),
    ("f5", "same", False, "p=1 after Holm, not below 0.002", 1.0, 0.25864460334972367,
     0.9029368525572112, 1.0842549330813869, 0.9845653939856435),
    ("f4", "same", False, "p=1 after Holm, not below 0.002", 1.0, 0.6719874010798287,
     0.9193018542493103, 1.1037880857653037, 1.0044165926184683),
    ("f3", "same", False, "p=1 after Holm, not below 0.002", 1.0, 0.6126687580778036,
     0.9002765740351814, 1.095992849667999, 0.9976096188136383),
    ("f1", "same", False, "p=1 after Holm, not below 0.002", 1.0, 0.3348904748459475,
     0.9250483019427299, 1.1168963377865917, 1.0127047624598966),
    ("f0", "same", False, "p=1 after Holm, not below 0.002", 1.0, 0.5834481926937916,
     0.9066705391065149, 1.0911387929718976, 1.0023961087997573),
]


@pytest.mark.parametrize("ranks", ["as loaded", "python"])
def test_the_verdicts_on_a_fixed_pair_are_those_of_before(
        ranks: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same verdicts, reasons, p-values and intervals as before, with either ranks."""
    if ranks == "python":
        monkeypatch.setattr(compare, "_c_ranks", None)
    found, env = judge(*fixed_pair(), Thresholds())
    assert env.used == "common"
    assert env.factor.value == pytest.approx(1.0538901414925903, rel=1e-12)
    assert env.stretches is not None
    assert env.stretches[0].left_out == frozenset({5, 6, 7})
    assert env.stretches[1].left_out == frozenset()
    assert len(found) == len(BEFORE)
    for c, (name, verdict, regressed, reason, *numbers) in zip(found, BEFORE, strict=True):
        assert (c.name, c.verdict, c.regressed, c.reason) == (name, verdict, regressed, reason)
        assert [c.p_value, c.raw_p, c.ratio_low, c.ratio_high, c.adjusted] == pytest.approx(
            numbers, rel=1e-12)
