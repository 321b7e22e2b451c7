"""Where a process runs: Python, platform, hot path, argv, host, pid and run label.

The report's environment block shows it for the running process; the store's writer
keeps it with each run (``runs.environment``), so that a report or a ``diff`` of stored
runs can say what they ran on.  Each value is one short line.
"""

from __future__ import annotations

import os
import shlex
import sys

from callmetrics._engine import accel

__all__ = ["ENVIRONMENT_KEYS", "VALUE_LIMIT", "process_environment"]

# The run label's environment variable, as the store's writer reads it.
_LABEL_VARIABLE = "CALLMETRICS_RUN_LABEL"
# What the block holds, in the order it is shown.
ENVIRONMENT_KEYS = ("python", "platform", "hot_path", "argv", "host", "pid", "label")
# A value (a long argv) is cut to this many characters.
VALUE_LIMIT = 500


def _line(text: str) -> str:
    text = " ".join(text.split()) if not text.isprintable() else text
    return text if len(text) <= VALUE_LIMIT else text[:VALUE_LIMIT - 1] + "\u2026"


def process_environment(label: str | None = None) -> dict[str, str | None]:
    """The running process: Python, platform, hot path, argv, host, pid and run label.

    ``label``: the run's label (default: the ``CALLMETRICS_RUN_LABEL`` variable).
    """
    import platform  # noqa: PLC0415  # once a run: readers of stored runs never load it
    import socket  # noqa: PLC0415

    hot_path = ("C accelerator" if accel.IMPLEMENTATION == "c"
                else f"pure Python ({accel.REASON})" if accel.REASON else "pure Python")
    found = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "hot_path": hot_path,
        "argv": shlex.join(sys.argv),
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
        "label": label if label is not None else os.environ.get(_LABEL_VARIABLE) or None,
    }
    return {key: None if value is None else _line(value) for key, value in found.items()}
