"""OpenTelemetry export (issue: beyond one machine). Placeholder until it lands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics

__all__ = ["instrument"]


def instrument(analytics: Analytics, meter_provider: Any = None, *, spans: bool = False,
               tracer_provider: Any = None) -> Any:
    """Report ``analytics`` through OpenTelemetry."""
    raise NotImplementedError
