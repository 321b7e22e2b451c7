"""The statistics behind ``callmetrics diff``: is one run's function really slower?

Per function, the two runs' retained call durations are compared with a two-sided
Mann-Whitney U test (ranks with ties averaged, the tie-corrected normal
approximation with a continuity correction), written here so that no statistics
package is needed at run time.  The effect is the ratio of the two medians, with a
distribution-free confidence interval built from each median's order-statistic
interval.  A function is ``slower`` or ``faster`` only when the test is significant
*and* the medians differ by at least an absolute noise floor; it *regresses* (the
CI gate fails) only when it is slower by more than the accepted ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from callmetrics._state import FunctionSnapshot
    from callmetrics._view import Reading

__all__ = [
    "Comparison",
    "Thresholds",
    "compare",
    "mann_whitney",
    "median_interval",
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
    values = [*base, *head]
    total = n1 + n2
    order = sorted(range(total), key=values.__getitem__)
    head_rank_sum = 0.0
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
        head_rank_sum += rank * sum(1 for k in range(i, j + 1) if order[k] >= n1)
        i = j + 1
    u_head = head_rank_sum - n2 * (n2 + 1) / 2
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((total + 1) - ties / (total * (total - 1)))
    if variance <= 0:
        return 1.0, 0.0
    shift = u_head - mean
    shift -= math.copysign(min(0.5, abs(shift)), shift)
    z = shift / math.sqrt(variance)
    return min(1.0, math.erfc(abs(z) / math.sqrt(2))), z


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


def _durations(reading: Reading) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for call in reading.calls:
        found.setdefault(call.name, []).append(call.duration)
    return found


def compare(base: Reading, head: Reading, limits: Thresholds) -> list[Comparison]:
    """Compare every function of two readings; most significant first, then by time.

    Untested functions (too few retained calls, or only in one run) come after the
    tested ones, by total time.
    """
    before = {s.name: s for s in base.functions}
    after = {s.name: s for s in head.functions}
    samples_before, samples_after = _durations(base), _durations(head)
    found = [_one(name, before.get(name), after.get(name),
                  sorted(samples_before.get(name, ())), sorted(samples_after.get(name, ())),
                  limits)
             for name in before.keys() | after.keys()]
    return sorted(found, key=lambda c: (c.p_value if c.p_value is not None else 2.0,
                                        -c.total, c.name))


def _one(name: str, old: FunctionSnapshot | None, new: FunctionSnapshot | None,
         xs: list[float], ys: list[float], limits: Thresholds) -> Comparison:
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
    p_value, _z = mann_whitney(xs, ys)
    lo_old, m_old, hi_old = median_interval(xs)
    lo_new, m_new, hi_new = median_interval(ys)
    ratio = _ratio(m_new, m_old)
    low = _ratio(lo_new, hi_old)
    high = _ratio(hi_new, lo_old)
    verdict: Verdict = "same"
    if p_value < limits.alpha and abs(m_new - m_old) >= limits.min_delta:
        verdict = "slower" if m_new > m_old else "faster"
    regressed = verdict == "slower" and ratio is not None and ratio > limits.max_ratio
    return Comparison(name, event_type, old, new, len(xs), len(ys), m_old, m_new, ratio, low,
                      high, p_value, verdict, regressed=regressed)
