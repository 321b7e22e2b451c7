"""The pytest plugin: ``pytest --callmetrics[=STORE]`` records every test as a call.

Loaded through the ``pytest11`` entry point and off unless asked: without
``--callmetrics`` it adds its options and nothing else (no per-test hook is even
registered).  With it, each test (setup, call and teardown) is one call of event type
``test`` named by its node id, failed when any phase failed or errored; with
``--callmetrics-track PATTERN`` the functions of matching modules that the tests
call are recorded too.  At the end of the session it prints the slowest tests with
their outcome (``--callmetrics-top N``, default 10) and the tracked functions' summary;
with
a store, the session is written as one run labelled ``--callmetrics-label``, so that
``callmetrics diff`` compares two sessions.
"""

from __future__ import annotations

import io
import math
import shutil
import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics
    from callmetrics._engine.config import AnalyticsConfig
    from callmetrics._engine.state import FunctionSnapshot
    from callmetrics._engine.view import Reading, RetainedCall

__all__ = ["TestFailed"]


class TestFailed(Exception):  # noqa: N818  # recorded as the call's error type: reads as the outcome
    """Raised (and caught) inside a test's measured block when one of its phases failed.

    The call's error type is then ``TestFailed`` and its message names the phases,
    e.g. ``call failed``.
    """

    __test__ = False  # not a test class, whatever its name


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--callmetrics[=STORE]``, ``--callmetrics-label`` and ``--callmetrics-track``."""
    group = parser.getgroup("callmetrics", "callmetrics: time every test")
    group.addoption("--callmetrics", nargs="?", const="", default=None, metavar="STORE",
                    help="record every test as a call and print the summary at the end; "
                         "with =STORE also write the session into that SQLite store")
    group.addoption("--callmetrics-label", default=None, metavar="LABEL",
                    help="label of the session's run in the store (e.g. the commit)")
    group.addoption("--callmetrics-track", action="append", default=[], metavar="PATTERN",
                    help="also track the functions of modules matching this glob "
                         "(e.g. 'myapp.*'; repeatable)")
    group.addoption("--callmetrics-top", type=_top, default=10, metavar="N",
                    help="how many of the slowest tests the summary lists (default 10; 0: none)")
    group.addoption("--callmetrics-cpu-time", action="store_true", default=False,
                    help="also measure each test's and tracked function's thread CPU time "
                         "(costs a few microseconds a call)")


def _top(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise pytest.UsageError(f"--callmetrics-top takes a count (0 or more), got {text!r}")
    return int(text)


def pytest_configure(config: pytest.Config) -> None:
    """Register the recorder when ``--callmetrics`` is given."""
    store = config.getoption("callmetrics")
    if store is None:
        return
    label = config.getoption("callmetrics_label")
    if store and (Path(store).is_dir() or store.endswith(".py") or "::" in store):
        raise pytest.UsageError(
            f"--callmetrics took {store!r} as its STORE: write --callmetrics=STORE, or put "
            "the test paths before --callmetrics")
    if label is not None and not store:
        raise pytest.UsageError("--callmetrics-label names the stored run: give "
                                "--callmetrics=STORE too")
    from callmetrics._session import make_analytics  # noqa: PLC0415  # only when enabled

    try:
        analytics = make_analytics(store or None, label,
                                   {"cpu_time": True} if config.getoption(
                                       "callmetrics_cpu_time") else None)
    except Exception as exc:  # noqa: BLE001  # a bad store is a usage error, named
        raise pytest.UsageError(f"--callmetrics={store}: {exc}") from None
    recorder = SessionRecorder(analytics, config.getoption("callmetrics_track"),
                               config.getoption("callmetrics_top"))
    config.pluginmanager.register(recorder, "callmetrics-recorder")


class SessionRecorder:
    """The plugin's per-session part, registered only when enabled."""

    def __init__(self, analytics: Analytics, track: list[str], top: int = 10) -> None:
        """Record into ``analytics``; instrument the modules matching ``track``."""
        self.analytics = analytics
        self._failed: list[str] = []
        self._outcome = "passed"
        self._top = top
        self.tests: list[tuple[float, str, str]] = []
        """Each test's wall time in seconds, outcome and node id, in the order they ran."""
        if track:
            analytics.instrument(*track)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Time the test's setup, call and teardown as one call named by its node id."""
        self._failed = []
        self._outcome = "passed"
        measure = self.analytics.measure(item.nodeid, event_type="test")
        began = time.perf_counter()
        measure.__enter__()
        try:
            return (yield)
        finally:
            failed = TestFailed(", ".join(self._failed)) if self._failed else None
            measure.__exit__(TestFailed if failed else None, failed, None)
            self.tests.append((time.perf_counter() - began, self._outcome, item.nodeid))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Note a failed or errored phase of the running test, and the test's outcome."""
        if report.failed:
            self._failed.append("call failed" if report.when == "call"
                                else f"{report.when} errored")
        expected = hasattr(report, "wasxfail")
        if report.failed:
            self._outcome = "failed" if report.when == "call" and not expected else \
                "xpassed (strict)" if expected else "error"
        elif report.skipped and self._outcome == "passed":
            self._outcome = "xfailed" if expected else "skipped"
        elif report.when == "call" and expected and report.passed:
            self._outcome = "xpassed"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the slowest tests (with their outcome) and the tracked functions' summary."""
        from rich.console import Console  # noqa: PLC0415  # loads rich only when enabled

        from callmetrics._format import duration  # noqa: PLC0415
        from callmetrics._outputs.terminal import Column, print_table  # noqa: PLC0415

        out = io.StringIO()
        width = shutil.get_terminal_size((120, 24)).columns
        console = Console(file=out, width=width, force_terminal=False)
        total = math.fsum(t for t, _, _ in self.tests)
        slowest = sorted(self.tests, key=lambda t: -t[0])[:self._top]
        if slowest:
            print_table(console, [Column("Duration", right=True), Column("Outcome"),
                                  Column("Test", shrink=20)],
                        [[duration(t), outcome, nodeid] for t, outcome, nodeid in slowest],
                        title=f"Slowest {len(slowest)} of {len(self.tests)} tests "
                              f"({duration(total)} in all; --callmetrics-top N for more):")
        tracked = _Functions(self.analytics)
        if tracked.snapshot():
            console.print()
            print_summary(tracked, console)
        elif self.tests:
            console.print("No tracked function was called (--callmetrics-track PATTERN "
                          "tracks a package's functions).", highlight=False)
        terminalreporter.write_sep("-", "callmetrics")
        terminalreporter.write(out.getvalue())

    def pytest_unconfigure(self) -> None:
        """Stop tracking and write the session's run to the store."""
        self.analytics.uninstrument()
        self.analytics.close()


class _Functions:
    """The session's instance without the tests themselves: the tracked functions only."""

    def __init__(self, analytics: Analytics) -> None:
        self._source = analytics

    @property
    def settings(self) -> AnalyticsConfig:
        return self._source.settings

    def snapshot(self) -> list[FunctionSnapshot]:
        return [s for s in self._source.snapshot() if s.event_type != "test"]

    def retained(self) -> list[RetainedCall]:
        return [c for c in self._source.retained() if c.event_type != "test"]

    def read(self) -> Reading:
        from callmetrics._engine.view import Reading  # noqa: PLC0415  # the plugin loads lazily

        reading = self._source.read()
        return Reading([s for s in reading.functions if s.event_type != "test"],
                       [c for c in reading.calls if c.event_type != "test"],
                       reading.wall_time)


def print_summary(source: _Functions, console: Any) -> None:
    """The summary table of the tracked functions (``_outputs.console``)."""
    from callmetrics._outputs.console import print_summary as show  # noqa: PLC0415

    show(source, console)
