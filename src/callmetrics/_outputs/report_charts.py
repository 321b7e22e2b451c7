"""The report's charts: time per function, a latency histogram per busy function, outliers.

The timeline's data is built in ``_report_timeline``.  Every function here takes
what the report read through the ``Source`` interface (``FunctionSnapshot``
aggregates, the retained calls as ``CallColumns``) and returns plain data
for the template: coordinates in SVG units, labels already formatted with
``_format`` and made safe with ``printable``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import gt
from typing import NamedTuple

from callmetrics._engine.columns import CallColumns
from callmetrics._engine.sketch import bucket_bounds, bucket_keys
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._format import count, duration, percent, printable
from callmetrics._outputs.names import natural_key
from callmetrics._outputs.report_time import own_time

__all__ = [
    "HIST",
    "HIST_MIN_CALLS",
    "OUTLIER_FLOOR",
    "OUTLIER_MIN_CALLS",
    "OUTLIER_SPREAD",
    "Bounds",
    "Histogram",
    "Marker",
    "MarkerLabel",
    "Percentiles",
    "above_p99",
    "axis_label",
    "calls_label",
    "chosen_for_histograms",
    "detail_histograms",
    "frange",
    "histograms",
    "nice_step",
    "outlier_bounds",
    "short_count",
    "shorten",
]

# Charts stay readable with this many entries; the rest are summed, greyed or left out.
_MAX_HISTOGRAMS = 12
_HIST_BINS = 36
# The overflow bar's column, right of a clipped axis (SVG units).
_OVERFLOW_W = 30
# A histogram needs this many calls to say something.
HIST_MIN_CALLS = 20
# Functions whose histograms the detail view can show.
_MAX_DETAIL_HISTOGRAMS = 60
# A function needs this many calls before its own p95/p99 mean anything.
OUTLIER_MIN_CALLS = 20
# ~1% of calls are above a p99 by definition: they are outliers worth a look only when
# the tail is far from the body (p99 at least 5 times p50) and long enough to matter.
OUTLIER_SPREAD = 5.0
OUTLIER_FLOOR = 100e-6


def calls_label(n: int, noun: str = "call") -> str:
    """``1 call``, ``2,345 calls``."""
    return f"{count(n)} {noun}{'' if n == 1 else 's'}"


def short_count(n: int) -> str:
    """A count for a narrow axis: ``950``, ``1.5k``, ``20k``, ``3M`` (tick values are round)."""
    for scale, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return str(n)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------- latency histograms
HIST = {"width": 360, "height": 160, "left": 46, "right": 10, "top": 40, "bottom": 30}


@dataclass(frozen=True, slots=True)
class Rect:
    """A histogram bin (SVG units) with its tooltip."""

    x: float
    y: float
    width: float
    height: float
    tip: str


@dataclass(frozen=True, slots=True)
class Tick:
    """An axis tick: position (SVG units) and label."""

    at: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True, slots=True)
class Marker:
    """A percentile line (p50, p95 or p99) across the plot."""

    x: float
    label: str
    tip: str


@dataclass(frozen=True, slots=True)
class MarkerLabel:
    """The label of one or more percentile lines, in the band above the plot, on ``row``."""

    x: float
    text: str
    kind: str
    row: int
    anchor: str


@dataclass(slots=True)
class Histogram:
    """One function's latency distribution on its own logarithmic duration axis."""

    name: str
    caption: str
    bins: list[Rect] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    labels: list[MarkerLabel] = field(default_factory=list)
    overflow: Rect | None = None
    """The calls past the p99.9, when the axis is clipped there."""
    overflow_label: Tick | None = None


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 5 times 10^k at or above ``raw``."""
    exponent = math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        step = factor * 10.0**exponent
        if step >= raw * (1 - 1e-9):
            return step
    return 10.0 ** (exponent + 1)  # pragma: no cover  # 10 times 10^k always qualifies


def axis_label(seconds: float) -> str:
    """A tick label: ``duration`` without trailing zeros (``2 ms``, ``1.5 µs``)."""
    text = duration(seconds)
    number, _, unit = text.partition(" ")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return f"{number} {unit}"


def _duration_ticks(low: float, high: float, x_of: Callable[[float], float]) -> list[Tick]:
    """Ticks at 1-2-5 values between 10^low and 10^high whose labels do not overlap."""
    values = [m * 10.0**e for e in range(math.floor(low), math.ceil(high) + 1) for m in (1, 2, 5)]
    inside = [v for v in values if low - 1e-9 <= math.log10(v) <= high + 1e-9]

    def fits(ticks: list[Tick]) -> bool:
        return all(b.at - a.at >= (len(a.label) + len(b.label)) / 2 * _CHAR_WIDTH + 6
                   for a, b in itertools.pairwise(ticks))

    if len(inside) < 2:  # a narrow axis: two round values inside it instead
        inside = [float(f"{10 ** (low + (high - low) * f):.2g}") for f in (0.2, 0.8)]
        return [Tick(x_of(v), axis_label(v)) for v in inside]
    for keep in ((1, 2, 5), (1, 5), (1,)):
        chosen = [Tick(x_of(v), axis_label(v)) for v in inside
                  if round(v / 10.0 ** math.floor(math.log10(v) + 1e-9)) in keep]
        if len(chosen) >= 2 and fits(chosen):
            return chosen
    for stride in range(2, len(chosen) + 1):
        if fits(chosen[::stride]):
            return chosen[::stride]
    return chosen[:1]  # pragma: no cover  # one tick always fits


_CHAR_WIDTH = 6.6  # SVG units per character of an 11-unit bold label, generously


def _place_labels(markers: Sequence[Marker], width: float) -> list[MarkerLabel]:
    """Label percentile lines in two rows above the plot so that no two labels overlap.

    Lines too close to be labelled apart share one label (``p95/p99``).
    """
    placed: list[tuple[float, float, MarkerLabel]] = []  # extent, then the label

    def extent(x: float, text: str) -> tuple[float, float, str]:
        w = len(text) * _CHAR_WIDTH
        if x - w / 2 < 2:
            return x, x + w, "start"
        if x + w / 2 > width - 2:
            return x - w, x, "end"
        return x - w / 2, x + w / 2, "middle"

    merged: list[Marker] = []
    for line in markers:  # lines a few units apart share a label
        if merged and line.x - merged[-1].x < 4:
            last = merged.pop()
            line = Marker(last.x, f"{last.label}/{line.label}", last.tip)  # noqa: PLW2901  # merged
        merged.append(line)
    for marker in merged:
        lo, hi, anchor = extent(marker.x, marker.label)
        for row in (0, 1):
            if all(hi + 6 < a or lo - 6 > b for a, b, lab in placed if lab.row == row):
                placed.append((lo, hi, MarkerLabel(marker.x, marker.label,
                                                   marker.label.partition("/")[0], row, anchor)))
                break
        else:  # no room in either row: join the nearest label
            a, b, near = min(placed, key=lambda item: abs(item[2].x - marker.x))
            text = f"{near.text}/{marker.label}"
            lo, hi, anchor = extent(near.x, text)
            placed[placed.index((a, b, near))] = (lo, hi, MarkerLabel(
                near.x, text, near.kind, near.row, anchor))
    return [label for _, _, label in placed]


def _histogram(snap: FunctionSnapshot) -> Histogram | None:
    positive = [(lo, hi, n) for lo, hi, n in snap.sketch.buckets() if hi > 0]
    if not positive or snap.max <= 0:
        return None
    zeros = snap.calls - sum(n for lo, _, n in positive if lo > 0)
    smallest = max(min(lo for lo, _, _ in positive), snap.min or 0.0) or positive[0][1] / 2
    # The axis ends at the p99.9 (the top of its bucket): the few calls past it are one
    # overflow bar at the right, so that one very slow call does not squeeze the rest.
    # p99.9, p50, p95, p99: one pass over the buckets.
    p999, *values = snap.sketch.quantiles((0.999, 0.5, 0.95, 0.99))
    clip = snap.max
    if p999 is not None and p999 > 0 and snap.calls >= 1000:
        clip = min(max(bucket_bounds(bucket_keys([p999])[0])[1], p999), snap.max)
    overflow = sum(n for lo, _, n in positive if lo >= clip) if clip < snap.max else 0
    if not overflow:
        clip = snap.max
    low, high = math.log10(min(smallest, clip)), math.log10(clip)
    pad = max(0.1 - (high - low), 0.0) / 2 + 0.02  # at least a factor of 1.26 wide
    low, high = low - pad, high + pad
    width, height = HIST["width"], HIST["height"]
    plot_w = width - HIST["left"] - HIST["right"] - (_OVERFLOW_W if overflow else 0)
    plot_h = height - HIST["top"] - HIST["bottom"]
    bin_w = plot_w / _HIST_BINS

    def x_of(seconds: float) -> float:
        position = (math.log10(seconds) - low) / (high - low) if seconds > 0 else 0.0
        return HIST["left"] + min(max(position, 0.0), 1.0) * plot_w

    counts = [0] * _HIST_BINS
    counts[0] += max(zeros, 0)  # zero-length calls join the shortest bin
    for lo, hi, n in positive:
        if lo <= 0 or (overflow and lo >= clip):
            continue
        middle = math.sqrt(lo * hi)
        index = int((math.log10(middle) - low) / (high - low) * _HIST_BINS)
        counts[min(max(index, 0), _HIST_BINS - 1)] += n
    peak = max(*counts, overflow)
    y_step = nice_step(peak / 3) if peak >= 3 else 1
    y_top = math.ceil(peak / y_step) * y_step
    chart = Histogram(printable(snap.name),
                      f"{printable(snap.event_type)} · {calls_label(snap.calls)}")
    base = HIST["top"] + plot_h
    for i, n in enumerate(counts):
        if not n:
            continue
        bar_h = max(n / y_top * plot_h, 1.0)
        lo_s, hi_s = 10 ** (low + i * (high - low) / _HIST_BINS), \
            10 ** (low + (i + 1) * (high - low) / _HIST_BINS)
        chart.bins.append(Rect(
            HIST["left"] + i * bin_w + 0.3, base - bar_h, max(bin_w - 0.6, 0.6), bar_h,
            f"{duration(lo_s)} to {duration(hi_s)}: {calls_label(n)} "
            f"({percent(n, snap.calls)})"))
    if overflow:
        bar_h = max(overflow / y_top * plot_h, 1.0)
        x0 = HIST["left"] + plot_w + 4
        chart.overflow = Rect(x0, base - bar_h, _OVERFLOW_W - 6, bar_h,
                              f"above {duration(clip)} (p99.9) up to {duration(snap.max)}: "
                              f"{calls_label(overflow)} ({percent(overflow, snap.calls)})")
        chart.overflow_label = Tick(x0 + (_OVERFLOW_W - 6) / 2, "more")
    plot_right = HIST["left"] + plot_w
    chart.x_ticks = [_keep_inside(t, len(t.label) * _CHAR_WIDTH, plot_right + HIST["right"])
                     for t in _duration_ticks(low, high, x_of)]
    chart.y_ticks = [Tick(base - v / y_top * plot_h, short_count(int(v)))
                     for v in frange(0, y_top, y_step)]
    labels = ("p50", "p95", "p99")
    chart.markers = [Marker(x_of(value), label, f"{label}: {duration(value)}")
                     for label, value in zip(labels, values, strict=True) if value is not None]
    chart.labels = _place_labels(chart.markers, width)
    return chart


def _keep_inside(tick: Tick, label_width: float, width: float) -> Tick:
    """Anchor a tick label at its end (or start) when centring it would cross the edge."""
    if tick.at + label_width / 2 > width - 1:
        return Tick(tick.at, tick.label, "end")
    if tick.at - label_width / 2 < 1:
        return Tick(tick.at, tick.label, "start")
    return tick


def frange(start: float, stop: float, step: float) -> list[float]:
    steps = round((stop - start) / step)
    return [start + i * step for i in range(steps + 1)]


def histograms(snaps: Sequence[FunctionSnapshot],
               made: Mapping[str, Histogram] | None = None) -> list[Histogram]:
    """The histograms that matter: the functions with the most self time, then the failing.

    Self time (active self time for coroutines) when known, total time otherwise; up
    to four of the functions with the most failures join them.  A function needs
    ``HIST_MIN_CALLS`` calls for a histogram to say anything.  ``made``: histograms
    already drawn (``detail_histograms``), reused rather than drawn again.
    """
    found = []
    for snap in chosen_for_histograms(snaps):
        chart = made.get(snap.name) if made is not None else None
        chart = chart or _histogram(snap)
        if chart is not None:
            found.append(chart)
    return found


def chosen_for_histograms(snaps: Sequence[FunctionSnapshot]) -> list[FunctionSnapshot]:
    """The functions ``histograms`` draws, in order: by time, then by failures."""
    busy = [s for s in snaps if s.calls >= HIST_MIN_CALLS]
    by_self = all(own_time(s) is not None for s in snaps)

    def spent(s: FunctionSnapshot) -> float:
        return (own_time(s) or 0.0) if by_self else s.total

    ranked = sorted(busy, key=lambda s: (-spent(s), natural_key(s.name)))
    chosen = ranked[:_MAX_HISTOGRAMS - 4]
    failing = sorted((s for s in busy if s.failures and s not in chosen),
                     key=lambda s: (-s.failures, natural_key(s.name)))
    chosen += failing[:4]
    chosen += [s for s in ranked if s not in chosen][:_MAX_HISTOGRAMS - len(chosen)]
    return chosen


def detail_histograms(snaps: Sequence[FunctionSnapshot]) -> dict[str, Histogram]:
    """A histogram per function with enough calls (most time first), for the detail view."""
    busy = sorted((s for s in snaps if s.calls >= HIST_MIN_CALLS),
                  key=lambda s: (-s.total, natural_key(s.name)))[:_MAX_DETAIL_HISTOGRAMS]
    return {s.name: chart for s in busy if (chart := _histogram(s)) is not None}


# -------------------------------------------------------------------- outliers
class Bounds(NamedTuple):
    """Durations above which a call is past its function's p95 and p99 (and the p99)."""

    above_p95: float
    above_p99: float
    p99: float


# Each function's p50, p95 and p99 by name (``report_tables.percentiles``).
Percentiles = Mapping[str, Sequence[float | None]]


def outlier_bounds(snaps: Sequence[FunctionSnapshot],
                   known: Percentiles | None = None) -> dict[str, Bounds]:
    """Per function with a long tail: durations above which a call is past its p95, p99.

    A function qualifies with ``OUTLIER_MIN_CALLS`` calls, a p99 at least
    ``OUTLIER_SPREAD`` times its p50 and at least ``OUTLIER_FLOOR``.

    The bound is the top of the sketch bucket holding the percentile, so that calls
    as long as the percentile itself (same bucket) never count as outliers.
    ``known``: the functions' ``percentiles``, when already read.
    """
    bounds: dict[str, Bounds] = {}
    for snap in snaps:
        if snap.calls < OUTLIER_MIN_CALLS:
            continue
        p50, p95, p99 = (known[snap.name] if known is not None
                         else snap.sketch.quantiles((0.5, 0.95, 0.99)))
        if p50 is None or p95 is None or p99 is None or p99 < OUTLIER_FLOOR \
                or p99 < OUTLIER_SPREAD * p50:
            continue
        tops = [bucket_bounds(key)[1] for key in bucket_keys([p95, p99])]
        bounds[snap.name] = Bounds(max(tops[0], p95), max(tops[1], p99), p99)
    return bounds


def above_p99(calls: CallColumns, bounds: Mapping[str, Bounds]) -> list[int]:
    """Positions of the calls above their function's p99 bound (``outlier_bounds``), in order.

    One C-speed pass: each call's duration against its function's bound (infinite for
    a function without a long tail).
    """
    if not bounds:
        return []
    get = bounds.get
    limits = [found.above_p99 if (found := get(name)) is not None else math.inf
              for name in calls.names]
    over = map(gt, calls.durations, map(limits.__getitem__, calls.functions))
    return list(compress(range(len(calls)), over))
