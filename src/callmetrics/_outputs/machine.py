"""The environment factor of ``diff``: how much slower the head's machine was.

Two estimates, and the rule choosing between them, as
:mod:`callmetrics._outputs.verdicts` describes (point 1): the machine-speed probe
each run records, and the common shift of the functions tested.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from callmetrics._outputs.timing import MIN_ALONGSIDE

if TYPE_CHECKING:
    from callmetrics._outputs.timing import Stretches

__all__ = ["Environment", "EnvironmentMode", "Estimate", "Thresholds", "environment",
           "local_shift", "probe_estimate",
           "robust_shift"]

EnvironmentMode = Literal["auto", "probe", "common", "none"]
# The probe corrects (in --environment auto) only when its interval is this narrow
# (high / low): the probe of a short run on a loaded machine can be off by tens of
# per cent, more than the changes the gate looks for.
_PRECISE = 1.1
# ... and when each run has this many samples (a run of at least one flush_interval).
_PROBE_SAMPLES = 3


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a difference counts: significance, noise floor, accepted slowdown."""

    alpha: float = 0.002
    """Family-wise significance level (Holm-adjusted p-values are compared to it)."""
    min_calls: int = 30
    """Fewer retained calls than this on either side: not tested."""
    min_delta: float = 1e-6
    """Corrected medians closer than this many seconds are ``same`` whatever the test says."""
    max_ratio: float = 1.1
    """A slower function regresses when its whole corrected interval lies above this."""
    environment: EnvironmentMode = "auto"
    """Which environment factor corrects the ratios (see :mod:`callmetrics._outputs.verdicts`)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A factor head/base with its 95 % interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Environment:
    """How much slower (above 1) the head's machine was, and which estimate was used."""

    probe: Estimate | None
    common: Estimate | None
    common_agree: int
    """Tested functions within ``max_ratio`` of the common-mode shift."""
    tested: int
    used: Literal["probe", "common", "none"]
    factor: Estimate
    why: str
    stretches: tuple[Stretches, Stretches] | None = None
    """Base's and head's slower stretches left out (see :mod:`callmetrics._outputs.timing`)."""


def robust_shift(logs: Sequence[float]) -> Estimate:
    """Exp of the median of ``logs`` with a MAD-based 95 % interval."""
    center = statistics.median(logs)
    mad = statistics.median(abs(v - center) for v in logs)
    spread = 1.96 * 1.2533 * 1.4826 * mad / math.sqrt(len(logs))
    return Estimate(math.exp(center), math.exp(center - spread), math.exp(center + spread))


def probe_estimate(base: Sequence[float] | None, head: Sequence[float] | None) -> Estimate | None:
    if not base or not head:
        return None
    if min(len(base), len(head)) < _PROBE_SAMPLES:
        # Start and end only: two samples tell nothing of the probe's own spread.
        return Estimate(statistics.median(head) / statistics.median(base), 0.0, math.inf)
    b, h = [math.log(v) for v in base], [math.log(v) for v in head]
    center = statistics.median(h) - statistics.median(b)
    # Each side's median's standard error from its samples' spread (MAD), as _robust.
    def se(logs: list[float]) -> float:
        middle = statistics.median(logs)
        return 1.2533 * 1.4826 * statistics.median(abs(v - middle) for v in logs) / math.sqrt(
            len(logs))
    spread = 1.96 * math.hypot(se(b), se(h))
    return Estimate(math.exp(center), math.exp(center - spread), math.exp(center + spread))


def environment(ratios: Sequence[float], probe: Estimate | None,  # noqa: PLR0911  # one return per case of the rule above
                limits: Thresholds) -> Environment:
    """Choose the environment factor from the tested functions' ratios and the probe."""
    logs = [math.log(r) for r in ratios if r > 0 and math.isfinite(r)]
    common = robust_shift(logs) if len(logs) >= 2 else None
    width = math.log(limits.max_ratio)
    agree = sum(abs(v - math.log(common.value)) <= width for v in logs) if common else 0
    holds = common is not None and len(logs) >= 4 and agree * 2 > len(logs)

    def made(used: Literal["probe", "common", "none"], factor: Estimate | None,
             why: str) -> Environment:
        if factor is not None and factor.low <= 1.0 <= factor.high:
            # Within its own noise: dividing by it would only add that noise.
            what = "the probe's" if used == "probe" else "the common shift's"
            return Environment(probe, common, agree, len(logs), "none",
                               Estimate(1.0, 1.0, 1.0),
                               f"{what} {factor.value:.2f}x is within its noise "
                               f"[{factor.low:.2f}, {factor.high:.2f}]")
        return Environment(probe, common, agree, len(logs), used,
                           factor or Estimate(1.0, 1.0, 1.0), why)

    mode = limits.environment
    no_probe = "no probe in one run or both (stores before version 3 have none)"
    if probe is not None and mode == "auto" and probe.high > _PRECISE * probe.low:
        no_probe = (f"the probe is too noisy to correct by ({probe.value:.2f}x, interval "
                    f"[{probe.low:.2f}, {probe.high:.2f}])" if math.isfinite(probe.high) else
                    f"the probe has fewer than {_PROBE_SAMPLES} samples in a run (one "
                    "shorter than flush_interval): too few to correct by")
        probe_used = None
    else:
        probe_used = probe
    no_common = ("fewer than 4 functions tested" if len(logs) < 4 else
                 f"no common shift (not most functions within {limits.max_ratio:g}x of it)")
    if mode == "none":
        return made("none", None, "not corrected (--environment none)")
    if mode == "probe":
        return made("probe", probe, "by the probe") if probe else made("none", None, no_probe)
    if mode == "common":
        return (made("common", common, f"common shift of {agree} of {len(logs)} functions")
                if holds else made("none", None, no_common))
    if holds and common is not None:
        if probe_used is None:
            return made("common", common, f"common shift of {agree} of {len(logs)} "
                                          f"functions ({no_probe})")
        if not common.low / 1.05 <= probe_used.value <= common.high * 1.05:
            return made("common", common,
                        f"common shift of {agree} of {len(logs)} functions, not the probe's "
                        f"{probe_used.value:.2f}x: the workload's own calls tell what the "
                        "machine did to it")
        return made("probe", probe_used, "by the probe (the common shift agrees)")
    if probe_used is not None:
        return made("probe", probe_used, f"by the probe ({no_common})")
    return made("none", None, f"{no_probe}; {no_common}")


def local_shift(logs: Sequence[float], limits: Thresholds) -> Estimate | str:
    """The common shift of the functions called alongside one, or why there is none.

    The same rule as the run's common shift: at least 4 functions, most of them within
    ``max_ratio`` of their median (see :mod:`callmetrics._outputs.timing`, point 3).
    """
    if len(logs) < MIN_ALONGSIDE:
        return (f"not gated: {len(logs)} tested function{'' if len(logs) == 1 else 's'} "
                f"called alongside it (< {MIN_ALONGSIDE}): the machine's speed at its times "
                "is unknown")
    local = robust_shift(logs)
    agree = sum(abs(v - math.log(local.value)) <= math.log(limits.max_ratio) for v in logs)
    if agree * 2 <= len(logs):
        return (f"not gated: the {len(logs)} functions called alongside it share no shift "
                f"(only {agree} within {limits.max_ratio:g}x of their median)")
    return local
