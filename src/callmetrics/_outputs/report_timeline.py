"""The report's timeline: retained calls as compact arrays for the canvas script, and its legend.

Colours tell the busiest functions apart (``PALETTE_SIZE`` of them, the rest
grey); the x axis is the time since the first retained call, its tick labels
formatted here with ``_format`` so that the page shows what every output shows.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import add, gt, mul, sub
from typing import Any

from callmetrics._engine.columns import CallColumns
from callmetrics._format import duration, printable
from callmetrics._outputs.report_charts import axis_label, frange, nice_step, shorten

__all__ = ["PALETTE_SIZE", "TIMELINE_MAX", "LegendEntry", "sample", "timeline"]

PALETTE_SIZE = 8  # distinct timeline colours; further functions are grey
# A pause of at least this many seconds with no retained call running may be cut out.
_IDLE_GAP = 1.0
# The timeline draws at most this many calls (every failure and outlier among them).
TIMELINE_MAX = 150_000
# Distinct failure messages the page carries for its tooltips (160 characters each at most).
_MAX_MESSAGES = 1_000


@dataclass(frozen=True, slots=True)
class LegendEntry:
    """A function's colour on the timeline (``colour`` -1: grey, the rest)."""

    label: str
    colour: int


def _three_digits(value: float) -> float:
    """Round to three significant digits, as an int from 100 up (shorter JSON)."""
    if value >= 99.95:
        return int(float(f"{value:.3g}"))
    return float(f"{value:.3g}")


def _time_ticks(span: float, cuts: Sequence[tuple[float, float]] = ()) -> list[list[list[Any]]]:
    """Candidate x-axis tick sets (coarse to fine) for ``span`` seconds since the first call.

    Each set is ``[[microseconds, label], ...]``; the page picks the finest that fits.
    ``cuts`` are the idle gaps cut out, ``(position on the axis, seconds removed)``: a
    tick's label is the true time since the first call.
    """
    options: list[list[list[Any]]] = []
    seen: set[float] = set()
    for wanted in (2, 3, 4, 6, 8, 10):
        step = nice_step(span / wanted) if span > 0 else 1e-6
        if step in seen:
            continue
        seen.add(step)
        marks = frange(0, math.floor(span / step + 1e-9) * step, step)
        options.append([[round(t * 1e6, 3), "0 s" if t == 0 else axis_label(
            t + sum(removed for at, removed in cuts if at < t))] for t in marks])
    return options


def _cut_idle_gaps(begins: Sequence[float],
                   durations: Sequence[float]) -> tuple[list[float], list[tuple[float, float]]]:
    """Each call's start on an axis without the idle gaps, and the cuts made.

    ``begins`` (ascending) and ``durations``: the calls drawn.  A gap is idle when no
    retained call runs for at least ``_IDLE_GAP`` seconds and a tenth of the whole span
    (runs of a store minutes apart); it is shown as a short break instead.
    """
    if not begins:
        return [], []
    t0 = begins[0]
    # The latest end so far, before each call: a gap is a start past every earlier end.
    running = list(itertools.accumulate(map(add, begins, durations), max, initial=t0))
    whole = running[-1] - t0
    threshold = max(_IDLE_GAP, whole * 0.1)
    idle = list(compress(itertools.count(), map(gt, map(sub, begins, running),
                                                repeat(threshold))))
    if not idle:
        return list(map(sub, begins, repeat(t0))), []
    cuts: list[tuple[float, float]] = []
    axis: list[float] = []
    removed = 0.0
    done = 0
    for i in idle:
        axis.extend(b - t0 - removed for b in begins[done:i])
        gap = begins[i] - running[i]
        kept = min(gap, max(whole * 0.01, _IDLE_GAP / 10))
        cuts.append((running[i] - t0 - removed + kept / 2, gap - kept))
        removed += gap - kept
        done = i
    axis.extend(b - t0 - removed for b in begins[done:])
    return axis, cuts


def sample(calls: CallColumns, above: Sequence[int], failed: Sequence[int],
           limit: int = TIMELINE_MAX) -> list[int]:
    """Positions of at most ``limit`` calls for the timeline: failures, outliers, the rest spaced.

    Every failure and p99 outlier (``failed``, ``above``: positions) is kept.  A
    canvas a few thousand pixels wide shows no more; the page says when it sampled.
    """
    n = len(calls)
    if n <= limit:
        return list(range(n))
    marked = sorted({*above, *failed})
    room = max(limit - len(marked), 0)
    step = max((n - len(marked)) / room, 1.0) if room else math.inf
    keep = set(marked)
    if room:
        keep.update(map(round, map(mul, range(room), repeat(step))))
    return sorted(i for i in keep if i < n)[:max(limit, len(marked))]


def _durations(values: Iterable[float]) -> list[float]:
    """Microseconds to three significant digits (``_three_digits``), for many calls."""
    return [_three_digits(v) for v in map(mul, values, repeat(1e6))]


def timeline(calls: CallColumns, drawn: Sequence[int], above: Sequence[int],
             short_max: float, medium_max: float,
             ranked: Sequence[str] = ()) -> tuple[dict[str, Any], list[LegendEntry]]:
    """Encode the calls at positions ``drawn`` (ascending) as arrays for the canvas script.

    ``above``: positions of the calls above their function's p99.
    ``s``: start deltas in microseconds; ``d``: durations in microseconds (three
    significant digits); ``f``: function index; ``c``: each function's colour
    (-1 grey); ``x``: ``[index, error index, message index]`` of each failure
    (no message index when it has none; -1 past 1,000 distinct messages); ``o``: indices of
    calls above their function's p99; ``g``: the idle gaps cut out,
    ``[position in microseconds, label]``.  Colours go to the functions first in
    ``ranked`` (the most self time), then to the busiest others.  Every text is already
    ``printable``.
    """
    picked = list(map(calls.functions.__getitem__, drawn))
    # Functions in the order the drawn calls first name them.
    index_of = {f: j for j, f in enumerate(dict.fromkeys(picked))}
    names = [calls.names[f] for f in index_of]
    types = [printable(calls.types[f]) for f in index_of]
    functions = list(map(index_of.__getitem__, picked))
    begins = list(map(calls.starts.__getitem__, drawn))
    took = list(map(calls.durations.__getitem__, drawn))
    axis, cuts = _cut_idle_gaps(begins, took)
    micros = list(map(round, map(mul, axis, repeat(1e6))))
    starts = list(map(sub, micros, [0, *micros]))
    durations = _durations(took)
    errors: dict[str, int] = {}
    messages: dict[str, int] = {}
    failures = []
    details = calls.details
    for j, i in compress(enumerate(drawn), map(details.__contains__, drawn)):
        error, message, _ = details[i]
        if error is None:
            continue
        entry = [j, errors.setdefault(printable(error), len(errors))]
        if message and len(messages) < _MAX_MESSAGES:
            entry.append(messages.setdefault(shorten(printable(message), 160),
                                             len(messages)))
        elif message:
            entry.append(messages.get(shorten(printable(message), 160), -1))
        failures.append(entry)
    outliers = list(compress(itertools.count(), map(set(above).__contains__, drawn)))
    shown = [printable(name) for name in names]
    order = {name: i for i, name in enumerate(ranked)}
    # Stable: the functions ``ranked`` lists first, in its order; then the busiest others.
    chosen = sorted(Counter(functions).most_common(),
                    key=lambda item: order.get(shown[item[0]], len(order)))
    colours = [-1] * len(names)
    for rank, (index, _) in enumerate(chosen[:PALETTE_SIZE]):
        colours[index] = rank
    legend = [LegendEntry(shorten(shown[i], 40), rank)
              for rank, (i, _) in enumerate(chosen[:PALETTE_SIZE])]
    if len(chosen) > PALETTE_SIZE:
        legend.append(LegendEntry(f"{len(chosen) - PALETTE_SIZE} other functions", -1))
    span = axis[-1] if drawn else 0.0
    positive = [d for d in durations if d > 0]
    low = math.floor(math.log10(min(positive) / 2)) if positive else 0
    high = max(math.ceil(math.log10(max(positive))), low + 1) if positive else 1
    data = {
        "names": shown, "types": types, "errors": list(errors),
        "messages": list(messages), "c": colours,
        "s": starts, "d": durations, "f": functions, "x": failures, "o": outliers,
        "g": [[round(at * 1e6), f"{duration(removed)} idle", round(removed * 1e6)]
              for at, removed in cuts],
        "xt": _time_ticks(span, cuts), "floor": min(positive) / 2 if positive else 1.0,
        "y": [[e, axis_label(10.0 ** (e - 6))] for e in range(low, high + 1)],
        "lines": [[short_max * 1e6, f"medium > {axis_label(short_max)}"],
                  [medium_max * 1e6, f"slow > {axis_label(medium_max)}"]],
    }
    return data, legend
