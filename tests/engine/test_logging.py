"""Per-call log lines: levels, loggers, messages, laziness, and robustness."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

import callmetrics._engine.logs as callmetrics_logging
from callmetrics import Analytics, LoggerContainer
from callmetrics._engine.logs import (
    CONSOLE_SUPPRESSED,
    CallLogger,
    default_loggers,
    report_internal_error,
)

# The duration reads as _format.duration shows it: "812 ns", "12.3 µs", "4.56 ms".
LINE = re.compile(r"^(OK|FAILED \(\w+\)) (\S+) \[(.+)\] (\d+(?:\.\d+)? (?:ns|µs|ms|s))$")
UNITS = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def seconds_of(shown: str) -> float:
    """Read back a duration under a minute as _format.duration wrote it (``10.1 ms``)."""
    value, unit = shown.split(" ")
    return float(value) * UNITS[unit]


def records_of(caplog: pytest.LogCaptureFixture, logger: logging.Logger) -> list[logging.LogRecord]:
    """Return the captured records of one logger."""
    return [r for r in caplog.records if r.name == logger.name]


class CountingText(str):
    """A str whose conversions to text are counted, to see whether a message was formatted."""

    __slots__ = ()
    conversions = 0

    def __str__(self) -> str:
        """Count the conversion and return the plain text."""
        CountingText.conversions += 1
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        """Count the conversion and format the plain text."""
        CountingText.conversions += 1
        return str.__format__(self, spec)


class CountingName(type):
    """A metaclass counting reads of its classes' __name__ (the failure line's status)."""

    reads = 0

    @property
    def __name__(cls) -> str:  # type: ignore[override]  # counts, then answers as type does
        """Count the read and return the class's name."""
        CountingName.reads += 1
        return cls.__qualname__.rsplit(".", 1)[-1]


class CountedError(KeyError, metaclass=CountingName):
    """An exception whose type name is only read when a failure line is built."""


@pytest.fixture
def record_counter() -> Iterator[list[logging.LogRecord]]:
    """Collect every LogRecord created anywhere while the test runs."""
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record)
        return record

    logging.setLogRecordFactory(counting)
    yield made
    logging.setLogRecordFactory(factory)


def set_levels(loggers: LoggerContainer, level: int) -> None:
    for logger in (loggers.console, loggers.error, loggers.analytics):
        logger.setLevel(level)


def test_success_logs_debug_to_analytics_and_console(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """A quick successful call logs one DEBUG line on the analytics and console loggers."""
    analytics = Analytics(loggers=loggers)

    @analytics.track("API call")
    def fetch() -> int:
        return 1

    caplog.clear()
    assert fetch() == 1
    for logger in (loggers.analytics, loggers.console):
        (record,) = records_of(caplog, logger)
        assert record.levelno == logging.DEBUG
        match = LINE.match(record.getMessage())
        assert match is not None, record.getMessage()
        name = "test_success_logs_debug_to_analytics_and_console.fetch"
        assert match.groups()[:3] == ("OK", name, "API call")
    assert records_of(caplog, loggers.error) == []


def test_slow_success_logs_info(caplog: pytest.LogCaptureFixture, loggers: LoggerContainer) -> None:
    """A successful call slower than long_max logs at INFO, with its duration."""
    analytics = Analytics(
        {"duration_thresholds": {"short_max": 0.001, "medium_max": 0.002, "long_max": 0.005}},
        loggers,
    )

    @analytics.track("batch")
    def crunch() -> None:
        time.sleep(0.01)

    caplog.clear()
    crunch()
    for logger in (loggers.analytics, loggers.console):
        (record,) = records_of(caplog, logger)
        assert record.levelno == logging.INFO
        match = LINE.match(record.getMessage())
        assert match is not None
        assert seconds_of(match.group(4)) >= 0.01


def test_failure_logs_on_all_three_loggers(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure logs DEBUG on analytics, WARNING on console and ERROR with the exception."""
    analytics = Analytics(loggers=loggers)
    error = ValueError("bad id")

    @analytics.track("DB")
    def load() -> None:
        raise error

    caplog.clear()
    with pytest.raises(ValueError, match="bad id"):
        load()
    levels = {logger.name: [r.levelno for r in records_of(caplog, logger)]
              for logger in (loggers.analytics, loggers.console, loggers.error)}
    assert levels == {loggers.analytics.name: [logging.DEBUG],
                      loggers.console.name: [logging.WARNING],
                      loggers.error.name: [logging.ERROR]}
    (failure,) = records_of(caplog, loggers.error)
    assert failure.exc_info is not None
    assert failure.exc_info[1] is error
    match = LINE.match(failure.getMessage())
    assert match is not None
    assert match.groups()[:3] == ("FAILED (ValueError)",
                                  "test_failure_logs_on_all_three_loggers.load", "DB")
    for record in caplog.records:
        assert "FAILED (ValueError)" in record.getMessage()


def test_lines_show_durations_as_the_formatter_does(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """Per-call lines show the duration with _format.duration: ``2.00 µs``, not seconds."""
    log = CallLogger(loggers, long_max=1.0, capacity=64)
    caplog.clear()
    log.success("work", "unit", 0.0045671)
    log.failure("work", "unit", 0.000002, ValueError("bad"))
    log.success("slow", "unit", 123.0)
    lines = [(r.name, r.getMessage()) for r in caplog.records]
    assert lines == [
        (loggers.analytics.name, "OK work [unit] 4.57 ms"),
        (loggers.console.name, "OK work [unit] 4.57 ms"),
        (loggers.analytics.name, "FAILED (ValueError) work [unit] 2.00 µs"),
        (loggers.console.name, "FAILED (ValueError) work [unit] 2.00 µs"),
        (loggers.error.name, "FAILED (ValueError) work [unit] 2.00 µs"),
        (loggers.analytics.name, "OK slow [unit] 2m 03s"),
        (loggers.console.name, "OK slow [unit] 2m 03s"),
    ]


def test_async_calls_log_like_sync_calls(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """An async function's calls log the same lines as a sync function's."""
    import asyncio  # noqa: PLC0415  # only this test runs a loop

    analytics = Analytics(loggers=loggers)

    @analytics.track("io")
    async def fetch() -> int:
        return 1

    caplog.clear()
    asyncio.run(fetch())
    assert [r.levelno for r in records_of(caplog, loggers.analytics)] == [logging.DEBUG]


def test_nothing_is_formatted_when_loggers_are_off(
    loggers: LoggerContainer, record_counter: list[logging.LogRecord]
) -> None:
    """With every logger above the call's level no record is made and no argument formatted."""
    analytics = Analytics(loggers=loggers)
    label = CountingText("lazy")

    @analytics.track(label, name=CountingText("lazy.fn"))
    def ok() -> int:
        return 1

    @analytics.track(label, name=CountingText("lazy.bad"))
    def bad() -> None:
        raise CountedError

    set_levels(loggers, logging.WARNING)
    record_counter.clear()
    CountingText.conversions = 0
    for _ in range(100):
        ok()
    assert record_counter == []
    set_levels(loggers, logging.CRITICAL)
    CountingName.reads = 0
    for _ in range(10):
        with pytest.raises(CountedError):
            bad()
    assert record_counter == []
    assert CountingText.conversions == 0
    assert CountingName.reads == 0
    # The probe works: once a logger is on, the same call is formatted.
    set_levels(loggers, logging.DEBUG)
    handler = logging.Handler()
    handler.format = lambda record: record.getMessage()  # type: ignore[method-assign]  # probe
    handler.emit = handler.format  # type: ignore[method-assign, assignment]  # formats each record
    loggers.analytics.addHandler(handler)
    try:
        ok()
    finally:
        loggers.analytics.removeHandler(handler)
    assert CountingText.conversions > 0


def test_level_change_takes_effect_on_next_call(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """A level changed with setLevel applies from the very next call, both ways."""
    analytics = Analytics(loggers=loggers)

    @analytics.track("unit")
    def ping() -> None:
        pass

    set_levels(loggers, logging.WARNING)
    ping()
    caplog.clear()
    ping()
    assert caplog.records == []
    loggers.analytics.setLevel(logging.DEBUG)
    ping()
    assert [r.name for r in caplog.records] == [loggers.analytics.name]
    caplog.clear()
    loggers.analytics.setLevel(logging.WARNING)
    loggers.console.setLevel(logging.DEBUG)
    ping()
    assert [r.name for r in caplog.records] == [loggers.console.name]
    caplog.clear()
    loggers.console.setLevel(logging.WARNING)
    ping()
    assert caplog.records == []


def test_instances_sharing_an_analytics_logger_decide_apart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two instances sharing an analytics logger still each log to their own console logger."""
    shared = logging.getLogger("test.shared.analytics")
    error = logging.getLogger("test.shared.error")
    loud = logging.getLogger("test.shared.loud")
    quiet = logging.getLogger("test.shared.quiet")
    shared.setLevel(logging.WARNING)
    loud.setLevel(logging.DEBUG)
    quiet.setLevel(logging.WARNING)
    try:
        silent = Analytics(loggers=LoggerContainer(quiet, error, shared))
        chatty = Analytics(loggers=LoggerContainer(loud, error, shared))

        @silent.track("unit")
        def first() -> None:
            pass

        @chatty.track("unit")
        def second() -> None:
            pass

        first()  # caches "nothing to log" for the silent instance
        caplog.clear()
        second()
        first()
        assert [r.name for r in caplog.records] == [loud.name]
    finally:
        for logger in (shared, loud, quiet):
            logger.setLevel(logging.NOTSET)


def test_logging_disable_takes_effect(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """logging.disable() silences the per-call lines from the next call, and re-enables."""
    analytics = Analytics(loggers=loggers)

    @analytics.track("unit")
    def ping() -> None:
        pass

    ping()
    caplog.clear()
    logging.disable(logging.CRITICAL)
    try:
        ping()
        assert caplog.records == []
    finally:
        logging.disable(logging.NOTSET)
    ping()
    assert len(caplog.records) == 2


def test_parent_level_change_takes_effect(caplog: pytest.LogCaptureFixture) -> None:
    """Changing the level of a parent logger (loggers at NOTSET) applies at the next call."""
    parent = logging.getLogger("test.parentlevel")
    children = [logging.getLogger(f"test.parentlevel.{n}") for n in ("c", "e", "a")]
    analytics = Analytics(loggers=LoggerContainer(*children))

    @analytics.track("unit")
    def ping() -> None:
        pass

    parent.setLevel(logging.WARNING)
    try:
        ping()
        caplog.clear()
        ping()
        assert caplog.records == []
        parent.setLevel(logging.DEBUG)
        ping()
        assert len(caplog.records) == 2
    finally:
        parent.setLevel(logging.NOTSET)


class Exploding(logging.Handler):
    """A handler that raises from emit, as a broken application handler might."""

    def emit(self, record: logging.LogRecord) -> None:
        """Fail on every record."""
        raise RuntimeError(f"handler is broken ({record.levelname})")


def test_raising_handler_does_not_break_the_call(
    loggers: LoggerContainer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises leaves results, exceptions and counts intact, reported once."""
    monkeypatch.setattr(callmetrics_logging, "_reported", set())
    analytics = Analytics(loggers=loggers)

    @analytics.track("unit")
    def ok() -> int:
        return 7

    @analytics.track("unit")
    def bad() -> None:
        raise LookupError("mine")

    handler = Exploding()
    for logger in (loggers.console, loggers.error, loggers.analytics):
        logger.addHandler(handler)
    caplog.clear()
    try:
        assert ok() == 7
        assert ok() == 7
        with pytest.raises(LookupError, match="mine"):
            bad()
    finally:
        for logger in (loggers.console, loggers.error, loggers.analytics):
            logger.removeHandler(handler)
    assert analytics.call_counts == {"test_raising_handler_does_not_break_the_call.ok": 2,
                                     "test_raising_handler_does_not_break_the_call.bad": 1}
    internal = [r for r in caplog.records if r.name == "callmetrics.internal"]
    assert len(internal) == 1
    assert "handler is broken" in internal[0].getMessage()


def test_report_internal_error_logs_once_and_never_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """report_internal_error logs a failure kind once and swallows its own failures."""
    monkeypatch.setattr(callmetrics_logging, "_reported", set())
    caplog.clear()
    report_internal_error("writing the test store", OSError("disk full"))
    report_internal_error("writing the test store", OSError("disk full again"))
    messages = [r.getMessage() for r in caplog.records if r.name == "callmetrics.internal"]
    assert len(messages) == 1
    assert "writing the test store" in messages[0]
    assert "disk full" in messages[0]

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("logging is broken")

    monkeypatch.setattr(logging.getLogger("callmetrics.internal"), "error", explode)
    report_internal_error("another kind", ValueError("x"))  # must not raise


def test_console_lines_suppressed_in_context(
    loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """While CONSOLE_SUPPRESSED is above zero console lines stop; the others go on."""
    analytics = Analytics(loggers=loggers)

    @analytics.track("unit")
    def bad() -> None:
        raise ValueError

    token = CONSOLE_SUPPRESSED.set(1)
    try:
        caplog.clear()
        with pytest.raises(ValueError):  # noqa: PT011  # the function's own bare ValueError
            bad()
    finally:
        CONSOLE_SUPPRESSED.reset(token)
    names = {r.name for r in caplog.records}
    assert names == {loggers.analytics.name, loggers.error.name}


def test_library_loggers_carry_null_handlers() -> None:
    """The callmetrics loggers each hold a NullHandler."""
    default_loggers()
    for name in ("callmetrics", "callmetrics.console", "callmetrics.error",
                 "callmetrics.analytics"):
        handlers = logging.getLogger(name).handlers
        assert any(isinstance(h, logging.NullHandler) for h in handlers), name


QUIET_APP = """
import asyncio
from callmetrics import Analytics

analytics = Analytics({"duration_thresholds": {"short_max": 1e-9, "medium_max": 1e-9,
                                               "long_max": 1e-9}})

@analytics.track("unit")
def ok():
    return 1

@analytics.track("unit")
async def bad():
    raise ValueError("boom")

ok()
try:
    asyncio.run(bad())
except ValueError:
    pass
analytics.log_summary()
analytics.clear_old_events()
print("done", analytics.call_counts)
"""


def test_application_without_logging_sees_nothing_on_stderr() -> None:
    """An application that never configures logging gets no callmetrics output on stderr."""
    result = subprocess.run([sys.executable, "-c", QUIET_APP], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("done {")
