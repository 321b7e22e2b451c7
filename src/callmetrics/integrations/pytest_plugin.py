"""The pytest plugin: ``pytest --callmetrics[=STORE]`` records every test as a call.

Loaded through the ``pytest11`` entry point and off unless asked: without
``--callmetrics`` it adds its options and nothing else (no per-test hook is even
registered).  With it, each test (setup, call and teardown) is one call of event type
``test`` named by its node id, failed when any phase failed or errored; with
``--callmetrics-track PATTERN`` the functions of matching modules that the tests
call are recorded too.  The summary is printed at the end of the session and, with
a store, the session is written as one run labelled ``--callmetrics-label``, so that
``callmetrics diff`` compares two sessions.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from callmetrics._analytics import Analytics

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
        analytics = make_analytics(store or None, label)
    except Exception as exc:  # noqa: BLE001  # a bad store is a usage error, named
        raise pytest.UsageError(f"--callmetrics={store}: {exc}") from None
    recorder = SessionRecorder(analytics, config.getoption("callmetrics_track"))
    config.pluginmanager.register(recorder, "callmetrics-recorder")


class SessionRecorder:
    """The plugin's per-session part, registered only when enabled."""

    def __init__(self, analytics: Analytics, track: list[str]) -> None:
        """Record into ``analytics``; instrument the modules matching ``track``."""
        self.analytics = analytics
        self._failed: list[str] = []
        if track:
            analytics.instrument(*track)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Time the test's setup, call and teardown as one call named by its node id."""
        self._failed = []
        measure = self.analytics.measure(item.nodeid, event_type="test")
        measure.__enter__()
        try:
            return (yield)
        finally:
            failed = TestFailed(", ".join(self._failed)) if self._failed else None
            measure.__exit__(TestFailed if failed else None, failed, None)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Note a failed or errored phase of the running test."""
        if report.failed:
            self._failed.append("call failed" if report.when == "call"
                                else f"{report.when} errored")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the session's summary table after pytest's own summary."""
        from rich.console import Console  # noqa: PLC0415  # loads rich only when enabled

        out = io.StringIO()
        width = shutil.get_terminal_size((120, 24)).columns
        self.analytics.print_summary(Console(file=out, width=width, force_terminal=False))
        terminalreporter.write_sep("-", "callmetrics")
        terminalreporter.write(out.getvalue())

    def pytest_unconfigure(self) -> None:
        """Stop tracking and write the session's run to the store."""
        self.analytics.uninstrument()
        self.analytics.close()
