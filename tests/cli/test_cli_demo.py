"""`callmetrics demo`: a first run that leaves a report and a store and says what next."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from callmetrics._cli import main
from callmetrics._cli.demo import REPORT_NAME, command_prefix
from callmetrics._store.runs import list_runs

BIN = Path(sys.executable).parent


def without_venv_path() -> dict[str, str]:
    """The environment of a shell where the virtual environment is not activated."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and Path(p).resolve() != BIN.resolve())
    return {**os.environ, "PATH": path or os.defpath, "COLUMNS": "200"}


def demo(*args: str, cwd: Path, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callmetrics", "demo", "--scale", "0", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300, check=False,
                          env=env or without_venv_path())


def next_commands(out: str) -> list[str]:
    lines = out.splitlines()
    start = lines.index("Try next:")
    return [line.strip().split("   #")[0] for line in lines[start + 1:] if line.startswith("  ")]


def test_demo_writes_report_and_store_and_the_next_commands_run(tmp_path: Path) -> None:
    """After the README's install (venv not activated) each printed command runs as printed."""
    result = demo("--dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out"
    assert f"HTML report: {folder / REPORT_NAME}" in result.stdout
    assert f"Store: {folder / 'demo.db'}" in result.stdout
    assert (folder / REPORT_NAME).is_file()
    (run,) = list_runs(folder / "demo.db")
    assert run.closed
    assert run.calls > 700
    commands = next_commands(result.stdout)
    assert [c.split()[1] for c in commands] == ["runs", "stats", "report", "demo"]
    env = without_venv_path()
    for command in commands[:3]:
        argv = shlex.split(command)
        assert argv[0] != "callmetrics"  # not on this PATH: the printed form must say where
        done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              check=False, env=env)
        assert done.returncode == 0, (command, done.stderr)
    assert (folder / "report.html").is_file()
    # The suggested second run, then the diff it leads to.
    again = subprocess.run([*shlex.split(commands[3])[:-2], "--scale", "0",
                            *shlex.split(commands[3])[-2:]], capture_output=True, text=True,
                           cwd=tmp_path, timeout=300, check=False, env=env)
    assert again.returncode == 0, again.stderr
    diff = next(c for c in next_commands(again.stdout) if " diff " in c)
    done = subprocess.run(shlex.split(diff), capture_output=True, text=True, cwd=tmp_path,
                          timeout=120, check=False, env=env)
    assert done.returncode in (0, 1), done.stderr
    assert done.stdout.startswith("Base: run 1; head: run 2")


def test_demo_without_a_folder_uses_a_new_temporary_one(tmp_path: Path) -> None:
    """Without --dir the report and the store land together in a fresh temporary folder."""
    result = demo(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = Path(next(line for line in result.stdout.splitlines()
                       if line.startswith("HTML report: ")).split(": ", 1)[1])
    store = Path(next(line for line in result.stdout.splitlines()
                      if line.startswith("Store: ")).split(": ", 1)[1])
    try:
        assert report.name == REPORT_NAME
        assert report.parent == store.parent
        assert report.parent.name.startswith("callmetrics-demo-")
        assert report.is_file()
        assert store.is_file()
        assert list(tmp_path.iterdir()) == []  # nothing left in the working folder
    finally:
        for leftover in report.parent.iterdir():
            leftover.unlink()
        report.parent.rmdir()


def test_the_prefix_is_plain_callmetrics_when_it_is_on_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the venv activated (its bin on PATH) the commands read `callmetrics ...`."""
    if not (BIN / "callmetrics").is_file():
        pytest.skip("callmetrics is not installed next to this interpreter")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert command_prefix() == "callmetrics"
    monkeypatch.setenv("PATH", without_venv_path()["PATH"])
    assert shlex.split(command_prefix()) == [str(BIN / "callmetrics")] or \
        Path(shlex.split(command_prefix())[0]).resolve() == (BIN / "callmetrics").resolve()


def test_the_prefix_falls_back_to_python_dash_m(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """Without a callmetrics script beside the interpreter: `<python> -m callmetrics`."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    assert shlex.split(command_prefix()) == [str(tmp_path / "python3"), "-m", "callmetrics"]


def test_demo_with_store_records_there(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`demo --store PATH` records into that store; the report stays in the folder."""
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "mine.db"
    assert main(["demo", "--scale", "0", "--store", str(store), "--dir", "d"]) == 0
    out = capsys.readouterr().out
    assert f"Store: {store}" in out
    assert "report mine.db -o d/report.html" in out
    assert (tmp_path / "d" / REPORT_NAME).is_file()
    assert not (tmp_path / "d" / "demo.db").exists()
    (run,) = list_runs(store)
    assert run.calls > 0


def test_demo_refuses_a_store_that_is_not_one(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`demo --store` with a foreign file exits 2 in one line before running, file intact."""
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--scale", "0", "--store", str(other)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "not a callmetrics store" in err
    assert other.read_text() == "hello"


def test_demo_says_when_the_store_could_not_be_written(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`demo --store` under a path that cannot be created runs, then exits 2 saying so."""
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["demo", "--scale", "0", "--dir", "d", "--store",
                 str(blocker / "demo.db")]) == 2
    assert "could not write the store" in capsys.readouterr().err


def test_demo_refuses_a_folder_it_cannot_create(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`demo --dir missing/parent/x` exits 2 in one line: only the folder itself is created."""
    assert main(["demo", "--scale", "0", "--dir", str(tmp_path / "no" / "such")]) == 2
    assert "cannot create the folder" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_demo_logs_to_stderr_in_iso_time_and_json_to_stdout(tmp_path: Path) -> None:
    """Piped: stdout is the data (JSON with --json); logs are plain ISO 8601 lines on stderr."""
    env = {**without_venv_path(), "COLUMNS": "40"}
    result = demo("--dir", "out", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert data["report"].endswith(REPORT_NAME)
    assert data["totals"]["calls"] > 700
    assert data["errors"][0]["template"] == "upstream refused user <n>"
    logs = [line for line in result.stderr.splitlines() if line]
    assert logs
    iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d (INFO|WARNING|ERROR) ")
    assert all(iso.match(line) for line in logs), logs[:3]
    assert any(len(line) > 40 for line in logs)  # one line per record, never wrapped
