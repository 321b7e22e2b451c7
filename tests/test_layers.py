"""The package's layers (``.importlinter``) hold: imports point down, no circle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"


def test_imports_point_down_the_layers_with_no_circle() -> None:
    """``lint-imports`` keeps every contract of .importlinter (layers, engine alone, acyclic)."""
    program = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if program is None:
        if IN_CI:
            pytest.fail("import-linter is not installed (the test extra installs it)")
        pytest.skip("import-linter is not installed (the test extra installs it)")
    done = subprocess.run([program, "--config", str(ROOT / ".importlinter")], cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
