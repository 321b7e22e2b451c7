r"""Hostile names never reach the terminal raw: every command escapes what it prints.

A store anyone can write to may carry run labels, function names, event types and
paths made of terminal escape sequences (clear the screen, set the window title),
NUL bytes or bidi overrides that reorder what is shown.  Each command must show them
as visible escapes (``\x1b``, ``\u202e``), never pass them through.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callmetrics import Analytics, DurationSketch, FunctionSnapshot
from callmetrics._cli import main
from callmetrics._store import attach_store

CLEAR = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;pwned\x07"
BIDI = "evil\u202ecod.exe"
NUL = "nul\x00byte"
FORBIDDEN = ("\x1b", "\x07", "\x00", "\u202e", "\u2066", "\x9b")


def assert_clean(text: str) -> None:
    for char in FORBIDDEN:
        assert char not in text, f"{char!r} reached the terminal: {text!r}"


def snapshot(name: str, event_type: str, durations: list[float]) -> FunctionSnapshot:
    sketch = DurationSketch()
    for duration in durations:
        sketch.add(duration)
    return FunctionSnapshot(name=name, event_type=event_type, module="m", calls=len(durations),
                            successes=len(durations) - 1, total=sum(durations),
                            fast=len(durations), medium=0, slow=0, overhead=0.0,
                            sketch=sketch, slowest=None, fastest=None)


def hostile_run(store: Path, label: str, scale: float) -> None:
    """One run whose label, names and event types carry control and bidi characters."""
    analytics = Analytics(max_events=0)
    writer = attach_store(analytics, store, label=label)
    names = {TITLE: "api" + CLEAR, BIDI: "\u2066type", NUL: "t\x9bx", "plain": "ok"}
    # Spread without a trend in time (a trend shared by every function would be a
    # slower stretch of the machine to diff, and left out).
    durations = [0.001 * scale * (1 + (i * 37 % 60) / 100) for i in range(60)]
    now = time.time()
    analytics.restore(
        [snapshot(name, kind, durations) for name, kind in names.items()],
        sorted((now + i * 1e-3, d, "Err\x1b[31m" if i == 0 else None, name)
               for name in names for i, d in enumerate(durations)))
    writer.close()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store whose own path holds an escape sequence, with two hostile runs."""
    path = tmp_path / f"runs{CLEAR}.db"
    hostile_run(path, "base" + CLEAR, 1.0)
    hostile_run(path, TITLE + "head", 2.0)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert_clean(output)
    return code, output


def test_runs(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs` shows hostile labels escaped."""
    code, out = run(capsys, "runs", str(store))
    assert code == 0
    assert "base\\x1b[2J" in out
    assert "\\x1b]0;pwned\\x07head" in out


def test_stats_table_and_json(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`stats` escapes names and event types; `--json` escapes them as JSON does."""
    code, out = run(capsys, "stats", str(store))
    assert code == 0
    assert "\\x1b]0;pwned\\x07" in out
    assert "evil\\u202ecod.exe" in out
    assert "nul\\x00byte" in out
    code, out = run(capsys, "stats", str(store), "--json")
    assert code == 0
    assert "\\u001b]0;pwned\\u0007" in out


def test_stats_errors(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Errors naming hostile functions or labels (and listing the known ones) are escaped."""
    code, out = run(capsys, "stats", str(store), "--function", "\x1b[5mnope")
    assert code == 2
    assert "known:" in out
    code, _ = run(capsys, "stats", str(store), "--label", CLEAR)
    assert code == 2


def test_diff(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`diff` escapes the side labels, names and the verdict line; so does its JSON."""
    # Every function is 2x slower: without --environment none, diff would take that
    # for a slower machine (the common shift), and nothing would regress.
    code, out = run(capsys, "diff", str(store), "--base", "base" + CLEAR, "--head",
                    TITLE + "head", "--environment", "none")
    assert code == 1
    assert re.search(r"REGRESSED.*\\x1b\]0;pwned\\x07", out)
    code, out = run(capsys, "diff", str(store), "--base", "1", "--head", "2", "--json",
                    "--environment", "none")
    assert code == 1
    code, _ = run(capsys, "diff", str(store), "--base", TITLE, "--head", "2")
    assert code == 2


def test_report_messages(store: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    """`report` prints its (hostile) output path and its errors escaped."""
    target = tmp_path / f"r{TITLE}.html"
    code, out = run(capsys, "report", str(store), "-o", str(target))
    assert code == 0
    assert target.is_file()
    assert "r\\x1b]0;pwned\\x07.html" in out
    code, _ = run(capsys, "report", str(store), "-o", str(tmp_path / CLEAR / "r.html"))
    assert code == 2
    code, _ = run(capsys, "report", str(store), "--label", BIDI, "-o", str(target))
    assert code == 2


def test_prune(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`prune` prints the store's path escaped."""
    code, out = run(capsys, "prune", str(store), "--older-than", "0s", "--yes")
    assert code == 0
    assert "runs\\x1b[2J\\x1b[H.db" in out


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    """The parser's own messages quote hostile arguments escaped too."""
    with pytest.raises(SystemExit):
        main(["stats", "S", "--since", CLEAR])
    assert_clean(capsys.readouterr().err)
    with pytest.raises(SystemExit):
        main([TITLE])
    assert_clean(capsys.readouterr().err)


def test_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing store's hostile path is escaped in the error line."""
    code, out = run(capsys, "runs", str(tmp_path / f"{BIDI}{NUL[:3]}.db"))
    assert code == 2
    assert "\\u202e" in out


def test_serve_metrics_output(store: Path) -> None:
    """`serve-metrics` prints its start line with the hostile store path escaped."""
    pytest.importorskip("prometheus_client")
    process = subprocess.Popen(
        [sys.executable, "-m", "callmetrics", "serve-metrics", str(store), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Serving the metrics of")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert_clean(first + out + err)
    assert "runs\\x1b[2J\\x1b[H.db" in first


def test_serve_metrics_error(tmp_path: Path) -> None:
    """`serve-metrics` refusing a hostile, foreign file words the error escaped."""
    foreign = tmp_path / f"{TITLE}.txt"
    foreign.write_text("hello")
    done = subprocess.run(
        [sys.executable, "-m", "callmetrics", "serve-metrics", str(foreign), "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2
    assert_clean(done.stdout + done.stderr)
    assert "not a callmetrics store" in done.stderr
