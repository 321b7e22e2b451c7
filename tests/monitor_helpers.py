"""The tests of zero-code tracking's generator and coroutine steps (3.12+) share these.

``MODULE`` is the program tracked (its functions note the CPU and wall seconds of
their measured work in ``SPENT``); :func:`tracking` runs a workload on it through
``sys.monitoring``, with the accelerator's callbacks or their pure-Python twin.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

import pytest

from callmetrics import Analytics
from callmetrics._engine.accel import speedups
from callmetrics._engine.callers import BOTTOM, STACK
from callmetrics._engine.state import FunctionSnapshot
from callmetrics._zerocode import tool as tool_module
from callmetrics._zerocode.tool import supported

__all__ = ["MODULE", "Loader", "Window", "callers_of", "depth", "monitoring", "pure_param",
           "steps_module", "tracking"]

monitoring = pytest.mark.skipif(not supported(), reason="sys.monitoring needs Python 3.12+")

Loader = Callable[[], types.ModuleType]
_names = itertools.count()

MODULE = '''
import asyncio
import time

SPENT = {}

def spin_cpu(seconds, into=None):
    """Busy the thread for `seconds` of its CPU time; note (CPU, wall) spent in SPENT."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    while time.thread_time() - cpu0 < seconds:
        pass
    spent = time.thread_time() - cpu0, time.perf_counter() - wall0
    if into is not None:
        SPENT.setdefault(into, []).append(spent)
    return spent

async def nap():
    await asyncio.sleep(0.1)
    return "rested"

def parse(n):
    return n * 2

async def fetch(n):
    await asyncio.sleep(0.05)
    return parse(n)

async def handler():
    first = await fetch(1)
    rest = await asyncio.gather(fetch(2), fetch(3))  # tasks: started by the loop
    return [first, *rest]

async def walk(depth):
    await asyncio.sleep(0.01)
    return 0 if depth == 0 else 1 + await walk(depth - 1)

def produce(n):
    for i in range(n):
        spin_cpu(0.01, "produce")
        yield i

def consume(n):
    total = 0
    for item in produce(n):
        spin_cpu(0.02, "consume")
        total += item
    return total

def guarded():
    try:
        yield 1
    finally:
        spin_cpu(0.01, "guarded")

def tree(depth):
    spin_cpu(0.002, "tree")
    yield depth
    if depth:
        yield from tree(depth - 1)
        yield from tree(depth - 1)

async def catcher():
    try:
        await asyncio.sleep(0)
    except KeyError:
        spin_cpu(0.02, "catcher")
        return "handled"
    return "slept"

async def forever():
    await asyncio.sleep(10)

async def keeps_going():
    try:
        await asyncio.sleep(0)
    except KeyError:
        spin_cpu(0.01, "keeps_going")
    await asyncio.sleep(0)
    return "done"

async def delegates():
    return await keeps_going()

async def inner():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        spin_cpu(0.01, "inner")
        raise

async def outer():
    try:
        await inner()
    except asyncio.CancelledError:
        spin_cpu(0.01, "outer")
        raise
'''


@contextmanager
def steps_module(tmp_path: Path) -> Iterator[Loader]:
    """Write ``MODULE`` under a fresh name; yield what imports it (anew each time)."""
    name = f"cmsteps{next(_names)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    sys.path.insert(0, str(tmp_path))

    def load_module() -> types.ModuleType:
        sys.modules.pop(name, None)
        return __import__(name)

    load_module.name = name  # type: ignore[attr-defined]
    try:
        yield load_module
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def pure_param(param: str) -> bool:
    """Whether the test's ``param`` asks for the pure-Python callbacks (skip: no C built)."""
    if param == "c" and speedups is None:
        pytest.skip("the C accelerator is not built")
    return param == "python"


def tracking(module: Loader, pure: bool, monkeypatch: pytest.MonkeyPatch,
             workload: Callable[[types.ModuleType], None]) -> dict[str, FunctionSnapshot]:
    """Run ``workload`` on the module tracked through sys.monitoring; its functions' figures."""
    if pure:
        monkeypatch.setattr(tool_module, "_speedups", None)
    analytics = Analytics()
    name = module.name  # type: ignore[attr-defined]
    analytics.instrument(name)
    try:
        mod = module()
        assert type(mod.produce) is types.FunctionType  # nothing replaced
        workload(mod)
    finally:
        analytics.uninstrument()
        monkeypatch.undo()
    return {s.name.removeprefix(name + "."): s for s in analytics.snapshot()}


def callers_of(snap: FunctionSnapshot) -> dict[str, int]:
    """Who called the function of ``snap`` (short names), with how many calls."""
    return {edge.name.rsplit(".", 1)[-1]: edge.calls for edge in snap.callers}


def depth() -> int:
    """Tracked calls on this thread's stack (none once every step has ended)."""
    if speedups is not None:
        return int(speedups.frames_depth())
    return len(STACK.calls) - BOTTOM


class Window:
    """Wall seconds spent inside its ``with`` blocks, summed.

    Steps run inside the blocks are timed on the same clock, so their sum is at most
    this, however long the machine preempts the thread: an upper bound with no slack
    to tune (``bound``: plus a microsecond for the rounding of sums of clock
    differences).
    """

    def __init__(self) -> None:
        """No time yet."""
        self.seconds = 0.0
        self._began = 0.0

    def __enter__(self) -> Window:
        """Start timing a block."""
        self._began = perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        """Add the block's seconds."""
        self.seconds += perf_counter() - self._began

    @property
    def bound(self) -> float:
        """The most seconds of steps the blocks can hold, as the figures read them."""
        return self.seconds + 1e-6
