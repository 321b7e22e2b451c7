"""The command line: `callmetrics demo`, how it reports bad usage, what a command loads."""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from callmetrics import __version__
from callmetrics._cli import COMMANDS, build_parser, main
from store_helpers import record_calls


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


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_each_command_s_parser_is_the_whole_parser_s() -> None:
    """The parser built for one command knows that command only, as the whole one does.

    ``main`` builds the parser of the command named first (so that ``diff`` loads only
    its own module); the names listed per module must be those it adds.
    """
    everything = build_parser()
    assert _commands(everything) == [name for names in COMMANDS.values() for name in names]
    for name in _commands(everything):
        alone = build_parser(name)
        (owner,) = (names for names in COMMANDS.values() if name in names)
        assert _commands(alone) == list(owner)
    words = ["diff", "s.db", "--base", "1", "--head", "b", "--max-ratio", "1.2", "--json"]
    assert vars(build_parser("diff").parse_args(words)) == vars(everything.parse_args(words))


def test_diff_loads_neither_the_tracer_nor_the_writer_nor_rich(tmp_path: Path) -> None:
    """`callmetrics diff --json` imports what comparing two stored runs takes, no more.

    The package's public names are imported on first use: a CI job's ``diff`` does not
    pay for the hot path, the store's writer, the report's templates or rich.
    """
    store = tmp_path / "runs.db"
    record_calls(store, "work", 50, label="base")
    record_calls(store, "work", 50, label="head")
    code = ("import json, sys\n"
            "from callmetrics._cli import main\n"
            f"code = main(['diff', {str(store)!r}, '--base', 'base', '--head', 'head', "
            "'--json'])\n"
            "print(json.dumps([code, sorted(sys.modules)]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    code, modules = json.loads(done.stdout.splitlines()[-1])
    assert code == 0
    assert json.loads("\n".join(done.stdout.splitlines()[:-1]))["functions"][0]["function"] == (
        "work")
    loaded = set(modules)
    assert "callmetrics._cli.diff" in loaded
    for module in ("callmetrics._analytics", "callmetrics._engine.wrap",
                   "callmetrics._store.writer", "callmetrics._cli.run", "callmetrics._cli.demo",
                   "rich", "jinja2"):
        assert module not in loaded, module


def test_diff_gives_the_garbage_collector_back_as_it_found_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`callmetrics diff` pauses the cyclic collector while it works, then restores it."""
    store = tmp_path / "runs.db"
    record_calls(store, "work", 40, label="base")
    record_calls(store, "work", 40, label="head")
    words = ["diff", str(store), "--base", "base", "--head", "head"]
    assert gc.isenabled()
    assert main(words) == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert main(words) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert "OK: none of 1 functions regressed" in capsys.readouterr().out
