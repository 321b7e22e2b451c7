"""The statistics behind ``callmetrics diff``: is one run's function really slower?

Per function, the two runs' retained call durations are compared with a two-sided
Mann-Whitney U test (ranks with ties averaged, the tie-corrected normal
approximation with a continuity correction), written here so that no statistics
package is needed at run time, and kept from over-confidence when a run's calls
drift together (machine load, warm-up) by a batch-means variance (see
:func:`rank_test`).  The effect is the ratio of the two medians, with a
distribution-free confidence interval built from each median's order-statistic
interval.  A function is ``slower`` or ``faster`` only when the test is significant
*and* the medians differ by at least an absolute noise floor; it *regresses* (the
CI gate fails) only when it is slower by more than the accepted ratio.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from callmetrics._engine.state import FunctionSnapshot
    from callmetrics._engine.view import Reading

__all__ = [
    "Comparison",
    "Thresholds",
    "compare",
    "mann_whitney",
    "median_interval",
    "rank_test",
]

Verdict = Literal["slower", "faster", "same", "new", "gone"]

# Each median's interval at 97.5 %: both hold together at least 95 % of the time, so
# the ratio interval built from them covers the true ratio at least 95 % of the time.
_Z_EACH = 2.2414027276049473


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a difference counts: significance, noise floor, accepted slowdown."""

    alpha: float = 0.002
    """A difference is significant when the test's p-value is below this."""
    min_calls: int = 30
    """Fewer retained calls than this on either side: no test, the verdict is ``same``."""
    min_delta: float = 1e-6
    """Medians closer than this many seconds are ``same`` whatever the test says."""
    max_ratio: float = 1.1
    """A ``slower`` function whose median ratio exceeds this regresses."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """One function compared between the base and the head run."""

    name: str
    event_type: str
    base: FunctionSnapshot | None
    head: FunctionSnapshot | None
    base_samples: int
    """Retained calls of the base run compared."""
    head_samples: int
    base_median: float | None
    """Median of the compared calls (of the sketch when there were too few)."""
    head_median: float | None
    ratio: float | None
    """Head median / base median."""
    ratio_low: float | None
    """Lower end of the ratio's 95 % confidence interval (None when untested)."""
    ratio_high: float | None
    p_value: float | None
    """Two-sided Mann-Whitney p-value (None when untested)."""
    verdict: Verdict
    regressed: bool
    """Significantly slower by more than ``max_ratio``: fails the gate."""

    @property
    def tested(self) -> bool:
        """Whether both runs had enough retained calls for the test."""
        return self.p_value is not None

    @property
    def total(self) -> float:
        """Seconds spent in the function in both runs (a sort key)."""
        return (self.base.total if self.base else 0.0) + (self.head.total if self.head else 0.0)

    def p95(self, side: Literal["base", "head"]) -> float | None:
        """The p95 of every call of one side (from its sketch)."""
        snap = self.base if side == "base" else self.head
        return snap.sketch.quantile(0.95) if snap else None


def _average_ranks(values: Sequence[float]) -> tuple[list[float], float]:
    """Return each value's rank (1-based, ties averaged) and the tie term sum(t^3 - t)."""
    total = len(values)
    order = sorted(range(total), key=values.__getitem__)
    ranks = [0.0] * total
    ties = 0.0
    i = 0
    while i < total:
        j = i
        value = values[order[i]]
        while j + 1 < total and values[order[j + 1]] == value:
            j += 1
        run = j - i + 1
        if run > 1:
            ties += run ** 3 - run
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = rank
        i = j + 1
    return ranks, ties


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

    Runs made side by side (interleaved calls, or two processes at once) share the
    machine's drift; comparing them window by window cancels it.  They count as side by
    side when their time spans overlap over at least half of their union.
    """
    lows, highs = (min(base_starts), min(head_starts)), (max(base_starts), max(head_starts))
    first, last = max(lows), min(highs)
    if last <= first or last - first < 0.5 * (max(highs) - min(lows)):
        return None
    width = (last - first) / blocks
    windows: list[tuple[list[float], list[float]]] = [([], []) for _ in range(blocks)]
    for side, ranks, starts in ((0, base, base_starts), (1, head, head_starts)):
        for rank, start in zip(ranks, starts, strict=True):
            if first <= start <= last:
                windows[min(int((start - first) / width), blocks - 1)][side].append(rank)
    diffs = [statistics.fmean(h) - statistics.fmean(b) for b, h in windows
             if len(b) >= 3 and len(h) >= 3]
    return diffs if len(diffs) >= 4 else None


def rank_test(base: Sequence[float], head: Sequence[float], blocks: int = 10, *,
              starts: tuple[Sequence[float], Sequence[float]] | None = None,
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
    Returns the two-sided p-value and the z (or t) score, positive when ``head`` is
    slower; never more significant than :func:`mann_whitney`.
    """
    n1, n2 = len(base), len(head)
    if not n1 or not n2:
        raise ValueError("both samples need at least one value")
    ranks, ties = _average_ranks([*base, *head])
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


def _ratio(new: float | None, old: float | None) -> float | None:
    if new is None or old is None:
        return None
    if old == 0:
        return 1.0 if new == 0 else math.inf
    return new / old


def _durations(reading: Reading) -> dict[str, tuple[list[float], list[float]]]:
    """Each function's retained (start times, durations), in the order the calls started."""
    found: dict[str, tuple[list[float], list[float]]] = {}
    for call in sorted(reading.calls, key=lambda c: c.start):
        starts, durations = found.setdefault(call.name, ([], []))
        starts.append(call.start)
        durations.append(call.duration)
    return found


def _rank(c: Comparison) -> int:
    """Where a comparison's group comes in the table: significant changes first."""
    if c.regressed:
        return 0
    if c.verdict in ("slower", "faster"):
        return 1 if c.verdict == "slower" else 2
    if c.verdict == "same":
        return 3 if c.tested else 4
    return 5 if c.verdict == "new" else 6


def compare(base: Reading, head: Reading, limits: Thresholds) -> list[Comparison]:
    """Compare every function of two readings; significant changes first, then by time.

    The groups come in this order: regressions, other slower functions, faster ones,
    the same (tested), too few calls to test, new, gone; within a group the largest
    total time (both runs together) first, as in ``stats``.  A p-value above
    ``alpha`` says nothing about how the functions differ, so it orders nothing.
    """
    before = {s.name: s for s in base.functions}
    after = {s.name: s for s in head.functions}
    samples_before, samples_after = _durations(base), _durations(head)
    empty: tuple[list[float], list[float]] = ([], [])
    found = [_one(name, before.get(name), after.get(name), samples_before.get(name, empty),
                  samples_after.get(name, empty), limits)
             for name in before.keys() | after.keys()]
    return sorted(found, key=lambda c: (_rank(c), -c.total, c.name))


def _one(name: str, old: FunctionSnapshot | None, new: FunctionSnapshot | None,
         before: tuple[list[float], list[float]], after: tuple[list[float], list[float]],
         limits: Thresholds) -> Comparison:
    (x_starts, xs), (y_starts, ys) = before, after
    either = new or old
    event_type = either.event_type if either else ""
    if old is None or new is None:
        return Comparison(name, event_type, old, new, len(xs), len(ys),
                          old.sketch.quantile(0.5) if old else None,
                          new.sketch.quantile(0.5) if new else None, None, None, None, None,
                          "new" if old is None else "gone", regressed=False)
    if min(len(xs), len(ys)) < limits.min_calls:
        # Too few to test: show the sketches' medians, and call it the same.
        m_old, m_new = old.sketch.quantile(0.5), new.sketch.quantile(0.5)
        return Comparison(name, event_type, old, new, len(xs), len(ys), m_old, m_new,
                          _ratio(m_new, m_old), None, None, None, "same", regressed=False)
    p_value, _z = rank_test(xs, ys, starts=(x_starts, y_starts))
    lo_old, m_old, hi_old = median_interval(sorted(xs))
    lo_new, m_new, hi_new = median_interval(sorted(ys))
    ratio = _ratio(m_new, m_old)
    low = _ratio(lo_new, hi_old)
    high = _ratio(hi_new, lo_old)
    verdict: Verdict = "same"
    if p_value < limits.alpha and abs(m_new - m_old) >= limits.min_delta:
        verdict = "slower" if m_new > m_old else "faster"
    regressed = verdict == "slower" and ratio is not None and ratio > limits.max_ratio
    return Comparison(name, event_type, old, new, len(xs), len(ys), m_old, m_new, ratio, low,
                      high, p_value, verdict, regressed=regressed)
