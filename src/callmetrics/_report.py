"""The HTML report (issue: what people see). Placeholder until the report lands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics

__all__ = ["generate_reports", "render_report"]


def render_report(analytics: Analytics, *, force_mode: bool = False) -> str:
    """Render the report of ``analytics`` to an HTML string."""
    raise NotImplementedError


def generate_reports(analytics: Analytics, *, force_mode: bool = False,
                     path: str | Path | None = None) -> Path | None:
    """Write the report of ``analytics``; return its path, or None when nothing was recorded."""
    raise NotImplementedError
