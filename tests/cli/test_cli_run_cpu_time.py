"""`callmetrics run --cpu-time`, `[tool.callmetrics] cpu-time`, `--callmetrics-cpu-time`."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from callmetrics import load
from callmetrics._cli.run import _settings

PROGRAM = """
import time

def spin():
    began = time.thread_time()
    x = 0
    while time.thread_time() - began < 0.01:
        x += 1

def work():
    spin()
    time.sleep(0.05)

for _ in range(3):
    work()
"""


def _python(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("CALLMETRICS_RUN_LABEL", None)
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120, check=False)


def _cpu(store: Path) -> dict[str, float | None]:
    return {s.name: s.cpu_time for s in load(store).snapshot()}


def test_cpu_time_is_measured_stored_and_shown(tmp_path: Path) -> None:
    """--cpu-time: each function's CPU time in the summary, the store and ``stats --json``."""
    (tmp_path / "prog.py").write_text(textwrap.dedent(PROGRAM))
    store = tmp_path / "runs.db"
    done = _python("-m", "callmetrics", "run", "--cpu-time", "--exact", "--no-report",
                   "--store", store, "prog.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "CPU (thread)" in done.stderr
    cpu = _cpu(store)
    durations = {s.name: s.total for s in load(store).snapshot()}
    work, spin = cpu["work"], cpu["spin"]
    assert work is not None
    assert spin is not None
    assert 0.03 <= spin <= work  # three spins of 10 ms of CPU each, inside work
    assert work < durations["work"] / 2  # the sleeps are not CPU time
    stats = _python("-m", "callmetrics", "stats", "--json", store, cwd=tmp_path)
    data = json.loads(stats.stdout)
    assert {f["name"]: f["cpu_time"] for f in data["functions"]} == cpu
    table = _python("-m", "callmetrics", "stats", store, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "CPU (thread)" in table.stdout
    plain = _python("-m", "callmetrics", "run", "--no-report", "--store", tmp_path / "plain.db",
                    "prog.py", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "CPU" not in plain.stderr
    assert set(_cpu(tmp_path / "plain.db").values()) == {None}


def test_pyproject_sets_it_and_a_bad_value_fails_before_the_program(tmp_path: Path) -> None:
    """``cpu-time = true`` measures; ``cpu-time = "yes"`` is refused, naming the file and field."""
    (tmp_path / "prog.py").write_text(textwrap.dedent(PROGRAM) + "print('ran')\n")
    config = tmp_path / "pyproject.toml"
    config.write_text("[tool.callmetrics]\ncpu-time = true\nreport = ''\n")
    store = tmp_path / "runs.db"
    done = _python("-m", "callmetrics", "run", "--store", store, "prog.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _cpu(store)["work"] is not None
    config.write_text("[tool.callmetrics]\ncpu-time = 'yes'\n")
    bad = _python("-m", "callmetrics", "run", "prog.py", cwd=tmp_path)
    assert bad.returncode == 2
    assert "cpu-time" in bad.stderr
    assert str(config) in bad.stderr
    assert bad.stdout == ""  # the program never started


def test_the_pytest_plugin_measures_each_test(tmp_path: Path) -> None:
    """``--callmetrics=STORE --callmetrics-cpu-time``: each test's thread CPU time is stored."""
    (tmp_path / "test_spin.py").write_text(textwrap.dedent("""
        import time

        def test_spin():
            began = time.thread_time()
            while time.thread_time() - began < 0.02:
                pass

        def test_sleep():
            time.sleep(0.05)
    """))
    store = tmp_path / "runs.db"
    done = _python("-m", "pytest", "-q", "-p", "no:cacheprovider", f"--callmetrics={store}",
                   "--callmetrics-cpu-time", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    cpu = _cpu(store)
    spin, sleep = cpu["test_spin.py::test_spin"], cpu["test_spin.py::test_sleep"]
    assert spin is not None
    assert sleep is not None
    assert spin >= 0.02
    assert sleep < 0.02


def test_the_instance_settings_keep_a_zero_limit_beside_cpu_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--max-events 0`` (keep every call) is a setting too, not a missing one."""
    monkeypatch.chdir(tmp_path)  # no pyproject.toml here or above
    args = argparse.Namespace(max_events=0, max_functions=None, cpu_time=True,
                              no_report=True, report=None)
    assert _settings(args) == {"max_events": 0, "cpu_time": True}
    args = argparse.Namespace(max_events=None, max_functions=5, cpu_time=False,
                              no_report=True, report=None)
    assert _settings(args) == {"max_functions": 5}
