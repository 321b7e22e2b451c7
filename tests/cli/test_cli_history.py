"""`callmetrics history`: series over the stored runs, their change points, and the gate."""

from __future__ import annotations

import json
import random
import re
import sqlite3
from pathlib import Path

import pytest

from callmetrics._cli import main
from rates_helpers import _write


def write_history(store: Path, series: dict[str, list[float]], *, prefix: str = "build-",
                  calls: int = 30) -> None:
    """One run per position, each function's calls all at its value for that run."""
    runs = len(next(iter(series.values())))
    for i in range(runs):
        _write(store, f"{prefix}{i}", {name: [values[i]] * calls
                                       for name, values in series.items()}, events=False)


def steady(rng: random.Random, n: int, level: float = 1e-3) -> list[float]:
    return [level * rng.lognormvariate(0, 0.02) for _ in range(n)]


def test_history_finds_the_step_at_its_run(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """One function 1.3x slower from the 9th run on: one change point at run 9, its size."""
    store = tmp_path / "runs.db"
    rng = random.Random(1)
    write_history(store, {"crunch": [v * (1.3 if i >= 8 else 1)
                                     for i, v in enumerate(steady(rng, 14))],
                          "parse": steady(rng, 14)})
    assert main(["history", str(store)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("History of 14 runs in ")
    assert "oldest run 1 (build-0), newest run 14 (build-13)" in lines[0]
    crunch = next(line for line in lines if line.startswith("crunch "))
    assert re.search(r"run 9 \(build-8\): 1\.(29|30|31)\u00d7 \[1\.\d\d, 1\.\d\d\], p=", crunch)
    parse = next(line for line in lines if line.startswith("parse "))
    assert parse.rstrip().endswith("-")


def test_history_of_one_function_shows_every_run(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """--function prints the function run by run, its self time when the run recorded it."""
    store = tmp_path / "runs.db"
    rng = random.Random(2)
    write_history(store, {"crunch": steady(rng, 6), "parse": steady(rng, 6)})
    with sqlite3.connect(store) as conn:  # as a run recording attribution writes it
        conn.execute("UPDATE functions SET self_time = total / 2 WHERE run_id >= 4")
    assert main(["history", str(store), "--function", "cr*"]) == 0
    out = capsys.readouterr().out
    assert "parse" not in out
    header = out.splitlines()[2]
    assert header.split() == ["RUN", "LABEL", "STARTED", "CALLS", "P50", "P95", "SELF", "PROBE"]
    end = header.index("SELF") + len("SELF")
    rows = out.splitlines()[3:9]
    assert [row.split()[0] for row in rows] == ["1", "2", "3", "4", "5", "6"]
    selfs = [row[:end].rsplit("  ", 1)[-1].strip() for row in rows]
    assert selfs[:3] == ["-", "-", "-"]  # not recorded in runs 1 to 3
    assert all(cell.endswith(("µs", "ms")) for cell in selfs[3:])
    assert out.splitlines()[-1] == "  no change point"


def test_label_like_keeps_the_matching_runs(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--label-like takes an SQL LIKE pattern over the labels."""
    store = tmp_path / "runs.db"
    rng = random.Random(3)
    write_history(store, {"f": steady(rng, 3)}, prefix="main-")
    write_history(store, {"f": steady(rng, 2)}, prefix="pr-")
    assert main(["history", str(store), "--label-like", "main-%", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [run["label"] for run in data["runs"]] == ["main-0", "main-1", "main-2"]
    assert data["functions"][0]["function"] == "f"
    assert len(data["functions"][0]["series"]) == 3


def test_the_gate_fails_when_the_newest_run_starts_a_slowdown(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Twelve steady runs then one 1.3x slower: --gate exits 1 naming the function."""
    store = tmp_path / "runs.db"
    rng = random.Random(4)
    crunch = steady(rng, 12)
    write_history(store, {"crunch": crunch, "parse": steady(rng, 12)})
    assert main(["history", str(store), "--gate"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        "OK: run 12 (build-11) starts no slowdown past --max-ratio 1.1 (2 functions)")
    _write(store, "build-12", {"crunch": [crunch[-1] * 1.3] * 30, "parse": [1e-3] * 30},
           events=False)
    assert main(["history", str(store), "--gate"]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("SLOWER: run 13 (build-12) starts a slowdown past --max-ratio 1.1: "
                           "crunch (1.3")
    assert "parse" not in last
    assert main(["history", str(store), "--gate", "--max-ratio", "1.5"]) == 0
    capsys.readouterr()
    assert main(["history", str(store), "--gate", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["gate"]["failed"] == ["crunch"]


def test_history_of_an_empty_selection_says_so(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """No run matching: one line, exit 0."""
    store = tmp_path / "runs.db"
    write_history(store, {"f": [1e-3]})
    assert main(["history", str(store), "--label-like", "nightly-%"]) == 0
    assert capsys.readouterr().out == "No run in " + str(store) + \
        " with a label like 'nightly-%'\n"


def test_a_damaged_sketch_is_one_line_and_exit_2(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """What history reads is checked: a damaged row names the run and the field."""
    store = tmp_path / "runs.db"
    write_history(store, {"f": [1e-3, 1e-3]})
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE functions SET sketch = 'oops' WHERE run_id = 2")
    assert main(["history", str(store)]) == 2
    err = capsys.readouterr().err
    assert "run 2: functions.sketch of 'f'" in err


def test_html_draws_a_trend_chart_per_function(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """--html writes one page: an SVG line per function, the change point marked."""
    from html.parser import HTMLParser  # noqa: PLC0415  # this test only

    store = tmp_path / "runs.db"
    rng = random.Random(5)
    write_history(store, {"crunch": [v * (1.3 if i >= 6 else 1)
                                     for i, v in enumerate(steady(rng, 12))],
                          "<parse>": steady(rng, 12)})
    page = tmp_path / "trend.html"
    assert main(["history", str(store), "--html", str(page)]) == 0
    capsys.readouterr()
    found: dict[str, int] = {}
    titles: list[str] = []

    class Collect(HTMLParser):
        in_title = False

        def handle_starttag(self, tag: str, _attrs: list[tuple[str, str | None]]) -> None:
            found[tag] = found.get(tag, 0) + 1
            self.in_title = tag == "title"

        def handle_data(self, data: str) -> None:
            if self.in_title:
                titles.append(data)

    Collect().feed(page.read_text(encoding="utf-8"))
    assert found["svg"] == 2
    assert found["polyline"] == 2
    assert found["circle"] == 24  # one per run and function
    assert found["line"] == 1  # crunch's step
    assert any(t.startswith("from run 7 (build-6): 1.") for t in titles)
    assert "<parse>" not in page.read_text(encoding="utf-8")  # escaped
    assert main(["history", str(store), "--html", str(tmp_path / "no" / "page.html")]) == 2
    assert "cannot write" in capsys.readouterr().err
