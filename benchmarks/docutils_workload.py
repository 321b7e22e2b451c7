"""A real program for ``run_cost.py``: docutils converting its own documentation to HTML.

Run: ``python benchmarks/docutils_workload.py DOCS_FOLDER [N]``: converts the first N
(default all) ``.rst`` files under DOCS_FOLDER (docutils' ``docs/`` from its sdist),
then prints the work's wall and CPU seconds on the last line, as ``cpu_workload.py``
does.  Conversion problems are reported by docutils itself and left alone (some
documents include files the sdist lays out elsewhere).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from docutils.core import publish_string


def convert(paths: list[Path]) -> int:
    """Convert each document to HTML; return the bytes written."""
    total = 0
    for path in paths:
        html = publish_string(path.read_text(encoding="utf-8"), source_path=str(path),
                              writer_name="html",
                              settings_overrides={"report_level": 5, "halt_level": 5,
                                                  "warning_stream": False})
        total += len(html)
    return total


def main() -> None:
    """Time the conversion."""
    folder = Path(sys.argv[1])
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # argv[2] is N
    paths = sorted(folder.rglob("*.rst"))
    paths = paths[:limit] if limit else paths
    began, cpu = time.perf_counter(), time.process_time()
    written = convert(paths)
    print(f"{len(paths)} documents, {written:,} bytes of HTML", file=sys.stderr)
    print(f"{time.perf_counter() - began:.6f} {time.process_time() - cpu:.6f}")


if __name__ == "__main__":
    main()
