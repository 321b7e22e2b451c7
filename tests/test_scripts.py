"""`bash scripts/test`: waits for the apt lock; runs the tests when a tool cannot be installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# apt-get that fails as a held lock makes it fail (exit 100), noting its arguments.
FAILING_APT = """#!/bin/bash
echo "$@" >> "$(dirname "$0")/apt-calls"
echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2
exit 100
"""
# The repository's venv python: notes what it was asked to run.
PYTHON = """#!/bin/bash
echo "$@" >> "$(dirname "$0")/python-calls"
"""


def _fake_repo(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "test", repo / "scripts" / "test")
    venv_bin = repo / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text(PYTHON)
    (venv_bin / "python").chmod(0o755)
    tools = tmp_path / "bin"  # no chromium, prometheus... on this PATH
    tools.mkdir()
    (tools / "apt-get").write_text(FAILING_APT)
    (tools / "apt-get").chmod(0o755)
    (tools / "sudo").write_text('#!/bin/bash\nexec "$@"\n')  # when not run as root
    (tools / "sudo").chmod(0o755)
    for name in ("id", "dirname"):
        found = shutil.which(name)
        assert found is not None
        (tools / name).symlink_to(found)
    return repo, tools


def _run(repo: Path, tools: Path, ci: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": str(tools), "CI": ci, "CALLMETRICS_APT_LOCK_TIMEOUT": "7"}
    return subprocess.run([shutil.which("bash") or "/bin/bash", "scripts/test", "-q"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_apt_waits_for_its_lock_and_the_tests_still_run(tmp_path: Path) -> None:
    """apt-get is told to wait for the lock; when it still fails, pytest runs anyway."""
    repo, tools = _fake_repo(tmp_path)
    proc = _run(repo, tools, ci="")
    assert proc.returncode == 0, proc.stderr
    assert "DPkg::Lock::Timeout=7" in (tools / "apt-calls").read_text()
    assert "running the tests, those needing them skip" in proc.stderr
    assert "-m pytest -q" in (repo / ".venv" / "bin" / "python-calls").read_text()


def test_under_ci_a_tool_that_cannot_be_installed_fails_loudly(tmp_path: Path) -> None:
    """CI=true: no test run with parts missing; the script exits non-zero saying why."""
    repo, tools = _fake_repo(tmp_path)
    proc = _run(repo, tools, ci="true")
    assert proc.returncode != 0
    assert "FAILED to install" in proc.stderr
    calls = repo / ".venv" / "bin" / "python-calls"
    assert not calls.exists() or "pytest" not in calls.read_text()
