"""The documented JSON shape of an instance's statistics. Placeholder until it lands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics

__all__ = ["to_dict"]


def to_dict(analytics: Analytics) -> dict[str, Any]:
    """Return the JSON-ready statistics of ``analytics``."""
    raise NotImplementedError
