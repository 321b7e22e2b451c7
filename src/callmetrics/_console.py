"""Terminal output: batch progress and the summary table. Placeholder until it lands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from callmetrics._analytics import Analytics

__all__ = ["BatchMode", "print_summary"]


class BatchMode:
    """Context manager behind ``Analytics.batch_mode``."""

    def __init__(self, analytics: Analytics, message: str, console: Console | None, *,
                 total: int | None = None) -> None:
        """Prepare a batch."""
        raise NotImplementedError

    def __enter__(self) -> Any:
        """Start the batch."""
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        """End the batch."""
        raise NotImplementedError


def print_summary(analytics: Analytics, console: Console | None = None) -> None:
    """Print the per-function table."""
    raise NotImplementedError
