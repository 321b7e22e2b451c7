"""The SQLite store (issue: persistence). Placeholder until it lands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics

__all__ = ["attach_store"]


def attach_store(analytics: Analytics, path: Path) -> Any:
    """Attach a store writer (with flush(), close(), prune_events(cutoff)) to ``analytics``."""
    raise NotImplementedError
