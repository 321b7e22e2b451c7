import asyncio
import contextlib
import io
import logging
import re
import sys
from collections.abc import Callable

import pytest
from rich.console import Console

from callmetrics import Analytics, DurationSketch, FunctionSnapshot, LoggerContainer
from callmetrics._console import (
    format_seconds,
    get_console,
    logging_handler,
    logging_to_console,
    print_summary,
)
from callmetrics._logging import CONSOLE_SUPPRESSED

ESCAPE = "\x1b"
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


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


def test_format_seconds_picks_a_readable_unit() -> None:
    """Durations read as ns, µs, ms, s, minutes and hours with three significant digits."""
    assert format_seconds(None) == "-"
    assert format_seconds(0.0) == "0 s"
    assert format_seconds(4.2e-7) == "420 ns"
    assert format_seconds(1.234e-5) == "12.3 µs"
    assert format_seconds(0.004567) == "4.57 ms"
    assert format_seconds(1.5) == "1.50 s"
    assert format_seconds(123) == "2m 03s"
    assert format_seconds(7380) == "2h 03m"


def test_batch_suppresses_per_call_lines_and_logs_the_batch_line(
    tracked: Analytics, loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """Inside a batch no per-call console line is logged; on exit one batch line is."""
    work = make_work(tracked)
    console, _ = plain_console()
    caplog.set_level(logging.DEBUG)
    with tracked.batch_mode("Working", console) as batch:
        for i in range(3):
            work(i)
        assert batch.calls == 3
    assert per_call_lines(caplog, loggers) == []
    lines = console_lines(caplog, loggers)
    assert len(lines) == 1
    unit = r"[\d.]+ [nµm]?s"
    assert re.fullmatch(rf"Batch completed: 3 calls in {unit} \(p50 {unit} per call\)", lines[0])
    work(9)
    assert len(per_call_lines(caplog, loggers)) == 1
    assert CONSOLE_SUPPRESSED.get() == 0
    assert tracked.observers == []


def test_batch_without_calls_logs_nothing(
    tracked: Analytics, loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch in which no tracked call finished logs no batch line."""
    caplog.set_level(logging.DEBUG)
    with tracked.batch_mode("Idle", plain_console()[0]):
        pass
    assert console_lines(caplog, loggers) == []


def test_batch_counts_failures_and_restores_lines_after_an_exception(
    tracked: Analytics, loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing call counts, and an exception leaving the batch still ends it cleanly."""

    @tracked.track("unit", name="boom")
    def boom() -> None:
        raise KeyError("x")

    caplog.set_level(logging.DEBUG)
    with pytest.raises(KeyError), tracked.batch_mode("Failing", plain_console()[0]):
        boom()
    assert per_call_lines(caplog, loggers) == []
    line = console_lines(caplog, loggers)[0]
    assert line.startswith("Batch completed: 1 calls")
    assert line.endswith("per call, 1 failed)")
    assert CONSOLE_SUPPRESSED.get() == 0


def test_nested_batches_keep_lines_suppressed_until_the_outer_one_ends(
    tracked: Analytics, loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """Leaving an inner batch keeps the outer one quiet; each counts its own calls."""
    work = make_work(tracked)
    console, _ = plain_console()
    caplog.set_level(logging.DEBUG)
    with tracked.batch_mode("outer", console) as outer:
        work(1)
        with tracked.batch_mode("inner", console) as inner:
            work(2)
            work(3)
        work(4)
        assert CONSOLE_SUPPRESSED.get() == 1
    assert per_call_lines(caplog, loggers) == []
    assert (inner.calls, outer.calls) == (2, 4)
    lines = console_lines(caplog, loggers)
    assert [line.split(" in ")[0] for line in lines] == [
        "Batch completed: 2 calls", "Batch completed: 4 calls"]


def test_concurrent_async_batches_count_only_their_own_calls(
    tracked: Analytics, loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """Two asyncio tasks with their own batches, and one without, do not mix up."""

    @tracked.track("unit", name="step")
    async def step() -> None:
        await asyncio.sleep(0)

    console, _ = plain_console()
    caplog.set_level(logging.DEBUG)
    counts: dict[str, int] = {}

    async def batch(label: str, calls: int) -> None:
        async with tracked.batch_mode(label, console) as b:
            for _ in range(calls):
                await step()
            counts[label] = b.calls

    async def loose() -> None:
        for _ in range(2):
            await step()

    async def main() -> None:
        await asyncio.gather(batch("a", 5), batch("b", 3), loose())

    asyncio.run(main())
    assert counts == {"a": 5, "b": 3}
    # Only the task outside any batch logged per-call lines.
    assert len(per_call_lines(caplog, loggers)) == 2
    assert CONSOLE_SUPPRESSED.get() == 0


def test_progress_counts_the_batch_items_not_nested_calls(tracked: Analytics) -> None:
    """With total=, each call made directly in the batch advances it; nested ones do not."""
    work = make_work(tracked)

    @tracked.track("unit", name="outer")
    def outer(x: int) -> int:
        return work(x) + work(x)

    with tracked.batch_mode("Items", plain_console()[0], total=3) as batch:
        for i in range(3):
            outer(i)
    assert batch.completed == 3
    assert batch.calls == 9


def test_explicit_advance_takes_over_from_counted_calls(tracked: Analytics) -> None:
    """After advance(), only advance() moves the progress."""
    work = make_work(tracked)
    with tracked.batch_mode("Items", plain_console()[0], total=10) as batch:
        work(1)
        batch.advance(2)
        work(2)
        batch.advance()
    assert batch.completed == 3
    assert batch.calls == 2


def test_batch_checks_its_arguments(tracked: Analytics) -> None:
    """Bad arguments fail at once with a message naming the argument."""
    with pytest.raises(ValueError, match="total"):
        tracked.batch_mode(total=-1)
    with pytest.raises(TypeError, match="total"):
        tracked.batch_mode(total="3")  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(TypeError, match="message"):
        tracked.batch_mode(42)  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(TypeError, match="console"):
        tracked.batch_mode("x", io.StringIO())  # type: ignore[arg-type]  # the point
    batch = tracked.batch_mode("x", plain_console()[0])
    with batch, pytest.raises(RuntimeError, match="already open"):
        batch.__enter__()


def test_no_spinner_or_escape_codes_when_not_a_terminal(tracked: Analytics) -> None:
    """On a non-terminal console a batch (with or without total) writes nothing at all."""
    work = make_work(tracked)
    console, buffer = plain_console()
    with tracked.batch_mode("Quiet", console) as batch:
        batch.update("[cyan]Still quiet[/cyan]")
        work(1)
    with tracked.batch_mode("Quiet", console, total=2):
        work(1)
        work(2)
    assert buffer.getvalue() == ""


def test_terminal_shows_spinner_text_and_progress(tracked: Analytics) -> None:
    """On a terminal the batch draws its (updated) message, count and bar, then clears."""
    work = make_work(tracked)
    console, buffer = terminal_console()
    with tracked.batch_mode("Fetching", console, total=4) as batch:
        work(1)
        work(2)
        batch.update("Fetching more")  # a new text is drawn at once
    output = buffer.getvalue()
    assert "Fetching more" in output
    assert "2/4" in output
    assert tracked.observers == []


def test_log_lines_share_the_console_with_the_spinner(
    tracked: Analytics, loggers: LoggerContainer
) -> None:
    """A log line emitted during a batch is printed whole through the same console."""
    console, buffer = terminal_console()
    handler = logging_handler(console)
    loggers.console.addHandler(handler)
    try:
        with tracked.batch_mode("Working", console) as batch:
            loggers.console.warning("disk is %s", "getting full")
            batch.update("Still working")
    finally:
        loggers.console.removeHandler(handler)
    output = buffer.getvalue()
    assert "disk is getting full" in output
    assert "Working" in output
    assert "Still working" in output


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
        assert format_seconds(snap.total) in output
    assert "Type" not in output
    assert all(len(line) <= 80 for line in output.splitlines())


def test_invalid_markup_in_a_message_shows_literally(tracked: Analytics) -> None:
    """A message or status that is not valid Rich markup is shown as written, never raised."""
    work = make_work(tracked)
    console, buffer = terminal_console()
    stdout = sys.stdout
    with tracked.batch_mode("files [/] here", console) as batch:
        work(1)
        batch.update("now [/x] there")
        batch.update("[cyan]styled[/cyan]")
    output = buffer.getvalue()
    assert "files [/] here" in output
    assert "now [/x] there" in output
    assert "[cyan]" not in output
    assert "styled" in output
    assert sys.stdout is stdout
    assert CONSOLE_SUPPRESSED.get() == 0
    assert tracked.observers == []


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
        assert format_seconds(snap.total) in output


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


def test_batch_text_shows_control_characters_as_escapes(tracked: Analytics) -> None:
    """A batch message with escape codes is drawn with them visible."""
    work = make_work(tracked)
    console, buffer = terminal_console()
    with tracked.batch_mode("load \x1b]0;pwned\x07 [bold]x[/bold]", console):
        work(1)
    output = buffer.getvalue()
    assert "\x1b]0;" not in output
    assert "\x07" not in output
    assert "\\x1b]0;pwned\\x07" in output


def test_batch_line_p50_is_the_median_of_its_calls(
        tracked: Analytics, loggers: LoggerContainer, caplog: pytest.LogCaptureFixture) -> None:
    """Over more calls than the fold buffer holds, the line's p50 is their median (1 %)."""
    caplog.set_level(logging.DEBUG)
    with tracked.batch_mode("Known", plain_console()[0]) as batch:
        for i in range(1, 10_001):
            batch._record(i * 1e-4, failed=i % 1000 == 0, own_item=False)
    (line,) = console_lines(caplog, loggers)
    match = re.fullmatch(r"Batch completed: 10,000 calls in .+ \(p50 ([\d.]+) ms per call, "
                         r"10 failed\)", line)
    assert match, line
    assert float(match[1]) == pytest.approx(500.0, rel=0.01)
