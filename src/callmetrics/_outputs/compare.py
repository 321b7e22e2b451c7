"""The tests behind ``callmetrics diff``: is one run's function really slower?

Per function, the two runs' retained call durations are compared with a two-sided
Mann-Whitney U test (ranks with ties averaged, the tie-corrected normal
approximation with a continuity correction), written here so that no statistics
package is needed at run time, and kept from over-confidence when a run's calls
drift together (machine load, warm-up) by a batch-means variance (see
:func:`rank_test`).  The effect is the ratio of the two medians, with a
distribution-free confidence interval built from each median's order-statistic
interval.  :mod:`callmetrics._outputs.verdicts` decides with them (the machine's
share, many tests at once, the reasons).
"""

from __future__ import annotations

import bisect
import math
import operator
import statistics
from collections.abc import Sequence
from itertools import compress, islice

from callmetrics._engine.accel import average_ranks as _c_ranks

__all__ = [
    "holm",
    "mann_whitney",
    "median_interval",
    "rank_test",
    "smallest_p",
]

# Each median's interval at 97.5 %: both hold together at least 95 % of the time, so
# the ratio interval built from them covers the true ratio at least 95 % of the time.
_Z_EACH = 2.2414027276049473


def _average_ranks(values: list[float], sides: tuple[Sequence[float], Sequence[float]] | None
                   = None) -> tuple[list[float], float]:
    """Return each value's rank (1-based, ties averaged) and the tie term sum(t^3 - t).

    By the C accelerator when it is loaded and takes the values (a list of floats,
    none NaN: what a store holds), else by :func:`_python_ranks`, its twin: the same
    ranks (an int rank there is the same number as a float one here) and tie term.
    ``sides``, when given, are the two parts of ``values`` each sorted: Python merges
    them instead of sorting ``values``.
    """
    if _c_ranks is not None:
        found = _c_ranks(values)
        if found is not None:
            return found
    return _python_ranks(values, sorted(values) if sides is None else sorted([*sides[0],
                                                                               *sides[1]]))


def _python_ranks(values: Sequence[float], ordered: Sequence[float],
                  ) -> tuple[list[float], float]:
    """:func:`_average_ranks` in Python, ``ordered`` being ``sorted(values)``.

    Every step but the last runs in C: ``dict(zip())`` keeps each value's last
    position in the sorted values (a key keeps its last value); the tied values are
    those equal to their successor (``compress``), and only they are visited in
    Python, their rank set to the mean of their first position (found by bisection)
    and their last; ``map`` reads each value's rank.  A rank is an ``int`` unless it
    is a tie's half-integer mean: sums and means of them (``math.fsum``) are those of
    the same ranks as floats.
    """
    rank: dict[float, float] = dict(zip(ordered, range(1, len(ordered) + 1), strict=True))
    ties = 0
    for value in set(compress(ordered, map(operator.eq, ordered, islice(ordered, 1, None)))):
        high = int(rank[value])  # an int: each tied value is visited once
        low = bisect.bisect_left(ordered, value) + 1
        rank[value] = (low + high) / 2
        ties += (high - low + 1) ** 3 - (high - low + 1)
    return list(map(rank.__getitem__, values)), float(ties)


def _normal_p(z: float) -> float:
    return min(1.0, math.erfc(abs(z) / math.sqrt(2)))


def _t_p(t: float, df: float) -> float:
    """Two-sided p-value of Student's t, by a normal approximation good from df ~ 5.

    ``z = t (1 - 1/(4 df)) / sqrt(1 + t^2 / (2 df))`` follows the standard normal
    closely enough for a significance gate (Abramowitz & Stegun 26.7.8).
    """
    z = t * (1 - 1 / (4 * df)) / math.sqrt(1 + t * t / (2 * df))
    return _normal_p(z)


def mann_whitney(base: Sequence[float], head: Sequence[float]) -> tuple[float, float]:
    """Return the two-sided p-value and the z score of the Mann-Whitney U test.

    ``z`` is positive when ``head`` tends to be larger than ``base``.  Ties get the
    average of their ranks and the variance their correction; the normal
    approximation (with a continuity correction) is accurate from about 20 values a
    side.  Identical samples (or all values equal) give ``(1.0, 0.0)``.
    """
    n1, n2 = len(base), len(head)
    if not n1 or not n2:
        raise ValueError("both samples need at least one value")
    ranks, ties = _average_ranks([*base, *head])
    return _mw(ranks, ties, n1, n2)


def _mw(ranks: list[float], ties: float, n1: int, n2: int) -> tuple[float, float]:
    total = n1 + n2
    u_head = math.fsum(ranks[n1:]) - n2 * (n2 + 1) / 2
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((total + 1) - ties / (total * (total - 1)))
    if variance <= 0:
        return 1.0, 0.0
    shift = u_head - mean
    shift -= math.copysign(min(0.5, abs(shift)), shift)
    z = shift / math.sqrt(variance)
    return _normal_p(z), z


def _block_means(ranks: Sequence[float], blocks: int) -> list[float]:
    n = len(ranks)
    return [math.fsum(ranks[b * n // blocks:(b + 1) * n // blocks])
            / ((b + 1) * n // blocks - b * n // blocks) for b in range(blocks)]


def _paired_windows(base: Sequence[float], head: Sequence[float], base_starts: Sequence[float],
                    head_starts: Sequence[float], blocks: int) -> list[float] | None:
    """Per time window both runs cover, head's mean rank minus base's (None: not paired).

    ``base_starts`` and ``head_starts`` must be in time order (as ``ranks``).

    Runs made side by side (interleaved calls, or two processes at once) share the
    machine's drift; comparing them window by window cancels it.  They count as side by
    side when their time spans overlap over at least half of their union.
    """
    # In time order: the first start is the earliest, the last the latest.
    lows, highs = (base_starts[0], head_starts[0]), (base_starts[-1], head_starts[-1])
    first, last = max(lows), min(highs)
    if last <= first or last - first < 0.5 * (max(highs) - min(lows)):
        return None
    width = (last - first) / blocks
    # The starts are in time order: each window is a slice, found by bisection.
    edges = [first + b * width for b in range(blocks)]
    windows = []
    for ranks, starts in ((base, base_starts), (head, head_starts)):
        cuts = [bisect.bisect_left(starts, edge) for edge in edges]
        cuts.append(bisect.bisect_right(starts, last))
        windows.append([ranks[cuts[b]:cuts[b + 1]] for b in range(blocks)])
    paired = zip(windows[0], windows[1], strict=True)
    diffs = [statistics.fmean(h) - statistics.fmean(b) for b, h in paired
             if len(b) >= 3 and len(h) >= 3]
    return diffs if len(diffs) >= 4 else None


def rank_test(base: Sequence[float], head: Sequence[float], blocks: int = 10, *,
              starts: tuple[Sequence[float], Sequence[float]] | None = None,
              ordered: tuple[Sequence[float], Sequence[float]] | None = None,
              ) -> tuple[float, float]:
    """Mann-Whitney, kept honest when calls within a run are not independent.

    Calls of one run share the machine's state (load, frequency, caches, a busy event
    loop), so their durations drift together and a plain rank test takes a slower
    stretch of one run for a slower run.  Given each run's durations *in time order*,
    this also computes the mean-rank difference's variance by batch means (the runs
    cut into up to ``blocks`` consecutive blocks of at least 5 calls) and tests with
    the larger of the two variances (Welch's t on the blocks when that one is
    larger).  With the calls' start times (``starts``, in the same order) and runs
    made side by side, the blocks are instead common time windows compared pairwise
    (a paired t on the windows), so that drift both runs shared cancels out.
    ``ordered``, when given, holds ``sorted(base)`` and ``sorted(head)`` (a caller
    that has them saves a sort).  Returns the two-sided
    p-value and the z (or t) score, positive when ``head`` is slower; never more
    significant than :func:`mann_whitney`.
    """
    n1, n2 = len(base), len(head)
    if not n1 or not n2:
        raise ValueError("both samples need at least one value")
    ranks, ties = _average_ranks([*base, *head], ordered)
    p_value, z = _mw(ranks, ties, n1, n2)
    total = n1 + n2
    independent = ((total / (n1 * n2)) ** 2 * n1 * n2 / 12
                   * ((total + 1) - ties / (total * (total - 1))))
    if z == 0:
        return p_value, z
    paired = (None if starts is None else
              _paired_windows(ranks[:n1], ranks[n1:], starts[0], starts[1], blocks))
    if paired is not None:
        shared = statistics.variance(paired) / len(paired)
        if shared <= independent:
            return p_value, z
        t = statistics.fmean(paired) / math.sqrt(shared)
        return max(p_value, _t_p(t, len(paired) - 1)), t
    b1, b2 = min(blocks, n1 // 5), min(blocks, n2 // 5)
    if b1 < 2 or b2 < 2:
        return p_value, z
    means = (_block_means(ranks[:n1], b1), _block_means(ranks[n1:], b2))
    var_base = statistics.variance(means[0]) / b1
    var_head = statistics.variance(means[1]) / b2
    drift = var_base + var_head
    if drift <= independent:
        return p_value, z
    diff = math.fsum(ranks[n1:]) / n2 - math.fsum(ranks[:n1]) / n1
    t = diff / math.sqrt(drift)
    df = drift ** 2 / (var_base ** 2 / (b1 - 1) + var_head ** 2 / (b2 - 1))
    return max(p_value, _t_p(t, df)), t


def smallest_p(n1: int, n2: int) -> float:
    """The smallest two-sided p-value an exact rank test of n1 and n2 values can give."""
    if not n1 or not n2:
        return 1.0
    if min(n1, n2) >= 30:
        return 0.0  # below 1e-17: no level anyone asks for is out of reach
    return min(1.0, 2 / math.comb(n1 + n2, n1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (each at most 1)."""
    m = len(p_values)
    order = sorted(range(m), key=p_values.__getitem__)
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def median_interval(ordered: Sequence[float], z: float = _Z_EACH) -> tuple[float, float, float]:
    """Return ``(low, median, high)`` of sorted values: a distribution-free interval.

    The interval runs between the order statistics that hold the median with the
    normal approximation of the binomial at ``z`` standard deviations.
    """
    n = len(ordered)
    if not n:
        raise ValueError("no values")
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    k = max(math.floor((n - z * math.sqrt(n)) / 2), 0)
    return ordered[k], median, ordered[min(n - 1 - k, n - 1)]
