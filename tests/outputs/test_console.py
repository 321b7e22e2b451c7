import contextlib
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from rich.console import Console

from callmetrics import (
    Analytics,
    AnalyticsConfig,
    DurationSketch,
    FunctionSnapshot,
    LoggerContainer,
)
from callmetrics._engine.view import Reading, RetainedCall
from callmetrics._format import duration
from callmetrics._outputs.console import (
    get_console,
    logging_to_console,
    print_failures,
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
    """Off a terminal the summary is as wide as its content, failing rows noted, no escapes."""
    analytics = summary_analytics()
    console, buffer = plain_console(width=40)
    print_summary(analytics, console)
    output = buffer.getvalue()
    assert ESCAPE not in output
    lines = output.splitlines()
    assert lines[1].split() == ["Note", "Function", "Type", "Calls", "Failed", "Success",
                                "Self", "Total", "p50", "p95", "p99", "Max"]
    rows = {line.split()[1] if line.startswith("FAIL") else line.split()[0]: line
            for line in lines[3:-1]}
    assert rows["[bold]fetch[/bold]"].split()[3:6] == ["4", "1", "75.0%"]
    assert rows["[bold]fetch[/bold]"].startswith("FAIL")
    assert rows["compute"].split()[2:5] == ["1", "0", "100.0%"]
    assert lines[-1].startswith("2 functions, 5 calls, 1 failed, 80.0% success")
    assert "ranked by self time" in lines[-1]


def snapshot(name: str, duration: float, *, slow: int = 0, self_time: float | None = None,
             calls: int = 1) -> FunctionSnapshot:
    sketch = DurationSketch()
    for _ in range(calls):
        sketch.add(duration / calls)
    return FunctionSnapshot(name=name, event_type="io", module="m", calls=calls,
                            successes=calls, total=duration, fast=calls - slow, medium=0,
                            slow=slow, overhead=0.0, sketch=sketch, slowest=None, fastest=None,
                            self_time=self_time, inclusive_time=duration)


@dataclass
class Snaps:
    """A Source of given snapshots and wall time (Analytics.restore keeps older fields only)."""

    functions: list[FunctionSnapshot]
    wall_time: float | None = None

    @property
    def settings(self) -> AnalyticsConfig:
        """Defaults."""
        return AnalyticsConfig()

    def snapshot(self) -> list[FunctionSnapshot]:
        """The snapshots given."""
        return self.functions

    def retained(self) -> list[RetainedCall]:
        """None."""
        return []

    def read(self) -> Reading:
        """The snapshots and the wall time given."""
        return Reading(self.functions, [], self.wall_time)


def test_summary_is_sorted_by_total_time_and_marks_slow_rows(analytics: Analytics) -> None:
    """Without self time: the most total time first; a slow one is marked in words."""
    analytics.restore([snapshot("quick", 0.1), snapshot("slowpoke", 6.0, slow=1)], [])
    console, buffer = plain_console()
    print_summary(analytics, console)
    lines = buffer.getvalue().splitlines()
    assert lines[3].startswith("slow   slowpoke")
    assert lines[4].startswith("       quick")


def test_summary_ranks_by_self_time_and_states_the_wall_time() -> None:
    """With self time: a Self column, ranked by it; the last line gives wall time and share."""
    source = Snaps([snapshot("main", 2.0, self_time=0.1), snapshot("fib", 1.9, self_time=1.9,
                                                                   calls=100)], wall_time=2.5)
    console, buffer = plain_console()
    print_summary(source, console)
    lines = buffer.getvalue().splitlines()
    assert lines[1].split()[5:8] == ["Success", "Self", "Total"]
    assert lines[3].split()[:2] == ["fib", "io"]
    assert lines[3].split()[5:7] == ["1.90", "s"]
    assert lines[4].split()[0] == "main"
    assert ("wall time 2.50 s, 80.0% of it in tracked functions' self time "
            "(durations overlap: 3.90 s summed over calls); ranked by self time.") in lines[-1]


def test_summary_on_a_terminal_is_a_table() -> None:
    """On a terminal the summary is a Rich table; markup in names is shown literally."""
    analytics = summary_analytics()
    console, buffer = terminal_console()
    print_summary(analytics, console)
    output = buffer.getvalue()
    assert "callmetrics summary" in output
    assert re.search(
        r"Note +Function +Type +Calls +Failed +Success +Self +Total +p50 +p95 +p99 +Max", output)
    assert "─" in output  # a drawn rule under the header
    assert "[bold]fetch[/bold]" in output
    assert output.index("[bold]fetch") < output.index("compute")


def test_summary_of_nothing_says_so(analytics: Analytics) -> None:
    """With no calls recorded the summary says so in one line."""
    console, buffer = plain_console()
    analytics.print_summary(console)
    assert buffer.getvalue() == "callmetrics: no calls recorded\n"


def _long_names() -> Snaps:
    return Snaps([snapshot(f"service.handlers.checkout.payment_provider.fn_{i}", 0.01 * i,
                           self_time=0.01 * i, calls=10 * i, slow=i % 2) for i in range(1, 13)],
                 wall_time=1.0)


@pytest.mark.parametrize(("width", "headers"), [
    (60, ["Note", "Function", "Calls", "Self", "p95"]),
    (80, ["Note", "Function", "Calls", "Failed", "Self", "Total", "p95"]),
    (200, ["Note", "Function", "Type", "Calls", "Failed", "Success", "Self", "Total", "p50",
           "p95", "p99", "Max"]),
])
def test_summary_fits_the_terminal_by_column_priority(width: int, headers: list[str]) -> None:
    """Name, calls, self time, p95 and the marker stay; names lose their middle, not a column."""
    console, buffer = terminal_console(width=width)
    print_summary(_long_names(), console)
    lines = buffer.getvalue().splitlines()
    assert lines[1].split() == headers
    table = lines[1:15]
    assert all(len(line) <= width for line in table)
    row = next(line for line in table if "fn_12" in line)
    assert "service." in row  # the start and the end of the name, the middle cut
    if width < 200:
        assert "\u2026" in row
    assert row.startswith("       ")  # fn_12: even, not slow
    assert next(line for line in table if "fn_11" in line).startswith("slow")  # NO_COLOR-proof
    assert duration(0.12) in row


def test_summary_on_a_very_narrow_terminal_keeps_names_and_whole_numbers() -> None:
    """At 60 columns the names and whole figures show, nothing wraps."""
    analytics = summary_analytics()
    console, buffer = terminal_console(width=60)
    print_summary(analytics, console)
    output = buffer.getvalue()
    assert "[bold]fetch[/bold]" in output
    assert "compute" in output
    assert all(len(line) <= 60 for line in output.splitlines())
    for snap in analytics.snapshot():
        assert duration(snap.total) in output


def test_failures_print_grouped_by_cause() -> None:
    """`stats` prints failures by cause: one group for ids that differ, counted."""
    calls = [RetainedCall(float(i), 0.01, "api.get_user", "io", "KeyError", f"user {i}",
                          "/srv/api.py:3 in get_user") for i in range(5)]
    calls.append(RetainedCall(9.0, 0.01, "api.pay", "io", "ValueError", "declined", None))
    for width in (60, 200):
        console, buffer = terminal_console(width=width)
        print_failures(calls, console, limit=1)
        lines = buffer.getvalue().splitlines()
        assert lines[1].startswith("Failures among the retained calls (6) in 2 groups")
        row = next(line for line in lines if "KeyError" in line)
        assert row.split()[:4] == ["5", "KeyError", "user", "<n>"]
        assert all(len(line) <= width for line in lines if "KeyError" in line)
        assert "... and 1 more group (all of them" in buffer.getvalue()


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
