"""The command line: `callmetrics demo` and how it reports bad usage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from callmetrics import __version__


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m callmetrics ARGS` in ``cwd`` and return the finished process."""
    return subprocess.run([sys.executable, "-m", "callmetrics", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120, check=False)


def test_demo_runs_and_prints_the_summary(tmp_path: Path) -> None:
    """`demo --scale 0` exits 0 and prints the per-function summary of its workload."""
    result = run_cli("demo", "--scale", "0", "--dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("run_demo.fetch_user", "run_demo.query_orders", "run_demo.render_page",
                 "run_demo.read_lines", "run_demo.Cache.get", "load config"):
        assert name in out
    assert "calls" in out
    assert "success" in out
    assert "Failed" in out
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("nosuch",), "nosuch"),
        (("demo", "--bogus"), "--bogus"),
        (("demo", "--scale", "fast"), "--scale"),
        (("demo", "--scale", "-1"), "--scale"),
        (("demo", "--scale", "nan"), "--scale"),
        (("demo", "--scale", "inf"), "--scale"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path: Path, args: tuple[str, ...],
                                         mentions: str) -> None:
    """A bad command or argument exits with code 2 and one error line naming it."""
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "error" in lines[0]
    assert mentions in lines[0]
    assert result.stdout == ""


def test_no_command_shows_help_and_exits_2(tmp_path: Path) -> None:
    """Running without a command prints the help (listing demo) on stderr and exits 2."""
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "demo" in result.stderr
    assert result.stdout == ""  # stdout is for data


def test_version(tmp_path: Path) -> None:
    """--version prints the package version."""
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert __version__ in result.stdout
