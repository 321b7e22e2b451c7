import contextlib
import io
import logging
import re
from collections.abc import Callable

import pytest
from rich.console import Console

from callmetrics import Analytics, DurationSketch, FunctionSnapshot, LoggerContainer
from callmetrics._format import duration
from callmetrics._outputs.console import (
    get_console,
    logging_to_console,
    print_summary,
)

ESCAPE = "\x1b"


def plain_console(width: int = 120) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(width=width, file=buffer, color_system=None), buffer


def terminal_console(width: int = 120) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(width=width, file=buffer, color_system=None, force_terminal=True), buffer


@pytest.fixture
def tracked(loggers: LoggerContainer) -> Analytics:
    return Analytics(loggers=loggers)


def console_lines(caplog: pytest.LogCaptureFixture, loggers: LoggerContainer) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == loggers.console.name]


def per_call_lines(caplog: pytest.LogCaptureFixture, loggers: LoggerContainer) -> list[str]:
    return [m for m in console_lines(caplog, loggers) if not m.startswith("Batch completed")]


def make_work(analytics: Analytics) -> Callable[[int], int]:
    @analytics.track("unit", name="work")
    def work(x: int) -> int:
        return x

    return work


def test_logging_to_console_restores_the_logger() -> None:
    """logging_to_console shows records while open and leaves the logger as it was."""
    logger = logging.getLogger("test.console.restore")
    console, buffer = plain_console()
    with logging_to_console(logger, console):
        logger.info("visible %d", 1)
    logger.info("not shown")
    assert "visible 1" in buffer.getvalue()
    assert "not shown" not in buffer.getvalue()
    assert logger.level == logging.NOTSET
    assert logger.handlers == []


def test_shared_console_is_one_instance() -> None:
    """get_console returns the same console every time."""
    assert get_console() is get_console()


def summary_analytics() -> Analytics:
    analytics = Analytics(config={"duration_thresholds": {"short_max": 0.5, "medium_max": 1.0,
                                                         "long_max": 2.0}})

    @analytics.track("net", name="[bold]fetch[/bold]")
    def fetch(fail: bool) -> None:
        if fail:
            raise OSError("down")

    @analytics.track("cpu", name="compute")
    def compute() -> None:
        pass

    for i in range(4):
        with contextlib.suppress(OSError):
            fetch(i == 0)
    compute()
    return analytics


def test_summary_is_plain_text_when_not_a_terminal() -> None:
    """Off a terminal the summary is an aligned text table, failing rows noted, no escapes."""
    analytics = summary_analytics()
    console, buffer = plain_console()
    print_summary(analytics, console)
    output = buffer.getvalue()
    assert ESCAPE not in output
    lines = output.splitlines()
    assert lines[0].split() == ["Function", "Type", "Calls", "Failed", "Success", "p50", "p95",
                                "p99", "Max", "Total", "Note"]
    rows = {line.split()[0]: line for line in lines[2:-1]}
    assert rows["[bold]fetch[/bold]"].split()[2:5] == ["4", "1", "75.0%"]
    assert rows["[bold]fetch[/bold]"].endswith("failing")
    assert rows["compute"].split()[2:5] == ["1", "0", "100.0%"]
    assert lines[-1].startswith("2 functions, 5 calls, 1 failed, 80.0% success")


def snapshot(name: str, duration: float, *, slow: int = 0) -> FunctionSnapshot:
    sketch = DurationSketch()
    sketch.add(duration)
    return FunctionSnapshot(name=name, event_type="io", module="m", calls=1, successes=1,
                            total=duration, fast=1 - slow, medium=0, slow=slow, overhead=0.0,
                            sketch=sketch, slowest=None, fastest=None)


def test_summary_is_sorted_by_total_time_and_marks_slow_rows(analytics: Analytics) -> None:
    """The function with the most total time comes first; a slow one is noted as slow."""
    analytics.restore([snapshot("quick", 0.1), snapshot("slowpoke", 6.0, slow=1)], [])
    console, buffer = plain_console()
    print_summary(analytics, console)
    lines = buffer.getvalue().splitlines()
    assert lines[2].startswith("slowpoke")
    assert lines[2].endswith("slow")
    assert lines[3].startswith("quick")
    assert not lines[3].endswith(("slow", "failing"))


def test_summary_on_a_terminal_is_a_table() -> None:
    """On a terminal the summary is a Rich table; markup in names is shown literally."""
    analytics = summary_analytics()
    console, buffer = terminal_console()
    print_summary(analytics, console)
    output = buffer.getvalue()
    assert "callmetrics summary" in output
    assert re.search(r"Function +Type +Calls +Failed +Success +p50 +p95 +p99 +Max +Total",
                     output)
    assert "─" in output  # a drawn rule under the header: Rich's table, not the plain text
    assert "[bold]fetch[/bold]" in output
    assert output.index("[bold]fetch") < output.index("compute")


def test_summary_of_nothing_says_so(analytics: Analytics) -> None:
    """With no calls recorded the summary says so in one line."""
    console, buffer = plain_console()
    analytics.print_summary(console)
    assert buffer.getvalue() == "callmetrics: no calls recorded\n"


def test_summary_on_a_narrow_terminal_keeps_every_number() -> None:
    """At 80 columns the event type gives way and every figure still shows whole."""
    analytics = summary_analytics()
    console, buffer = terminal_console(width=80)
    print_summary(analytics, console)
    output = buffer.getvalue()
    assert re.search(r"Function +Calls +Failed +Success +p50 .*Total", output)
    for snap in analytics.snapshot():
        assert duration(snap.total) in output
    assert "Type" not in output
    assert all(len(line) <= 80 for line in output.splitlines())


def test_summary_on_a_very_narrow_terminal_keeps_names_and_whole_numbers() -> None:
    """At 60 columns some percentile columns give way so names and figures show whole."""
    analytics = summary_analytics()
    console, buffer = terminal_console(width=60)
    print_summary(analytics, console)
    output = buffer.getvalue()
    assert "[bold]fetch" in output  # the long name may fold onto a second line
    assert "compute" in output
    assert re.search(r"Function +Calls +Failed +Success +p50 .*Total", output)
    assert all(len(line) <= 60 for line in output.splitlines())
    for snap in analytics.snapshot():
        assert duration(snap.total) in output


@pytest.mark.parametrize("terminal", [False, True])
def test_summary_shows_control_characters_in_names_as_escapes(terminal: bool) -> None:
    """A name carrying terminal escape codes or a newline is printed visibly, never obeyed."""
    analytics = Analytics()

    @analytics.track("net\nwork", name="\x1b[31mred\x1b[0m")
    def painted() -> None:
        pass

    painted()
    console, buffer = terminal_console() if terminal else plain_console()
    print_summary(analytics, console)
    output = buffer.getvalue()
    assert ESCAPE not in output
    assert "\\x1b[31mred\\x1b[0m" in output
    assert "net\\nwork" in output


def test_log_lines_through_the_handler_show_control_characters_as_escapes(
        tracked: Analytics) -> None:
    """Per-call lines of a hostile function, and any logged text, print escaped, not obeyed."""
    console, buffer = terminal_console()
    hostile = tracked.track("net\x1b[2J", name="\x1b]0;pwned\x07evil\u202eexe\x00")(
        lambda: None)
    with logging_to_console(tracked.console_logger, console, level=logging.DEBUG):
        hostile()
        tracked.console_logger.warning("label %s", "\x1b[31mred\x9b")
    output = buffer.getvalue()
    for char in ("\x07", "\x00", "\u202e", "\x9b", "\x1b]", "\x1b[2J", "\x1b[31m"):
        assert char not in output
    assert "\\x1b]0;pwned\\x07evil\\u202eexe\\x00" in output
    assert "\\x1b[31mred\\x9b" in output


def test_summary_counts_one_function_and_one_call_in_the_singular(analytics: Analytics) -> None:
    """The closing line reads ``1 function, 1 call``, never ``1 functions, 1 calls``."""
    analytics.restore([snapshot("only", 0.1)], [])
    console, buffer = plain_console()
    print_summary(analytics, console)
    assert buffer.getvalue().splitlines()[-1].startswith("1 function, 1 call, 0 failed, 100.0%")
