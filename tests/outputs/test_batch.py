"""Batch mode: quiet per-call lines, spinner and progress, the closing batch line."""

import asyncio
import io
import logging
import math
import re
import sys

import pytest
from test_console import (
    console_lines,
    make_work,
    per_call_lines,
    plain_console,
    terminal_console,
)

from callmetrics import Analytics, LoggerContainer
from callmetrics._engine.logs import CONSOLE_SUPPRESSED
from callmetrics._outputs.console import logging_handler

SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@pytest.fixture
def tracked(loggers: LoggerContainer) -> Analytics:
    return Analytics(loggers=loggers)


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


def test_a_batch_of_one_call_says_call(
    tracked: Analytics, loggers: LoggerContainer, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch of one call logs ``1 call in``, in the singular."""
    work = make_work(tracked)
    console, _ = plain_console()
    caplog.set_level(logging.DEBUG)
    with tracked.batch_mode("Working", console):
        work(1)
    (line,) = console_lines(caplog, loggers)
    assert line.startswith("Batch completed: 1 call in ")


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
    assert line.startswith("Batch completed: 1 call in ")
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


def test_batch_folds_only_durations_the_sketch_accepts(
        tracked: Analytics, loggers: LoggerContainer, caplog: pytest.LogCaptureFixture) -> None:
    """NaN, infinite, negative or huge durations count as calls but stay out of the p50.

    Tracked calls always measure a finite, non-negative time (``perf_counter``); this
    feeds the batch directly, as a broken clock would.
    """
    caplog.set_level(logging.DEBUG)
    bad = [math.nan, math.inf, -math.inf, -1e-3, 1e39]
    with tracked.batch_mode("Odd", plain_console()[0]) as batch:
        for i in range(3 * 4096):  # several folds, each with bad values in it
            batch._record(bad[i % 5] if i % 7 == 0 else 2e-3, failed=False, own_item=False)
    (line,) = console_lines(caplog, loggers)
    assert re.fullmatch(r"Batch completed: 12,288 calls in .+ \(p50 2\.00 ms per call\)",
                        line), line


def test_the_spinner_counts_calls_with_the_shared_count_format() -> None:
    """Without a total the spinner reads ``1 call``, ``1,234 calls``."""
    from rich.progress import Progress  # noqa: PLC0415  # only this test builds a task

    from callmetrics._outputs.progress import _CountColumn  # noqa: PLC0415  # the column on its own

    progress = Progress()
    one = progress.add_task("x", total=None, calls=1)
    many = progress.add_task("x", total=None, calls=1234)
    column = _CountColumn()
    assert column.render(progress.tasks[one]).plain == "1 call"
    assert column.render(progress.tasks[many]).plain == "1,234 calls"
