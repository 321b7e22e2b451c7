"""The README's code examples, found by their first line, and run as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example(first_line: str,
                   section: str = "### A server with several worker processes") -> str:
    """Return the python block of the README ``section`` that starts with ``first_line``."""
    text = README.read_text(encoding="utf-8")
    part = text[text.index(section + "\n") + len(section):]
    later = re.search(r"^#{2,3} ", part, re.MULTILINE)  # the next section
    part = part[:later.start()] if later else part
    found = re.search(r"```python\n(" + re.escape(first_line) + r".*?)```", part, re.DOTALL)
    assert found, f"the README's example {first_line!r} is gone"
    return found[1]


def printed_as_commented(source: str) -> tuple[list[str], list[str]]:
    """Run a README example; return what it printed and what its comments say it prints.

    Each ``print(...)  # shown`` line promises the line ``shown``.
    """
    promised = [line.split("# ", 1)[1].strip() for line in source.splitlines()
                if line.startswith("print(") and "# " in line]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<README example>", "exec"), {"__name__": "readme_example"})  # noqa: S102  # the README's own example
    return out.getvalue().splitlines(), promised
