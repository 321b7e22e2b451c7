"""The live progress block of batch mode: one per console, a row per open batch.

A bar and ETA for batches with a total, a spinner, call count and elapsed time
without; shared by every batch drawing on the same console, started by the first
and stopped by the last.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from callmetrics._format import count

__all__ = ["Display", "acquire_display", "release_display"]


class _CountColumn(ProgressColumn):
    """``3/10`` with a total, ``3 calls`` without."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            calls = int(task.fields.get("calls", 0))
            return Text(f"{count(calls)} call{'' if calls == 1 else 's'}",
                        style="progress.download")
        return Text(f"{task.completed:.0f}/{task.total:.0f}", style="progress.download")


class _RateColumn(ProgressColumn):
    """Items per second, once there is a rate to show."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "", style="progress.data.speed")


class _TimeColumn(ProgressColumn):
    """The ETA with a total, the elapsed time without."""

    def __init__(self) -> None:
        super().__init__()
        self._eta = TimeRemainingColumn()
        self._elapsed = TimeElapsedColumn()

    def render(self, task: Task) -> Text:
        if task.total is None:
            return self._elapsed.render(task)
        eta = self._eta.render(task)
        return Text.assemble("ETA ", eta)


class _BarColumn(BarColumn):
    """A progress bar, only for batches with a total (a spinner says enough otherwise)."""

    def render(self, task: Task) -> Any:
        return Text("") if task.total is None else super().render(task)


class Display:
    """One live progress block per console; each open batch is a row in it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.users = 0
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), _BarColumn(bar_width=30),
            _CountColumn(), _RateColumn(), _TimeColumn(),
            console=console, transient=True,
        )


_displays_lock = threading.Lock()
_displays: dict[int, Display] = {}


def acquire_display(console: Console) -> Display:
    with _displays_lock:
        display = _displays.get(id(console))
        if display is None:
            display = Display(console)
            display.progress.start()
            _displays[id(console)] = display
        display.users += 1
        return display


def release_display(display: Display) -> None:
    with _displays_lock:
        display.users -= 1
        if display.users:
            return
        _displays.pop(id(display.console), None)
    display.progress.stop()
