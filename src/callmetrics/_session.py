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
    """Loggers of our own, silent: the program's logging setup must not show our lines."""
    made = []
    for part in ("console", "error", "analytics"):
        logger = logging.getLogger(f"callmetrics.run.{part}")
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        made.append(logger)
    return LoggerContainer(*made)


def make_analytics(store: str | None, label: str | None,
                   settings: dict[str, Any] | None = None) -> Analytics:
    """Return a quiet instance, writing a run labelled ``label`` into ``store`` if given.

    ``settings`` are ``AnalyticsConfig`` fields (``max_events``...), checked as it checks
    them (a ``TypeError``/``ValueError`` naming the field).
    """
    config = dict(settings) if settings else None
    if store is None:
        return Analytics(config, loggers=_quiet_loggers())
    saved = os.environ.get(LABEL_ENV)
    if label is not None:  # the store reads the label from here when it opens the run
        os.environ[LABEL_ENV] = label
    try:
        return Analytics(config, loggers=_quiet_loggers(), store=store)
    finally:
        if saved is None:
            os.environ.pop(LABEL_ENV, None)
        else:
            os.environ[LABEL_ENV] = saved
