"""The README agrees with the API: its snippets run, its key lists and file names are real."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

import pytest

from callmetrics import Analytics
from callmetrics._cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", TEXT, re.DOTALL)


def listed(bullet: str) -> list[str]:
    """The backquoted names of one bullet of the README's JSON-shape list (``- `totals`: ...``)."""
    found = re.search(rf"^- `{bullet}`: (.*?)(?=^- |\Z)", TEXT, re.MULTILINE | re.DOTALL)
    assert found is not None, bullet
    text = re.sub(r"\([^)]*\)", "", found.group(1))  # asides name sub-keys and examples
    return re.findall(r"`([a-z_0-9]+)`", text)


@pytest.mark.parametrize("block", blocks("python"), ids=lambda b: b.splitlines()[0][:40])
def test_every_python_snippet_compiles(block: str) -> None:
    """Each Python snippet is valid Python (fragments may await, as in a coroutine)."""
    compile(block, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_the_first_example_runs_and_writes_the_file_it_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The opening snippet runs; its report lands where its comment says."""
    monkeypatch.chdir(tmp_path)
    first = blocks("python")[0]
    namespace: dict[str, Any] = {}
    exec(compile(first, "README.md", "exec"), namespace)  # noqa: S102  # our own README's snippet
    asyncio.run(namespace["fetch_user"](1))
    namespace["query_orders"](1)
    written = namespace["analytics"].generate_reports()
    comment = re.search(r"generate_reports\(\)\s+# (\S+)", first)
    assert comment is not None
    assert written == Path(comment.group(1))
    assert written.is_file()


def test_the_stats_shape_lists_the_keys_to_dict_has() -> None:
    """The README's `totals`, `errors` and event keys are exactly those of to_dict()."""
    analytics = Analytics()
    boom = analytics.track("io", name="boom")(lambda: 1 / 0)
    with contextlib.suppress(ZeroDivisionError):
        boom()
    shape = analytics.to_dict()
    assert listed("totals") == list(shape["totals"])
    assert listed("errors") == list(shape["errors"][0])
    event = re.search(r"an event \(`slowest`, `fastest`\) is `\{([^}]*)\}`",
                      TEXT.replace("\n", " "))
    assert event is not None
    assert [k.strip() for k in event.group(1).split(",")] == list(shape["totals"]["slowest"])
    per_function = set(shape["functions"][0])
    assert per_function == (set(shape["totals"]) - {"function_count", "event_count", "wall_time"}
                            | {"name", "event_type", "module", "overhead", "inclusive_time",
                               "active_time", "callers", "failures_by_type"})
    assert shape["functions"][0]["failures_by_type"] == {"ZeroDivisionError": 1}
    assert "`failures_by_type`" in TEXT


def test_the_get_stats_keys_named_are_those_it_returns() -> None:
    """The README's list of get_stats() keys is the real one, and says there is no failure count."""
    found = re.search(r"`get_stats\(function_filter=None\)`(.*?)it has no failure count",
                      TEXT, re.DOTALL)
    assert found is not None
    named = re.findall(r"`([a-z_0-9]+)`", re.sub(r"\([^)]*\)", "", found.group(1)))
    assert sorted(named) == sorted(Analytics().get_stats())


def test_the_demo_writes_the_files_the_readme_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's first-run listing is what the demo prints, folder and prefix aside."""
    import callmetrics._cli.demo as cli_demo  # noqa: PLC0415  # patched below

    shown = re.search(r"```text\n(HTML report: .*?)```", TEXT, re.DOTALL)
    assert shown is not None
    expected = shown.group(1).splitlines()
    folder = re.search(r"HTML report: (\S+)/analytics_full\.html", expected[0])
    assert folder is not None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_demo, "command_prefix", lambda: ".venv/bin/callmetrics")
    assert main(["demo", "--scale", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("HTML report: "))
    printed = out[start:start + len(expected)]
    real = Path(printed[0].split(": ", 1)[1]).parent
    try:
        assert [line.replace(str(real), folder.group(1)) for line in printed] == expected
    finally:
        for leftover in real.iterdir():
            leftover.unlink()
        real.rmdir()
    assert cli_demo.REPORT_NAME == "analytics_full.html"
    assert "`analytics_full.html` and the SQLite store `demo.db`" in TEXT.replace("\n", " ")
