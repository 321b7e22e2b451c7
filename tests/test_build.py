"""Installing the package: the C accelerator is optional at build time.

A real ``pip install`` of a copy of the source into a folder: with the machine's C
compiler the extension is built and used; with a compiler that fails (``CC`` set to
``false``) the install still succeeds, says so in one line, and the package runs on
its pure-Python hot path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
NEEDED = ("src", "setup.py", "pyproject.toml", "README.md", "LICENSE")

USE = """
import callmetrics
from callmetrics import Analytics
analytics = Analytics()
double = analytics.track("unit")(lambda x: 2 * x)
assert [double(i) for i in range(3000)] == [2 * i for i in range(3000)]
assert analytics.call_counts == {"<lambda>": 3000}, analytics.call_counts
print(callmetrics.implementation, callmetrics.__file__)
"""


def _install(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    source = tmp_path / "source"
    source.mkdir()
    for name in NEEDED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, source / name)
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-v", "--no-deps", "--target", str(target),
         str(source)],
        capture_output=True, text=True, timeout=600, check=False, env=env)
    return done, target


def _run(target: Path, tmp_path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("CALLMETRICS_PURE_PYTHON", None)
    done = subprocess.run([sys.executable, "-c", USE], capture_output=True, text=True,
                          timeout=120, check=False, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="no C compiler here")
def test_install_with_a_compiler_builds_and_uses_the_accelerator(tmp_path: Path) -> None:
    env = {**os.environ}
    env.pop("CALLMETRICS_PURE_PYTHON", None)
    done, target = _install(tmp_path, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "C accelerator not built" not in done.stdout + done.stderr
    assert list((target / "callmetrics" / "_engine").glob("_speedups*.so"))
    implementation, location = _run(target, tmp_path).split()
    assert implementation == "c"
    assert location.startswith(str(target))


def test_install_without_a_working_compiler_still_works(tmp_path: Path) -> None:
    env = {**os.environ, "CC": "false"}
    env.pop("CALLMETRICS_PURE_PYTHON", None)
    done, target = _install(tmp_path, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = [line for line in (done.stdout + done.stderr).splitlines()
            if "callmetrics: C accelerator not built" in line]
    assert len(said) == 1, said
    assert "the pure-Python hot path will be used" in said[0]
    assert not list((target / "callmetrics" / "_engine").glob("_speedups*.so"))
    implementation, location = _run(target, tmp_path).split()
    assert implementation == "python"
    assert location.startswith(str(target))
