"""``diff``'s verdicts: the machine's share of a change, many tests at once, and why.

:mod:`callmetrics._outputs.compare` holds the tests (Mann-Whitney kept honest by
batch means, the median's interval); this module decides with them, per function:

0. **When the calls were made** (:mod:`callmetrics._outputs.timing`).  Each run's
   slower stretches (windows of its calls where the functions ran more than 1.1x
   slower than the run's best) are left out of the comparison; a function whose
   calls in a run fall in fewer than 3 of its 20 windows (one moment of the machine)
   is not gated.

1. **The environment factor.**  Two runs of unchanged code differ when the machine
   does.  Two estimates of how much faster or slower the head's machine was:

   - the *probe* (``_store/probe.py``): the head's median probe time over the
     base's, with an interval from the spread of the probe samples;
   - the *common-mode shift*: the median, over the functions tested, of their
     median ratios, with a robust interval (1.4826 x MAD / sqrt(n), x 1.2533 for
     a median); it *holds* when at least 4 functions were tested and more than half
     of them lie within ``max_ratio`` of it.

   The factor used (``--environment auto``) is the common-mode shift when it holds
   and the probe is missing, too noisy (its interval wider than 1.1x) or disagrees
   with it (fewer than 3 samples in a run counts as too noisy) (outside the shift's interval
   widened by 5 %): the workload's own calls measure what the machine did to *it*;
   else the probe when both runs have one; else none (1).  Each function is then
   judged on its ratio divided by the factor: the head's calls are divided by it
   before the rank test, and the ratio's interval is divided by the factor's.  A
   factor whose own interval holds 1 is within its noise and not applied.  A
   function not called alongside all the others (timing, point 3) is judged instead
   by the common shift of those called alongside it (at least 4, most within
   ``max_ratio`` of it), and is not gated without one.

2. **Many functions at once.**  The p-values of the functions tested are adjusted by
   Holm's step-down method (family-wise error at most ``alpha`` over all of them), and
   each ratio interval is widened to hold for all tested functions together at 95 %
   (Bonferroni: each median's interval at 1 - 0.025/m).

3. **asv's guard.**  A function is not tested when its retained calls cannot reach
   the significance level at all (the exact test's smallest two-sided p,
   2 / C(n1 + n2, n1), is not below ``alpha``), nor with fewer than ``min_calls``.

4. **The gate.**  ``slower`` or ``faster`` when the adjusted p is below ``alpha`` and
   the corrected medians differ by at least ``min_delta``; ``REGRESSED`` only when
   slower and the whole corrected interval lies above ``max_ratio``.

Every comparison carries its reason, in words a CI log can show.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import operator
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from callmetrics._format import duration
from callmetrics._outputs.compare import holm, median_interval, rank_test, smallest_p
from callmetrics._outputs.machine import (
    Environment,
    Estimate,
    Thresholds,
    environment,
    local_shift,
    probe_estimate,
)
from callmetrics._outputs.timing import (
    MIN_ALONGSIDE,
    alongside,
    cut,
    kept,
    moment_reason,
    stretches,
)

if TYPE_CHECKING:
    from callmetrics._engine.state import FunctionSnapshot
    from callmetrics._engine.view import Reading

__all__ = [
    "Comparison",
    "Environment",
    "Estimate",
    "Side",
    "Thresholds",
    "Verdict",
    "compare",
    "holm",
    "judge",
    "smallest_p",
]

Verdict = Literal["slower", "faster", "same", "untested", "new", "gone"]
Calls = Mapping[str, tuple[Sequence[float], Sequence[float]]]


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a diff: merged aggregates, retained calls, probe samples."""

    functions: Sequence[FunctionSnapshot]
    calls: Calls
    """Each function's retained (starts, durations), in the order the calls started."""
    probe: Sequence[float] | None = None
    """The runs' probe samples (seconds); None when a run has none."""
    starts: Sequence[float] | None = None
    """Every retained call's start, in order (what a store reader has at hand), or None."""


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
    """Median of the compared calls (of the sketch when untested)."""
    head_median: float | None
    ratio: float | None
    """Head median / base median, as measured."""
    adjusted: float | None
    """``ratio`` divided by the environment factor."""
    ratio_low: float | None
    """Lower end of the corrected ratio's simultaneous 95 % interval (None: untested)."""
    ratio_high: float | None
    p_value: float | None
    """Holm-adjusted two-sided p-value (None when untested)."""
    raw_p: float | None
    verdict: Verdict
    regressed: bool
    reason: str
    """Why the row has its verdict, in a few words."""
    factor: float = 1.0
    """The environment factor this function was judged by (1: none; NaN: unknown, as
    for a function not gated for want of functions called alongside it)."""
    alongside: int | None = None
    """Tested functions called alongside it (None: all of them, or not looked at)."""

    @property
    def tested(self) -> bool:
        return self.p_value is not None

    @property
    def total(self) -> float:
        """Seconds spent in the function in both runs (a sort key)."""
        return (self.base.total if self.base else 0.0) + (self.head.total if self.head else 0.0)

    def p95(self, side: Literal["base", "head"]) -> float | None:
        """The p95 of every call of one side (from its sketch)."""
        snap = self.base if side == "base" else self.head
        return snap.sketch.quantile(0.95) if snap else None


# ------------------------------------------------------------------------ judging
@dataclass(slots=True)
class _Row:
    name: str
    event_type: str
    old: FunctionSnapshot | None
    new: FunctionSnapshot | None
    xs: Sequence[float]
    ys: Sequence[float]
    x_starts: Sequence[float]
    y_starts: Sequence[float]
    left: tuple[int, int] = (0, 0)
    """Calls of each side left out (made in its slower stretches)."""
    reason: str = ""
    medians: tuple[float, float] | None = None
    ordered: tuple[list[float], list[float]] = ([], [])
    raw_p: float | None = None
    factor: Estimate | None = None
    alongside: int | None = None


def _median(ordered: Sequence[float]) -> float:
    return statistics.median(ordered)


def _ratio(new: float | None, old: float | None) -> float | None:
    if new is None or old is None:
        return None
    if old == 0:
        return 1.0 if new == 0 else math.inf
    return new / old


def _untested_reason(row: _Row, limits: Thresholds) -> str | None:
    nx, ny = len(row.xs), len(row.ys)
    for side, n, snap in (("base", nx, row.old), ("head", ny, row.new)):
        if n == 0:
            calls = snap.calls if snap else 0
            return (f"0 retained in {side} ({calls:,} call{'s' if calls > 1 else ''}): "
                    "raise max_events"
                    if calls else f"no call in {side}")
    few = [(side, n, snap, left) for side, n, snap, left in
           (("base", nx, row.old, row.left[0]), ("head", ny, row.new, row.left[1]))
           if n < limits.min_calls]
    if few:
        said = " and ".join(f"{n} retained in {side}"
                            + (f" ({left} more in its slower stretches, left out)" if left else "")
                            for side, n, _, left in few)
        hint = (": raise max_events" if any(snap is not None and snap.calls > n + left
                                            for _, n, snap, left in few) else "")
        return f"{said} (< --min-calls {limits.min_calls}){hint}"
    if smallest_p(nx, ny) >= limits.alpha:
        return f"{nx} and {ny} retained: the test cannot reach p < {limits.alpha:g}"
    return None


def judge(base: Side, head: Side, limits: Thresholds,
          keep: Callable[[str], bool] | None = None) -> tuple[list[Comparison], Environment]:
    """Compare every function (those ``keep`` accepts); significant changes first."""
    before = {s.name: s for s in base.functions}
    after = {s.name: s for s in head.functions}
    empty: tuple[Sequence[float], Sequence[float]] = ((), ())
    cuts = (cut(base.calls, starts=base.starts), cut(head.calls, starts=head.starts))
    # Each function's durations sorted once a side: for the slower stretches, the
    # medians and their intervals, and (merged) the rank test's pooled order.
    ordered = ({name: sorted(d) for name, (_, d) in base.calls.items()},
               {name: sorted(d) for name, (_, d) in head.calls.items()})
    spans = (stretches(base.calls, cuts[0], ordered[0]),
             stretches(head.calls, cuts[1], ordered[1]))
    rows = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        x_starts, xs = (kept(base.calls, cuts[0], spans[0].left_out, name)
                        if name in base.calls else empty)
        y_starts, ys = (kept(head.calls, cuts[1], spans[1].left_out, name)
                        if name in head.calls else empty)
        either = new or old
        left = (len(base.calls[name][1]) - len(xs) if name in base.calls else 0,
                len(head.calls[name][1]) - len(ys) if name in head.calls else 0)
        row = _Row(name, either.event_type if either else "", old, new, xs, ys,
                   x_starts, y_starts, left)
        # Nothing left out: the kept calls are all of them, already sorted.
        row.ordered = (ordered[0][name] if name in base.calls and not left[0] else sorted(xs),
                       ordered[1][name] if name in head.calls and not left[1] else sorted(ys))
        rows.append(row)
    testable = []
    for row in rows:
        if row.old is None or row.new is None:
            row.reason = "only in head" if row.old is None else "only in base"
            continue
        reason = _untested_reason(row, limits) or moment_reason(row.name, cuts, spans)
        if reason is not None:
            row.reason = reason
            continue
        row.medians = (_median(row.ordered[0]), _median(row.ordered[1]))
        testable.append(row)
    ratios = [r for row in testable if row.medians
              for r in [_ratio(row.medians[1], row.medians[0])] if r is not None]
    env = dataclasses.replace(
        environment(ratios, probe_estimate(base.probe, head.probe), limits), stretches=spans)
    _local_factors(cuts, testable, env, limits)
    chosen = [row for row in testable if (keep is None or keep(row.name))
              and row.factor is not None]
    shown = [row for row in rows if keep is None or keep(row.name)]
    for row in chosen:
        factor = row.factor.value if row.factor else 1.0
        ys, oys = row.ys, row.ordered[1]
        if factor != 1.0:  # dividing by a positive factor keeps the order
            ys, oys = (list(map(operator.mul, values, itertools.repeat(1 / factor)))
                       for values in (ys, oys))
        row.raw_p, _z = rank_test(row.xs, ys, starts=(row.x_starts, row.y_starts),
                                  ordered=(row.ordered[0], oys))
    adjusted = dict(zip((row.name for row in chosen),
                        holm([row.raw_p if row.raw_p is not None else 1.0 for row in chosen]),
                        strict=True))
    z_each = statistics.NormalDist().inv_cdf(1 - 0.0125 / max(1, len(chosen)))
    found = [_decide(row, adjusted.get(row.name), z_each, env.factor, limits) for row in shown]
    return sorted(found, key=lambda c: (_rank(c), -c.total, c.name)), env


_NONE = Estimate(1.0, 1.0, 1.0)


def _local_factors(cuts: tuple[Mapping[str, Sequence[int]], Mapping[str, Sequence[int]]],
                   testable: list[_Row], env: Environment, limits: Thresholds) -> None:
    """Each tested function's factor: the run's, or that of the functions alongside it.

    With no common shift to be had (fewer than 4 functions tested, or the probe or no
    correction asked for), every function takes the run's factor.  Otherwise a
    function called alongside all the others takes it too; one called at other times
    takes the common shift of the functions called alongside it (at least
    :data:`~callmetrics._outputs.timing.MIN_ALONGSIDE`, and most of them within
    ``max_ratio`` of it), and without such functions it is not gated.
    """
    names = [row.name for row in testable]
    if len(names) < MIN_ALONGSIDE or limits.environment not in ("auto", "common"):
        for row in testable:
            row.factor = env.factor
        return
    near = alongside(cuts[0], cuts[1], names)
    logs = {row.name: math.log(row.medians[1] / row.medians[0])
            for row in testable if row.medians and min(row.medians) > 0}
    for row in testable:
        others = near[row.name]
        if len(others) == len(names) - 1:
            row.factor = env.factor
            continue
        row.alongside = len(others)
        local = local_shift([logs[n] for n in others if n in logs], limits)
        if isinstance(local, str):
            row.reason = local
        else:
            row.factor = _NONE if local.low <= 1.0 <= local.high else local


def _decide(row: _Row, p_value: float | None, z_each: float, run_factor: Estimate,
            limits: Thresholds) -> Comparison:
    old, new = row.old, row.new
    factor = row.factor or run_factor
    unknown = row.alongside is not None and row.factor is None  # not gated: no local shift
    if p_value is None or row.medians is None or old is None or new is None:
        m_old = old.sketch.quantile(0.5) if old else None
        m_new = new.sketch.quantile(0.5) if new else None
        verdict: Verdict = "new" if old is None else "gone" if new is None else "untested"
        ratio = _ratio(m_new, m_old)
        return Comparison(row.name, row.event_type, old, new, len(row.xs), len(row.ys), m_old,
                          m_new, ratio, None if ratio is None or unknown else ratio / factor.value,
                          None, None, None, None, verdict, regressed=False, reason=row.reason,
                          factor=math.nan if unknown else factor.value, alongside=row.alongside)
    lo_old, m_old, hi_old = median_interval(row.ordered[0], z_each)
    lo_new, m_new, hi_new = median_interval(row.ordered[1], z_each)
    ratio = _ratio(m_new, m_old)
    assert ratio is not None  # noqa: S101  # both medians known
    adjusted = ratio / factor.value
    low = (_ratio(lo_new, hi_old) or 0.0) / factor.high
    high = (_ratio(hi_new, lo_old) or math.inf) / factor.low
    apart = abs(m_new / factor.value - m_old)
    interval = f"CI [{low:.2f}, {high:.2f}]"
    verdict = "same"
    regressed = False
    if p_value >= limits.alpha:
        reason = f"p={_p(p_value)} after Holm, not below {limits.alpha:g}"
    elif apart < limits.min_delta:
        reason = (f"below --min-delta {duration(limits.min_delta)}: medians "
                  f"{duration(apart)} apart")
    elif m_new / factor.value > m_old:
        verdict = "slower"
        regressed = low > limits.max_ratio
        if regressed:
            reason = f"{interval} above --max-ratio {limits.max_ratio:g}"
        elif high <= limits.max_ratio:
            reason = f"{interval} within --max-ratio {limits.max_ratio:g}"
        else:
            reason = f"{interval} includes {limits.max_ratio:g}"
    else:
        verdict = "faster"
        reason = f"{interval}, p={_p(p_value)} after Holm"
    if row.alongside is not None:
        reason += (f" (judged by the {row.alongside} functions called alongside it: machine "
                   f"{factor.value:.2f}x)")
    return Comparison(row.name, row.event_type, old, new, len(row.xs), len(row.ys), m_old,
                      m_new, ratio, adjusted, low, high, p_value, row.raw_p, verdict,
                      regressed=regressed, reason=reason, factor=factor.value,
                      alongside=row.alongside)


def _p(value: float) -> str:
    return "<1e-99" if value < 1e-99 else f"{value:.2g}"


def _rank(c: Comparison) -> int:
    """Where a comparison's group comes in the table: significant changes first."""
    order = {"slower": 1, "faster": 2, "same": 3, "untested": 4, "new": 5, "gone": 6}
    return 0 if c.regressed else order[c.verdict]


def compare(base: Reading, head: Reading, limits: Thresholds) -> list[Comparison]:
    """Compare two readings (no probe): :func:`judge` on their retained calls."""
    return judge(_side(base), _side(head), limits)[0]


def _side(reading: Reading) -> Side:
    calls: dict[str, tuple[list[float], list[float]]] = {}
    for call in sorted(reading.calls, key=lambda c: c.start):
        starts, durations = calls.setdefault(call.name, ([], []))
        starts.append(call.start)
        durations.append(call.duration)
    return Side(reading.functions, calls)
