"""A quiet ``Analytics`` for the programs we run: ``callmetrics run`` and the pytest plugin.

Its loggers are its own and silent, so that the program's logging setup shows none of
our lines; with a store, the run is labelled as asked.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from callmetrics._analytics import Analytics
from callmetrics._engine.records import LoggerContainer
from callmetrics._store import LABEL_ENV

__all__ = ["make_analytics"]


def _quiet_loggers() -> LoggerContainer:
    """Loggers of our own, silent: the program's logging setup must not show our lines.

    Above every level, so that no record is even made: a program that raises as part of
    its work (docutils: thousands of times a run) would otherwise pay for two records
    per failed call, which nobody reads.
    """
    made = []
    for part in ("console", "error", "analytics"):
        logger = logging.getLogger(f"callmetrics.run.{part}")
        logger.propagate = False
        logger.setLevel(logging.CRITICAL + 1)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        made.append(logger)
    return LoggerContainer(*made)


def make_analytics(store: str | None, label: str | None,
                   settings: dict[str, Any] | None = None) -> Analytics:
    """Return a quiet instance, writing a run labelled ``label`` into ``store`` if given.

    Its drains are bulk ones (``Analytics(bulk=True)``): a whole program's run wants the
    least cost per call, not the shortest pause.

    ``settings`` are ``AnalyticsConfig`` fields (``max_events``...), checked as it checks
    them (a ``TypeError``/``ValueError`` naming the field).
    """
    config = dict(settings) if settings else None
    if store is None:
        return Analytics(config, loggers=_quiet_loggers(), bulk=True)
    saved = os.environ.get(LABEL_ENV)
    if label is not None:  # the store reads the label from here when it opens the run
        os.environ[LABEL_ENV] = label
    try:
        return Analytics(config, loggers=_quiet_loggers(), store=store, bulk=True)
    finally:
        if saved is None:
            os.environ.pop(LABEL_ENV, None)
        else:
            os.environ[LABEL_ENV] = saved
