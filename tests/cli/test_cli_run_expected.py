"""``callmetrics run --expected EXC``: exceptions used as control flow count as successes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from callmetrics import load

PROGRAM = """
class Skip(LookupError):
    pass

def probe(items, value):
    return items.index(value)   # ValueError when absent: a probe

def visit(i):
    if i % 2:
        raise Skip(i)           # control flow, as docutils' SkipNode

def broken():
    raise RuntimeError("a real failure")

for i in range(6):
    try:
        probe([1, 2, 3], i)
    except ValueError:
        pass
    try:
        visit(i)
    except LookupError:
        pass
try:
    broken()
except RuntimeError:
    pass
"""


def test_expected_exceptions_of_a_run_count_as_successes(tmp_path: Path) -> None:
    """By plain name and by module.Class (and its subclasses); others still fail."""
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(PROGRAM))
    store = tmp_path / "runs.db"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "callmetrics", "run", "--expected", "ValueError",
         "--expected", "builtins.LookupError", "--store", str(store), "--report", "",
         str(script)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
        check=False)
    assert proc.returncode == 0, proc.stderr
    view = load(store)
    assert view.call_counts == {"probe": 6, "visit": 6, "broken": 1}
    assert view.success_counts == {"probe": 6, "visit": 6, "broken": 0}
    notes = {e.message for e in view.events if e.function != "broken"}
    assert notes == {None, "expected ValueError", "expected Skip"}
