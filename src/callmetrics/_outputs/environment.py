"""Where a report or a dict was produced: Python, platform, hot path, argv, host, label.

``process_environment()`` describes the running process.  A report of a store's runs
lists those runs instead (``RunSummary``: each run's host, label and program, as the
store recorded them).
"""

from __future__ import annotations

import os
import platform
import shlex
import socket
import sys
from dataclasses import dataclass

from callmetrics._engine import accel

__all__ = ["RunSummary", "process_environment"]

# The run label's environment variable, as the store's writer reads it.
_LABEL_VARIABLE = "CALLMETRICS_RUN_LABEL"


def process_environment() -> dict[str, str | None]:
    """The running process: Python, platform, hot path, argv, host, pid and run label."""
    hot_path = ("C accelerator" if accel.IMPLEMENTATION == "c"
                else f"pure Python ({accel.REASON})" if accel.REASON else "pure Python")
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "hot_path": hot_path,
        "argv": shlex.join(sys.argv),
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
        "label": os.environ.get(_LABEL_VARIABLE) or None,
    }


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
