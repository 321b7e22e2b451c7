"""The outputs an ``Analytics`` offers, each loaded on first use (jinja2, rich...).

``Outputs`` is a part of ``Analytics`` (a mixin); each method hands the instance,
as a ``Source`` (``_engine.view``), to the module that owns that output.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console

    from callmetrics._engine.view import Source
    from callmetrics._outputs.batch import BatchMode, Observed

__all__ = ["Outputs"]


class Outputs:
    """The output half of ``Analytics``."""

    # The class this is mixed into (Analytics) is a Source and an Observed; this
    # module never imports it.
    def _analytics(self) -> Source:
        return cast("Source", self)

    def _observed(self) -> Observed:
        return cast("Observed", self)

    def render_report(self, *, force_mode: bool = False) -> str:
        """Render the HTML report to a string without writing it."""
        from callmetrics._outputs.report import render_report  # noqa: PLC0415  # load jinja2 on use

        return render_report(self._analytics(), force_mode=force_mode)

    def generate_reports(self, force_mode: bool = False, *,  # seed API
                         path: str | Path | None = None) -> Path | None:
        """Write the HTML report and return its path (None when nothing was recorded).

        Args:
            force_mode: write the full report (``analytics_full.html``) rather than the
                incremental one.
            path: where to write; defaults to ``report_dir``.  An explicit path that
                cannot be written raises ``OSError``.

        """
        from callmetrics._outputs.report import generate_reports  # noqa: PLC0415  # load jinja2 on use

        return generate_reports(self._analytics(), force_mode=force_mode, path=path)

    def _repr_html_(self) -> str:
        """Show a summary table when the instance is displayed in a notebook."""
        notebook = importlib.import_module("callmetrics._outputs.notebook")  # another part's; lazy
        return str(notebook.summary_html(self._analytics()))

    def report(self) -> Any:
        """Return the HTML report as an object a notebook displays inline."""
        notebook = importlib.import_module("callmetrics._outputs.notebook")  # another part's; lazy
        return notebook.InlineReport(notebook.report_html(self._analytics()))

    def batch_mode(
        self, message: str = "Processing...", console: Console | None = None, *,
        total: int | None = None,
    ) -> BatchMode:
        """Suppress per-call console lines and show a spinner (or a progress bar).

        Usable as ``with`` and ``async with``; see :mod:`callmetrics._outputs.batch`.
        """
        from callmetrics._outputs.batch import BatchMode  # noqa: PLC0415  # load rich on use

        return BatchMode(self._observed(), message, console, total=total)

    def print_summary(self, console: Console | None = None) -> None:
        """Print a table of per-function statistics, sorted by total time."""
        from callmetrics._outputs.console import print_summary  # noqa: PLC0415  # load rich on use

        print_summary(self._analytics(), console)

    def to_dict(self) -> dict[str, Any]:
        """Return the documented JSON-ready form of this instance's statistics."""
        from callmetrics._outputs.export import to_dict  # noqa: PLC0415

        return to_dict(self._analytics())
