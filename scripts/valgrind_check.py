"""Run a command under valgrind's memcheck and fail on errors in callmetrics' C code.

Usage: ``python scripts/valgrind_check.py -- python -m pytest tests/engine/test_accel.py``

CPython itself leaves blocks allocated at exit and trips memcheck in places that are
not ours, so rather than keep a suppressions file per interpreter build, this keeps
the errors whose stack goes through ``_speedups`` (our extension): invalid reads and
writes, invalid frees, uses of uninitialised values and definitely lost blocks.  Any
of those fails the run; everything else is summarised.  The command runs with
``PYTHONMALLOC=malloc`` so that every object is a separate malloc block memcheck sees.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OURS = "_speedups"
SERIOUS = ("Invalid read", "Invalid write", "Invalid free", "Mismatched free",
           "uninitialised", "definitely lost", "Source and destination overlap")
_PREFIX = re.compile(r"^==\d+== ?")


def error_blocks(log: str) -> list[str]:
    """Split a memcheck log into its reports (blank-line separated, prefixes removed)."""
    blocks: list[str] = []
    current: list[str] = []
    for raw in log.splitlines():
        line = _PREFIX.sub("", raw)
        if not line.strip():
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


_EVAL = "_PyEval_EvalFrameDefault"  # the interpreter running Python code


def _in_our_code(stack: str) -> bool:
    """Whether a stack reaches our extension before any Python code.

    Python code that our extension calls back (the engine's drain, a logging
    handler) runs with ``_speedups`` further down its stack; an error in that
    Python code (the interpreter trips memcheck in places of its own) is not ours.
    """
    ours_at = stack.find(OURS)
    if ours_at < 0:
        return False
    eval_at = stack.find(_EVAL)
    return eval_at < 0 or ours_at < eval_at


def ours(blocks: list[str]) -> list[str]:
    """Return the serious reports of our extension's own code (or the API it calls).

    A report is ours when the stack where it happened, or the stack that created the
    uninitialised value or the lost block, reaches ``_speedups`` before any Python
    code runs.
    """
    found = []
    for block in blocks:
        if not any(kind in block for kind in SERIOUS):
            continue
        where, _, origin = block.partition("Uninitialised value was created")
        if _in_our_code(where) or _in_our_code(origin):
            found.append(block)
    return found


def main(argv: list[str]) -> int:
    """Run the command after ``--`` under memcheck; return 1 on an error in our code."""
    if "--" not in argv:
        print(__doc__)
        return 2
    command = argv[argv.index("--") + 1:]
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind_check: valgrind is not installed (apt-get install valgrind)")
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / "memcheck.log"
        env = {**os.environ, "PYTHONMALLOC": "malloc"}
        done = subprocess.run(  # noqa: S603  # our own fixed command line
            [valgrind, "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite",
             "--errors-for-leak-kinds=definite", "--num-callers=30", "--track-origins=yes",
             f"--log-file={log_path}", *command],
            env=env, check=False)
        log = log_path.read_text(encoding="utf-8", errors="replace")
    blocks = error_blocks(log)
    found = ours(blocks)
    summary = [b for b in blocks if b.startswith(("ERROR SUMMARY", "definitely lost"))]
    for line in summary:
        print(f"valgrind_check: (whole process) {line.splitlines()[0]}")
    if done.returncode != 0:
        print(f"valgrind_check: the command failed under valgrind ({done.returncode})")
        return done.returncode
    if found:
        for block in found:
            print(block, end="\n\n")
        print(f"valgrind_check: {len(found)} memory error(s) in callmetrics' C code")
        return 1
    print("valgrind_check: no invalid access, uninitialised use or definite leak in "
          "callmetrics' C code")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
