"""Change points in a series of runs: where a function's speed stepped, and by how much.

The method is the one Hunter and Apache Otava use on benchmark histories (Daly et
al., "Creating a Virtuous Cycle in Performance Testing at MongoDB", ICPE 2021; Fleming
et al., "Hunter: Using Change Point Detection to Hunt for Performance Regressions",
ICPE 2023): E-divisive means (Matteson & James, 2014) proposes where to cut, and a
Student t-test instead of a permutation test decides whether the cut is real, so
that the answer is deterministic and cheap:

1. In a segment of the series (at first the whole of it), every cut leaving at least
   ``min_size`` values on each side is scored by the energy statistic
   ``Q = m n / (m + n) * (2/(m n) sum|x - y| - 1/C(m,2) sum|x - x'| - 1/C(n,2) sum|y - y'|)``
   (``x`` the ``m`` values before the cut, ``y`` the ``n`` after, exponent 1): it
   grows with how differently the two sides are distributed, whatever the shape.
2. The best cut is tested: Welch's t on the logarithms of the values on each side.
   Below ``alpha``, it is a change point, and both sides are searched again; else
   the segment has none.

Values are compared as logarithms, so that a step is a ratio (1.2x is the same step
at 1 µs as at 1 s).  Each change point carries the ratio of the geometric means
after and before it (within the segments the search ended with), its 95 % interval
(Welch), and the p-value.  The recursion is O(n^2) per segment with running sums.

:func:`newest_step` answers ``history --gate``: is the newest value outside what the
values since the last change point predict (a one-sided t prediction interval),
slower by more than ``max_ratio``?
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Step", "find_steps", "newest_step", "t_quantile", "welch"]

ALPHA = 0.001
MIN_SIZE = 4


@dataclass(frozen=True, slots=True)
class Step:
    """A change point: the series is different from ``index`` on."""

    index: int
    """Position of the first value after the change."""
    ratio: float
    """Geometric mean after / before (within the neighbouring segments)."""
    low: float
    high: float
    p_value: float


def _t_sf(t: float, df: float) -> float:
    """One-sided upper tail of Student's t (regularised incomplete beta, by continued fraction)."""
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2, 0.5, x)
    return tail if t > 0 else 1 - tail


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta I_x(a, b) (Numerical Recipes' continued fraction)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1 - _betainc(b, a, 1 - x)
    f, c, d = 1.0, 1.0, 0.0
    for i in range(200):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + numerator * d
        d = 1 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1 + numerator / (c if abs(c) > 1e-300 else 1e-300)
        f *= c * d
        if abs(1 - c * d) < 1e-12:
            break
    return front * (f - 1) / a


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (0.5 < p < 1) of Student's t, by bisection on the tail."""
    low, high = 0.0, 1e3
    for _ in range(80):
        middle = (low + high) / 2
        if _t_sf(middle, df) > 1 - p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def welch(before: Sequence[float], after: Sequence[float]) -> tuple[float, float, float, float]:
    """Welch's t on two samples: (difference of means, its 95 % half-width, p, df)."""
    m, n = len(before), len(after)
    var_b = statistics.variance(before) / m if m > 1 else 0.0
    var_a = statistics.variance(after) / n if n > 1 else 0.0
    diff = statistics.fmean(after) - statistics.fmean(before)
    se2 = var_b + var_a
    if se2 <= 0:
        return diff, 0.0, 0.0 if diff else 1.0, max(1.0, m + n - 2.0)
    df = se2 ** 2 / ((var_b ** 2 / (m - 1) if m > 1 else 0.0)
                     + (var_a ** 2 / (n - 1) if n > 1 else 0.0) or 1e-300)
    df = max(1.0, df)
    t = diff / math.sqrt(se2)
    p = min(1.0, 2 * _t_sf(abs(t), df))
    return diff, t_quantile(0.975, df) * math.sqrt(se2), p, df


def _best_cut(logs: Sequence[float], min_size: int) -> int | None:
    """The cut (index into ``logs``) maximising the E-divisive statistic, or None."""
    n = len(logs)
    if n < 2 * min_size:
        return None
    # Running sums of |x_i - x_j|: within the left part, within the right, between.
    row = [[abs(a - b) for b in logs] for a in logs]
    total = [sum(r) for r in row]
    left = 0.0  # sum over pairs i < k < cut
    right = sum(total) / 2  # pairs within [cut, n)
    between = 0.0
    best, best_q = None, -math.inf
    for cut in range(1, n - 1 + 1):
        # Move value cut-1 from the right part to the left one.
        moved = cut - 1
        to_left = sum(row[moved][:moved])
        to_right = total[moved] - to_left  # includes |x - x| = 0
        left += to_left
        right -= to_right
        between += to_right - to_left
        m, k = cut, n - cut
        if m < min_size or k < min_size:
            continue
        energy = (2 * between / (m * k) - left / (m * (m - 1) / 2) - right / (k * (k - 1) / 2))
        q = m * k / (m + k) * energy
        if q > best_q:
            best, best_q = cut, q
    return best


def find_steps(values: Sequence[float], *, alpha: float = ALPHA,
               min_size: int = MIN_SIZE) -> list[Step]:
    """The change points of a series of positive values, in order (see the module)."""
    logs = [math.log(v) for v in values]
    cuts: list[int] = []
    pending = [(0, len(logs))]
    while pending:
        start, end = pending.pop()
        cut = _best_cut(logs[start:end], min_size)
        if cut is None:
            continue
        _, _, p, _ = welch(logs[start:start + cut], logs[start + cut:end])
        if p < alpha:
            cuts.append(start + cut)
            pending += [(start, start + cut), (start + cut, end)]
    cuts.sort()
    steps = []
    edges = [0, *cuts, len(logs)]
    for i, cut in enumerate(cuts):
        before, after = logs[edges[i]:cut], logs[cut:edges[i + 2]]
        diff, half, p, _ = welch(before, after)
        steps.append(Step(cut, math.exp(diff), math.exp(diff - half), math.exp(diff + half), p))
    return steps


def newest_step(values: Sequence[float], steps: Sequence[Step], *, alpha: float = ALPHA,
                ) -> Step | None:
    """The newest value as a step up from the values since the last change point, or None.

    A one-sided test of the newest logarithm against the t prediction interval of
    the earlier ones (at least 3 of them); its ratio's interval is the prediction
    interval's.  None when it is not significantly higher.
    """
    if len(values) < 4:
        return None
    since = steps[-1].index if steps and steps[-1].index < len(values) - 3 else 0
    logs = [math.log(v) for v in values[since:]]
    earlier, newest = logs[:-1], logs[-1]
    n = len(earlier)
    center = statistics.fmean(earlier)
    spread = statistics.stdev(earlier) * math.sqrt(1 + 1 / n)
    if spread <= 0:
        return None if newest <= center else Step(len(values) - 1, math.exp(newest - center),
                                                  math.exp(newest - center),
                                                  math.exp(newest - center), 0.0)
    t = (newest - center) / spread
    p = _t_sf(t, n - 1)
    if p >= alpha:
        return None
    half = t_quantile(0.975, n - 1) * spread
    diff = newest - center
    return Step(len(values) - 1, math.exp(diff), math.exp(diff - half), math.exp(diff + half), p)
