"""The store commands: report, stats, runs and prune (diff and demo have their own files)."""

from __future__ import annotations

import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from callmetrics import Analytics, load
from callmetrics._cli import main
from callmetrics._cli.common import parse_span
from callmetrics._store.runs import list_runs
from store_helpers import record_calls

WRITER = textwrap.dedent("""
    import sys
    from callmetrics import Analytics

    with Analytics(store=sys.argv[1]) as analytics:
        @analytics.track("API call")
        def fetch_user(i):
            if i % 10 == 0:
                raise ConnectionError(i)
            return i

        @analytics.track("CPU")
        def render(n):
            return sum(range(n))

        for i in range(200):
            try:
                fetch_user(i)
            except ConnectionError:
                pass
            render(i * 50)
""")


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "callmetrics", *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=cwd, env=env)


@pytest.fixture
def written(tmp_path: Path) -> Path:
    """A store written by a separate Python process."""
    store = tmp_path / "app.db"
    result = subprocess.run([sys.executable, "-c", WRITER, str(store)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return store


# -------------------------------------------------------------- other processes
def test_report_of_a_store_written_by_another_process(written: Path, tmp_path: Path) -> None:
    """`python -m callmetrics report` writes the HTML report of another process's run."""
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "report.html"
    result = _cli("report", str(written), "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert str(target.resolve()) in result.stdout
    html = target.read_text(encoding="utf-8")
    assert "render" in html
    assert "fetch_user" in html


def test_report_defaults_to_the_stores_name_in_the_current_directory(written: Path,
                                                                    tmp_path: Path) -> None:
    """Without -o the report is STORE-report.html in the working directory."""
    work = tmp_path / "cwd"
    work.mkdir()
    result = _cli("report", str(written), cwd=work)
    assert result.returncode == 0, result.stderr
    assert (work / "app-report.html").is_file()


def test_stats_json_is_the_to_dict_shape_of_the_store(written: Path) -> None:
    """`stats --json` prints the view's to_dict(), parsed by scripts."""
    result = _cli("stats", str(written), "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    expected = load(written).to_dict()
    printed.pop("generated_at")
    expected.pop("generated_at")
    # The environment is that of the process printing it (argv and pid differ).
    assert set(printed.pop("environment")) == set(expected.pop("environment"))
    assert printed == expected
    assert printed["totals"]["calls"] == 400


def test_stats_table_and_function_filter(written: Path) -> None:
    """`stats` prints the summary table; --function narrows it to the named functions."""
    every = _cli("stats", str(written))
    assert every.returncode == 0, every.stderr
    assert "fetch_user" in every.stdout
    assert "render" in every.stdout
    one = _cli("stats", str(written), "--function", "render", "--json")
    data = json.loads(one.stdout)
    assert [f["name"] for f in data["functions"]] == ["render"]
    assert data["totals"]["calls"] == 200


def test_stats_says_why_calls_failed(written: Path) -> None:
    """Below the table, the failures grouped by cause: exception, message template, where.

    The store's 20 failures each have their own message (``ConnectionError(i)``) from
    one line of code: one cause, its ids masked; --json holds the examples too.
    """
    result = _cli("stats", str(written))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Failures"))
    assert lines[start].startswith("Failures among the retained calls (20) in 1 group by cause")
    assert lines[start + 1].split() == ["Count", "Exception", "Message", "Function", "Last",
                                        "Raised", "at"]
    row = lines[start + 3]
    assert row.split()[:4] == ["20", "ConnectionError", "<n>", "fetch_user"]
    assert row.endswith(" in fetch_user")
    assert re.search(r" \d\d:\d\d:\d\d\.\d{3} ", row)
    (error,) = json.loads(_cli("stats", str(written), "--json").stdout)["errors"]
    assert error["count"] == 20
    assert error["message"] == "190"
    assert error["examples"] == ["190", "180", "170"]
    assert error["location"].endswith(" in fetch_user")
    quiet = _cli("stats", str(written), "--function", "render")
    assert "Failures" not in quiet.stdout


# ----------------------------------------------------------------------- in-process
def test_runs_lists_newest_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs` prints one line per run, newest first, with label and calls."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 3, label="before")
    record_calls(store, "a", 1234, label="after")
    assert main(["runs", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "Label", "Started", "Last", "write", "State", "Host",
                                "PID", "Calls", "Functions", "Retained", "Python", "Hot", "path",
                                "Program"]
    assert lines[2].split()[1:2] == ["after"]  # under the header's rule
    assert "1,234" in lines[2]
    assert "closed" in lines[2]
    assert "before" in lines[3]
    assert main(["runs", str(store), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [(r["label"], r["calls"]) for r in runs] == [("after", 1234), ("before", 3)]


def test_runs_show_what_each_run_ran_on(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Python, platform, hot path, argv, host and label are kept with each run and shown.

    A run written before stores kept them (NULL) shows as unknown, never as this process.
    """
    store = tmp_path / "runs.db"
    record_calls(store, "a", 3, label="old")
    record_calls(store, "a", 4, label="new")
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE runs SET environment = NULL WHERE label = 'old'")
    conn.close()
    python = f"{platform.python_implementation()} {platform.python_version()}"
    assert main(["runs", str(store), "--json"]) == 0
    new, old = json.loads(capsys.readouterr().out)
    assert old["environment"] is None
    assert new["environment"]["python"] == python
    assert new["environment"]["label"] == "new"
    assert new["environment"]["hot_path"].startswith(("C accelerator", "pure Python"))
    # The program and how many arguments it had, never the arguments themselves.
    assert new["environment"]["argv"].startswith(new["program"])
    assert not any(len(arg) > 4 and arg in new["environment"]["argv"] for arg in sys.argv[1:])
    assert set(new["environment"]) == {"python", "platform", "hot_path", "argv", "host", "pid",
                                       "label"}
    assert main(["runs", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert python in lines[2]
    assert "unknown" in lines[3]
    target = tmp_path / "r.html"
    assert main(["report", str(store), "-o", str(target)]) == 0
    html = target.read_text(encoding="utf-8")
    rows = re.findall(r"<tr><td data-v=.*?</tr>", html)
    assert python in rows[1]  # by run id
    assert "unknown" in rows[0]
    block = html[html.index('id="environment"'):]
    block = block[:block.index("</details>")]
    assert f"<dd>unknown; {python}</dd>" in block  # the runs differ: both values


def test_runs_of_an_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs` of a store without runs says so and succeeds."""
    store = tmp_path / "runs.db"
    Analytics(store=store).close()
    assert main(["runs", str(store)]) == 0
    assert capsys.readouterr().out.startswith("No runs recorded")


def test_prune_deletes_by_age(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`prune --older-than` keeps recent runs and deletes runs older than the span."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 5)
    assert main(["prune", str(store), "--older-than", "30d"]) == 0
    assert "Pruned 0 run(s)" in capsys.readouterr().out
    assert len(list_runs(store)) == 1
    assert main(["prune", str(store), "--older-than", "0s", "--vacuum", "--yes"]) == 0
    assert "Pruned 1 run(s)" in capsys.readouterr().out
    assert list_runs(store) == []


def test_prune_says_what_would_go_and_never_empties_a_store_unasked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run deletes nothing; every run going needs --yes off a terminal; no bare 'm'."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 5, label="kept")
    assert main(["prune", str(store), "--older-than", "0s", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Would delete 1 of 1 run(s)")
    assert "kept" in out
    assert main(["prune", str(store), "--older-than", "0s", "--dry-run", "--json"]) == 0
    assert [r["label"] for r in json.loads(capsys.readouterr().out)["runs"]] == ["kept"]
    assert main(["prune", str(store), "--older-than", "0s"]) == 2  # stdin is not a terminal
    assert "add --yes" in capsys.readouterr().err
    assert len(list_runs(store)) == 1
    with pytest.raises(SystemExit):
        main(["prune", str(store), "--older-than", "1m"])
    assert "ambiguous" in capsys.readouterr().err
    assert main(["prune", str(store), "--older-than", "90min", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs_deleted"] == 0


def test_report_prints_what_it_wrote_as_json(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """With --json, report prints the file, its runs and calls; the page lists the runs."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 5, label="one")
    target = tmp_path / "r.html"
    assert main(["report", str(store), "-o", str(target), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["report"] == str(target.resolve())
    assert written["calls"] == 5
    assert len(written["runs"]) == 1
    html = target.read_text(encoding="utf-8")
    assert 'id="run-table"' in html
    assert ">one<" in html


def test_report_selects_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`report --run/--label/--since` reports only the chosen runs."""
    store = tmp_path / "runs.db"
    record_calls(store, "only_in_first", 3, label="one")
    record_calls(store, "only_in_second", 3, label="two")
    target = tmp_path / "r.html"
    assert main(["report", str(store), "-o", str(target), "--label", "two",
                 "--since", "1h"]) == 0
    html = target.read_text(encoding="utf-8")
    assert "only_in_second" in html
    assert "only_in_first" not in html
    first = min(r.id for r in list_runs(store))
    assert main(["report", str(store), "-o", str(target), "--run", str(first)]) == 0
    assert "only_in_first" in target.read_text(encoding="utf-8")
    both = [str(r.id) for r in list_runs(store)]
    assert main(["report", str(store), "-o", str(target), "--run", *both]) == 0  # --run ID ...
    assert "only_in_second" in target.read_text(encoding="utf-8")
    assert "only_in_first" in target.read_text(encoding="utf-8")


# --------------------------------------------------------------------- user errors
def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    return err


@pytest.mark.parametrize("command", [
    ["report"], ["stats"], ["runs"], ["diff", "--base", "1", "--head", "1"],
    ["prune", "--older-than", "1d"],
])
def test_missing_store_is_one_line_and_exit_2(tmp_path: Path, command: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Every command given a missing file exits 2 with one line naming it."""
    missing = tmp_path / "nope.db"
    assert main([command[0], str(missing), *command[1:]]) == 2
    assert f"no such store: {missing}" in _error_line(capsys)
    assert not missing.exists()


def test_a_foreign_file_is_one_line_and_exit_2(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not a store is refused in one line, exit 2, and left as it was."""
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    for command in (["stats"], ["runs"], ["prune", "--older-than", "1d"]):
        assert main([command[0], str(other), *command[1:]]) == 2
        assert "not a callmetrics store" in _error_line(capsys)
    assert other.read_text() == "hello"


@pytest.mark.parametrize(("args", "message"), [
    (["prune", "S", "--older-than", "soon"], "expected a span like 30d"),
    (["prune", "S", "--older-than", "999999999999w"], "too long"),
    (["report", "S", "--since", "9999999999d"], "expected a span like 2d"),
    (["prune", "S"], "--older-than"),
    (["report", "S", "--run", "x"], "expected a run id"),
    (["report", "S", "--since", "yesterday"], "expected a span like 2d"),
    (["stats"], "STORE"),
])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Malformed arguments exit 2 with one line that names the problem."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in _error_line(capsys)


def test_selection_errors_are_one_line_and_exit_2(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown runs, labels, functions and empty selections exit 2 with one line."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 2, label="x")
    assert main(["report", str(store), "--run", "99"]) == 2
    assert "no run 99" in _error_line(capsys)
    assert main(["diff", str(store), "--base", "nope", "--head", "x"]) == 2
    assert "no run with id or label 'nope'" in _error_line(capsys)
    assert main(["stats", str(store), "--function", "b"]) == 2
    assert "no function 'b'" in _error_line(capsys)
    assert main(["report", str(store), "--label", "y", "-o", str(tmp_path / "r.html")]) == 2
    assert "no run of" in _error_line(capsys)


@pytest.mark.parametrize("selection", [
    ["--run", "99"], ["--label", "nope"], ["--since", "2000-01-01", "--label", "nope"],
    ["--run", "1", "--label", "nope"],
])
@pytest.mark.parametrize("command", ["stats", "report"])
def test_an_empty_selection_is_exit_2_whatever_chose_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
        selection: list[str]) -> None:
    """A selection matching no run exits 2 with one line, by id, label or date alike."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 2, label="x")
    assert main([command, str(store), *selection, *(
        ["-o", str(tmp_path / "r.html")] if command == "report" else [])]) == 2
    line = _error_line(capsys)
    assert "no run" in line
    assert str(store) in line
    assert not (tmp_path / "r.html").exists()


def test_a_selection_past_every_run_says_what_it_asked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--since after the last write names the date and the label it could not match."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 2, label="x")
    assert main(["stats", str(store), "--since", "2999-01-01", "--label", "x"]) == 2
    line = _error_line(capsys)
    assert "label 'x'" in line
    assert "written since 2999-01-01" in line


def test_stats_of_a_store_without_runs_succeeds(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """No runs at all (and no filter) is not an error: the summary says no calls."""
    store = tmp_path / "runs.db"
    Analytics(store=store).close()
    assert main(["stats", str(store)]) == 0
    assert "no calls recorded" in capsys.readouterr().out


def test_report_never_creates_folders(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`report -o missing/dir/r.html` exits 2 in one line and creates nothing."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 2)
    target = tmp_path / "nonexistent" / "dir" / "r.html"
    assert main(["report", str(store), "-o", str(target)]) == 2
    line = _error_line(capsys)
    assert line.count("cannot write") == 1
    assert f"no folder {target.parent}" in line
    assert not (tmp_path / "nonexistent").exists()


def test_an_unwritable_report_is_worded_once(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A report that cannot be written says "cannot write" once, with the reason."""
    store = tmp_path / "runs.db"
    record_calls(store, "a", 2)
    target = tmp_path / "taken"
    target.mkdir()  # a folder where the file should go: renaming over it fails
    assert main(["report", str(store), "-o", str(target)]) == 2
    line = _error_line(capsys)
    assert line.count("cannot write") == 1, line
    assert str(target) in line


@pytest.mark.parametrize("command", ["report", "stats", "runs", "diff", "prune",
                                     "serve-metrics"])
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`callmetrics COMMAND --help` describes the command and exits 0."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "STORE" in capsys.readouterr().out


def test_spans_parse_in_every_unit() -> None:
    """Spans accept s, m, h, d and w, with decimals."""
    assert parse_span("45s").total_seconds() == 45
    assert parse_span("1.5h").total_seconds() == 5400
    assert parse_span("30d").days == 30
    assert parse_span("2W").days == 14
