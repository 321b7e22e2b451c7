"""The README's CLI lines name real commands and options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from callmetrics._cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[str]:
    """Every `callmetrics ...` line of the README's sh blocks, optional parts unbracketed."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```(?:sh|yaml)\n(.*?)```", text, re.DOTALL):
        for raw in block.splitlines():
            line = raw.split("#")[0].strip().removeprefix("- run: ")
            line = line.replace(".venv/bin/callmetrics", "callmetrics")
            if line.startswith("callmetrics "):
                line = re.sub(r"\[([^\]]*)\]", r"\1", line).replace(" ...", "")
                found.append(line.replace("--run ID", "--run 1"))
    return found


@pytest.mark.parametrize("command", readme_commands())
def test_each_readme_command_parses(command: str) -> None:
    """Each command line in the README is accepted by the parser as written."""
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.handler)


def test_the_readme_shows_every_command() -> None:
    """The README shows each store command at least once."""
    shown = {shlex.split(c)[1] for c in readme_commands()}
    assert {"demo", "runs", "stats", "report", "diff", "prune", "serve-metrics"} <= shown
