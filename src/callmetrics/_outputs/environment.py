"""Where a report or a dict was produced: Python, platform, hot path, argv, host, label.

``process_environment()`` (``_engine.environment``) describes the running process.  A
report of a store's runs lists those runs instead (``RunSummary``: each run's host,
label, program and environment, as the store recorded them), and ``runs_environment``
sums their environments up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from callmetrics._engine.environment import ENVIRONMENT_KEYS, process_environment
from callmetrics._format import printable

__all__ = ["RunSummary", "process_environment", "runs_environment"]


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One stored run a report covers, as the header lists it."""

    id: int
    label: str | None
    host: str
    program: str
    started: float
    ended: float
    calls: int
    environment: dict[str, str | None] | None = None
    """What the run ran on, as recorded (``process_environment``); None: not recorded."""


# Distinct values of a key shown before "and N more".
_SHOWN_VALUES = 3


def runs_environment(runs: Sequence[RunSummary]) -> list[tuple[str, str]]:
    """The environment block of a report of stored runs: each key's value over the runs.

    One value when the runs agree; otherwise their distinct values ("3.11.7; 3.12.1");
    runs written before the store kept it count as "unknown".
    """
    block = []
    for key in ENVIRONMENT_KEYS:
        values = list(dict.fromkeys(
            "unknown" if run.environment is None else printable(run.environment.get(key) or "-")
            for run in runs))
        shown = "; ".join(values[:_SHOWN_VALUES])
        if len(values) > _SHOWN_VALUES:
            shown += f" and {len(values) - _SHOWN_VALUES} more"
        block.append((key, shown))
    return block
